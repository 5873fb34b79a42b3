"""Streaming text generation with the KV cache: greedy (temperature 0) or temperature/top-k/top-p sampling.

A prompt is encoded as ordinary text (special-token text included); only a `MarkedText` from `render_chat`
puts the chat template's markers in as special ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import torch

from llm_assets.modeling.model import DecoderLM, KVCache
from llm_assets.tokens.special import END_OF_TURN, ENDOFTEXT
from llm_assets.tokens.tokenizer import encode_text, special_id

if TYPE_CHECKING:
    from llm_assets.tokens.tokenizer import Tokenizer


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Set logits outside the top-k tokens / the top-p nucleus to -inf; logits (V,)."""
    if top_k is not None and 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0.0 < top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token when the tokens before it already cover top_p (the first token always stays)
        drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


@torch.inference_mode()
def generate_ids(model: DecoderLM, prompt_ids: list[int], max_new_tokens: int, temperature: float = 0.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 stop_ids: Iterable[int] = ()) -> Iterator[int]:
    """Yield new token ids one at a time; stops after a stop id (not yielded) or `max_new_tokens`."""
    if not prompt_ids:
        raise ValueError("generate: the prompt encodes to zero tokens; give at least one token")
    if temperature < 0:
        raise ValueError(f"generate: temperature must be >= 0, got {temperature}")
    stop = set(stop_ids)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    generator = torch.Generator(device=device)
    generator.manual_seed(0 if seed is None else seed)
    cache = KVCache(model.config, 1, len(prompt_ids) + max_new_tokens, device, dtype)
    tokens = torch.tensor([prompt_ids], device=device)  # (1, T)
    position = 0
    for _ in range(max_new_tokens):
        logits, _ = model(tokens, cache=cache, start=position)
        position += tokens.shape[1]
        last = logits[0, -1].float()  # (V,)
        if temperature == 0:
            next_id = int(torch.argmax(last))
        else:
            probs = filter_logits(last / temperature, top_k, top_p).softmax(-1)
            next_id = int(torch.multinomial(probs, 1, generator=generator))
        if next_id in stop:
            return
        yield next_id
        tokens = torch.tensor([[next_id]], device=device)


def fit_new_tokens(prompt_tokens: int, context: int, requested: int | None, default: int = 128
                   ) -> tuple[int, str | None]:
    """(new-token limit, note): `requested` (or `default`) limited to what the window leaves after the prompt.

    The default is lowered silently; an explicit request that does not fit is lowered and `note` says so.
    A prompt that fills the whole window is a ValueError.
    """
    if requested is not None and requested < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {requested}")
    room = context - prompt_tokens
    if room < 1:
        raise ValueError(f"the prompt takes {prompt_tokens} tokens, the whole of the model's {context}-token "
                         f"context; give a shorter prompt")
    if requested is None:
        return min(default, room), None
    if requested > room:
        return room, (f"--max-new-tokens {requested} does not fit: the model's context is {context} tokens and "
                      f"the prompt takes {prompt_tokens}, so generation stops after {room} tokens")
    return requested, None


def generate(model: DecoderLM, tokenizer: Tokenizer, prompt: str, max_new_tokens: int = 128,
             temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
             seed: int | None = None, stop_ids: Iterable[int] | None = None) -> Iterator[str]:
    """Stream the continuation of `prompt` as text pieces; joined they equal the decoded new tokens.

    `stop_ids` default: `<|endoftext|>` and `<|end|>` when the tokenizer has them.
    """
    if stop_ids is None:
        stop_ids = [i for t in (ENDOFTEXT, END_OF_TURN) if (i := special_id(tokenizer, t)) is not None]
    prompt_ids = encode_text(tokenizer, prompt)
    new_ids: list[int] = []
    emitted = ""
    for token_id in generate_ids(model, prompt_ids, max_new_tokens, temperature, top_k, top_p, seed, stop_ids):
        new_ids.append(token_id)
        text = tokenizer.decode(new_ids, skip_special_tokens=False)
        # a byte-level token can end inside a UTF-8 character: wait for the rest before emitting
        if text.endswith("\ufffd"):
            continue
        if len(text) > len(emitted) and text.startswith(emitted):
            yield text[len(emitted):]
            emitted = text
    text = tokenizer.decode(new_ids, skip_special_tokens=False) if new_ids else ""
    if len(text) > len(emitted):
        yield text[len(emitted):]
