"""One scoring interface over two checkpoint kinds: a Hugging Face folder and our own checkpoint folder.

A Hugging Face folder has a `config.json` with `architectures` (what `export_hf` writes); our checkpoint
folder has `model.safetensors` plus our own `config.json` (no `architectures`) and `tokenizer.json`, and
is loaded by `llm_assets.modeling.checkpoint.load_checkpoint`. Scoring code only sees `ScoringModel`:
`encode(text)`, `eot_token_id`, `max_length`, `token_logprobs(...)`, and `greedy_fn` for generated answers.

Both kinds encode benchmark text as ordinary text, special-token text included (a question that spells
`<|endoftext|>` does not get the end-of-text id); only the markers of a chat prompt from `render_chat`
become special ids (`llm_assets.tokens.tokenizer`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from llm_assets.tokens.special import ENDOFTEXT, MarkedText, special_token_text
from llm_assets.tokens.tokenizer import encode_runs, encode_text, special_id

log = logging.getLogger(__name__)

# model types whose logits are exactly lm_head(decoder hidden state): no soft-capping or scaling
_PLAIN_HEAD_MODEL_TYPES = {"llama", "mistral", "qwen2", "qwen3"}


@dataclass
class ScoringModel:
    """A causal language model and its tokenizer, seen the way the evaluation code needs them.

    `logits_fn(idx[B,T]) -> logits[B,T,V]` is the model's forward. `hidden_fn`/`head_fn`, when given,
    split it into decoder and output head so only the scored positions pay for the vocabulary projection.
    """

    name: str
    encode_fn: Callable[[str, bool], list[int]]
    decode_fn: Callable[[list[int]], str]
    eot_token_id: int
    eot_text: str
    max_length: int
    logits_fn: Callable[[torch.Tensor], torch.Tensor]
    hidden_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    head_fn: Callable[[torch.Tensor], torch.Tensor] | None = None
    # (contexts, context index per request, continuations) -> (summed logprob, is_greedy) per request
    shared_context_fn: Callable[[list[list[int]], list[int], list[list[int]]],
                                tuple[torch.Tensor, torch.Tensor]] | None = None
    # (idx[B,T] prompts of equal length, max_new_tokens, stop ids) -> new ids [B,N], N <= max_new_tokens; greedy,
    # with a key-value cache; stops early once every row has produced a stop id
    greedy_fn: Callable[[torch.Tensor, int, Sequence[int]], torch.Tensor] | None = None
    device: str = "cpu"
    pad_token_id: int = 0
    # the id of a special token (a chat marker), None when the tokenizer has no such token
    special_id_fn: Callable[[str], int | None] | None = None

    def special_id(self, token: str) -> int | None:
        return self.special_id_fn(token) if self.special_id_fn is not None else None

    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        """Token ids of `text` (special-token text as text, a chat prompt's markers as ids); like lm-eval,
        special tokens are not added again to text that starts with EOT."""
        if add_special_tokens is None:
            add_special_tokens = not (self.eot_text and text.startswith(self.eot_text))
        return self.encode_fn(text, add_special_tokens)

    def decode(self, ids: Sequence[int]) -> str:
        return self.decode_fn(list(ids))

    @torch.no_grad()
    def token_logprobs(self, idx: torch.Tensor, rows: torch.Tensor, positions: torch.Tensor,
                       targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability of `targets` predicted at (`rows`, `positions`) of the batch `idx[B,T]`.

        Returns `(logprob[N], is_greedy[N])` where `is_greedy` says the target is the argmax token.
        Only the N selected positions get a log-softmax (not the whole [B,T,V] block).
        """
        idx = idx.to(self.device)
        rows, positions, targets = rows.to(self.device), positions.to(self.device), targets.to(self.device)
        if self.hidden_fn is not None and self.head_fn is not None:
            hidden = self.hidden_fn(idx)  # [B,T,D]
            logits = self.head_fn(hidden[rows, positions])  # [N,V]
        else:
            logits = self.logits_fn(idx)[rows, positions]  # [N,V]
        logprobs = F.log_softmax(logits.float(), dim=-1)
        chosen = logprobs.gather(1, targets.unsqueeze(1)).squeeze(1)
        return chosen.cpu(), (logprobs.argmax(dim=-1) == targets).cpu()


def warn_special_token_text(task: str, item_texts: Sequence[Sequence[str]]) -> int:
    """Log how many items hold special-token text (encoded as ordinary text, never as control ids)."""
    held = sum(any(special_token_text(text) for text in texts) for texts in item_texts)
    if held:
        log.warning("%s: %d of %d items contain special-token text such as <|endoftext|>; it is scored as "
                    "ordinary text, not as control tokens", task, held, len(item_texts))
    return held


def checkpoint_kind(folder: str | Path) -> str:
    """`"hf"` for a Hugging Face folder, `"native"` for our checkpoint folder; a clear error otherwise."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder}: no config.json; expected a checkpoint folder "
                                "(model.safetensors + config.json) or a Hugging Face export")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path}: not valid JSON ({err})") from None
    if isinstance(config, dict) and config.get("architectures"):
        return "hf"
    if (folder / "model.safetensors").is_file():
        return "native"
    raise ValueError(f"{folder}: config.json has no 'architectures' (so not a Hugging Face export) and "
                     "there is no model.safetensors (so not one of our checkpoints)")


def load_scoring_model(folder: str | Path, device: str = "cpu") -> ScoringModel:
    """Load either checkpoint kind from `folder` for scoring (eval mode, float32 unless saved otherwise)."""
    kind = checkpoint_kind(folder)
    log.info("loading %s checkpoint from %s", kind, folder)
    if kind == "hf":
        return _load_hf(Path(folder), device)
    from llm_assets.modeling.checkpoint import load_checkpoint

    model, tokenizer = load_checkpoint(folder)
    return from_native(model, tokenizer, name=Path(folder).name, device=device)


def _tokenizer_eot(tokenizer) -> tuple[int, str]:
    eot_id = special_id(tokenizer, ENDOFTEXT)
    if eot_id is None:
        raise ValueError(f"tokenizer has no {ENDOFTEXT} token; it is the document boundary the model uses")
    return eot_id, ENDOFTEXT


def from_native(model: torch.nn.Module, tokenizer, name: str = "model", device: str = "cpu",
                max_length: int | None = None) -> ScoringModel:
    """Wrap our model (`forward(idx[B,T]) -> logits[B,T,V]`) and its `tokenizers.Tokenizer`."""
    model = model.to(device).eval()
    eot_id, eot_text = _tokenizer_eot(tokenizer)
    if max_length is None:
        config = getattr(model, "config", None)
        max_length = (getattr(config, "context", None) or getattr(config, "block_size", None)
                      or getattr(config, "max_position_embeddings", None) or 2048)

    def logits_fn(idx: torch.Tensor) -> torch.Tensor:
        out = model(idx)
        return out[0] if isinstance(out, tuple) else out

    return ScoringModel(
        name=name,
        # our tokenizer adds no special tokens of its own, so `add_special_tokens` changes nothing
        encode_fn=lambda text, special: encode_text(tokenizer, text),
        decode_fn=lambda ids: tokenizer.decode(ids, skip_special_tokens=False),
        eot_token_id=eot_id, eot_text=eot_text, max_length=int(max_length),
        logits_fn=logits_fn, shared_context_fn=_native_shared_context_scorer(model, eot_id, device),
        greedy_fn=_native_greedy(model, device), device=device, pad_token_id=eot_id,
        special_id_fn=lambda token: special_id(tokenizer, token),
    )


def _native_greedy(model: torch.nn.Module, device: str):
    """Greedy decoding of equal-length prompts through our model's key-value cache (None without one)."""
    import inspect

    try:
        from llm_assets.modeling.model import KVCache
    except ImportError:
        return None
    if not {"cache", "start"} <= set(inspect.signature(model.forward).parameters) or not hasattr(model, "config"):
        return None
    dtype = next(model.parameters()).dtype

    @torch.no_grad()
    def greedy(idx: torch.Tensor, max_new_tokens: int, stop_ids: Sequence[int]) -> torch.Tensor:
        cache = KVCache(model.config, idx.shape[0], idx.shape[1] + max_new_tokens, device, dtype)
        stops = torch.tensor(list(stop_ids), dtype=torch.long, device=device)
        tokens, start, new = idx.to(device), 0, []
        done = torch.zeros(idx.shape[0], dtype=torch.bool, device=device)
        for _ in range(max_new_tokens):
            out = model(tokens, cache=cache, start=start)
            start += tokens.shape[1]
            tokens = (out[0] if isinstance(out, tuple) else out)[:, -1].argmax(-1, keepdim=True)  # [B,1]
            new.append(tokens)
            done |= torch.isin(tokens[:, 0], stops)
            if bool(done.all()):
                break
        return torch.cat(new, dim=1).cpu()

    return greedy


def _native_shared_context_scorer(model: torch.nn.Module, pad_id: int, device: str):
    """Shared-context scoring for our model through its key-value cache (`forward(idx, cache=, start=)`).

    Our cache has one fill position for the whole batch, so contexts of equal token length run together;
    each context runs once, its cache is copied to one row per continuation, then the continuations run.
    Returns None for a model without that cache interface (scoring then takes the plain path).
    """
    import inspect

    try:
        from llm_assets.modeling.model import KVCache
    except ImportError:
        return None
    parameters = inspect.signature(model.forward).parameters
    if not {"cache", "start"} <= set(parameters) or not hasattr(model, "config"):
        return None
    dtype = next(model.parameters()).dtype

    def logits_of(idx, cache, start):
        out = model(idx, cache=cache, start=start)
        return (out[0] if isinstance(out, tuple) else out).float()

    @torch.no_grad()
    def score(contexts: list[list[int]], context_of: list[int], continuations: list[list[int]]
              ) -> tuple[torch.Tensor, torch.Tensor]:
        sums = torch.zeros(len(continuations), dtype=torch.float64)
        greedy = torch.ones(len(continuations), dtype=torch.bool)
        by_length: dict[int, list[int]] = {}
        for index, context in enumerate(contexts):
            by_length.setdefault(len(context), []).append(index)
        for length, members in by_length.items():
            local = {context: i for i, context in enumerate(members)}
            rows = [r for r, owner in enumerate(context_of) if owner in local]
            owner = torch.tensor([local[context_of[r]] for r in rows], device=device)
            context_cache = KVCache(model.config, len(members), length, device, dtype)
            idx = torch.tensor([contexts[m] for m in members], dtype=torch.long, device=device)
            last = F.log_softmax(logits_of(idx, context_cache, 0)[:, -1], dim=-1)[owner]  # [R,V]
            first = torch.tensor([continuations[r][0] for r in rows], device=device)
            row_sums = last.gather(1, first[:, None]).squeeze(1).double()
            row_greedy = last.argmax(-1) == first
            width = max(len(continuations[r]) for r in rows) - 1
            if width:
                cache = KVCache(model.config, len(rows), length + width, device, dtype)
                for layer in range(len(cache.keys)):
                    cache.keys[layer][:, :, :length] = context_cache.keys[layer][owner]
                    cache.values[layer][:, :, :length] = context_cache.values[layer][owner]
                cache.length = length
                # right padding is harmless here: a pad only ever follows the tokens that are scored
                ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
                target = torch.full((len(rows), width), -1, dtype=torch.long)
                for i, r in enumerate(rows):
                    tokens = continuations[r]
                    ids[i, :len(tokens) - 1] = torch.tensor(tokens[:-1])
                    target[i, :len(tokens) - 1] = torch.tensor(tokens[1:])
                logprobs = F.log_softmax(logits_of(ids.to(device), cache, length), dim=-1).cpu()  # [R,W,V]
                valid = target >= 0
                chosen = logprobs.gather(2, target.clamp(min=0)[..., None]).squeeze(2).double()
                row_sums += (chosen * valid).sum(1).to(row_sums.device)
                row_greedy &= ((logprobs.argmax(-1) == target) | ~valid).all(1).to(row_greedy.device)
            index = torch.tensor(rows)
            sums[index] = row_sums.cpu()
            greedy[index] = row_greedy.cpu()
        return sums, greedy

    return score


def from_hf(model, tokenizer, name: str = "model", device: str = "cpu",
            max_length: int | None = None) -> ScoringModel:
    """Wrap a `transformers` causal LM and its tokenizer the way lm-eval's `hf` model sees them."""
    model = model.to(device).eval()
    config = model.config
    if max_length is None:
        max_length = next((getattr(config, attr) for attr in ("n_positions", "max_position_embeddings", "n_ctx")
                           if getattr(config, attr, None)), None)
        if max_length is None:
            max_length = 2048
    # lm-eval prefixes an empty context with EOS (its `eot_token_id`)
    eot_id = tokenizer.eos_token_id
    eot_text = tokenizer.decode([eot_id]) if eot_id is not None else ""

    def logits_fn(idx: torch.Tensor) -> torch.Tensor:
        return model(idx).logits

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eot_id or 0)
    hidden_fn = head_fn = shared_fn = None
    if getattr(config, "model_type", None) in _PLAIN_HEAD_MODEL_TYPES and hasattr(model, "lm_head"):
        decoder = model.get_decoder()
        hidden_fn = lambda idx: decoder(input_ids=idx, use_cache=False).last_hidden_state  # noqa: E731
        head_fn = model.lm_head
        shared_fn = _hf_shared_context_scorer(decoder, model.lm_head, pad, device)

    @torch.no_grad()
    def greedy(idx: torch.Tensor, max_new_tokens: int, stop_ids: Sequence[int]) -> torch.Tensor:
        idx = idx.to(device)
        out = model.generate(input_ids=idx, attention_mask=torch.ones_like(idx), max_new_tokens=max_new_tokens,
                             do_sample=False, eos_token_id=list(stop_ids) or None, pad_token_id=pad)
        return out[:, idx.shape[1]:].cpu()

    encode_fn, special_id_fn = _hf_encoder(tokenizer)
    return ScoringModel(
        name=name, encode_fn=encode_fn, decode_fn=lambda ids: tokenizer.decode(ids),
        eot_token_id=eot_id if eot_id is not None else 0, eot_text=eot_text, max_length=int(max_length),
        logits_fn=logits_fn, hidden_fn=hidden_fn, head_fn=head_fn, shared_context_fn=shared_fn, greedy_fn=greedy,
        device=device, pad_token_id=pad, special_id_fn=special_id_fn,
    )


def _hf_encoder(tokenizer) -> tuple[Callable[[str, bool], list[int]], Callable[[str], int | None]]:
    """`(encode_fn, special_id_fn)` for a `transformers` tokenizer: text with `split_special_tokens`, so special-
    token text stays text; a `MarkedText`'s markers the tokenizer has as added tokens become their ids."""
    added = tokenizer.get_added_vocab()
    framing = tokenizer.encode("", add_special_tokens=True)
    # a prefix such as BOS goes first, as the tokenizer would put it before the whole string
    prefix = framing[:1] if framing[:1] == [tokenizer.bos_token_id] else []

    def plain(pieces: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        ids = [tokenizer.encode(piece, add_special_tokens=False, split_special_tokens=True) for piece in pieces]
        return [(piece_ids, [(0, 0)] * len(piece_ids)) for piece_ids in ids]  # offsets are not used here

    def encode(text: str, add_special_tokens: bool) -> list[int]:
        if not isinstance(text, MarkedText):
            return tokenizer.encode(text, add_special_tokens=add_special_tokens, split_special_tokens=True)
        ids = encode_runs([text], added.get, plain)[0][0]
        return prefix + ids if add_special_tokens else ids

    return encode, added.get


def _hf_shared_context_scorer(decoder, head, pad_id: int, device: str):
    """Score several continuations of each context with one forward pass over the context.

    The contexts run once (left-padded, with a key-value cache); the cache is then copied to one row per
    continuation and only the continuation tokens run again. Positions and masks make every row compute
    what an unpadded forward over context + continuation computes.
    """

    import inspect

    # transformers >= 5.2x names the cache argument and output `cache`; older releases `past_key_values`
    cache_arg = "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"

    @torch.no_grad()
    def score(contexts: list[list[int]], context_of: list[int], continuations: list[list[int]]
              ) -> tuple[torch.Tensor, torch.Tensor]:
        longest = max(len(c) for c in contexts)
        ids = torch.full((len(contexts), longest), pad_id, dtype=torch.long)
        mask = torch.zeros((len(contexts), longest), dtype=torch.long)
        for row, context in enumerate(contexts):
            ids[row, longest - len(context):] = torch.tensor(context)
            mask[row, longest - len(context):] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        out = decoder(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        owner = torch.tensor(context_of, device=device)
        # the last context position predicts every continuation's first token
        first = F.log_softmax(head(out.last_hidden_state[owner, -1]).float(), dim=-1)  # [R,V]
        first_targets = torch.tensor([c[0] for c in continuations], device=device)
        sums = first.gather(1, first_targets[:, None]).squeeze(1).double()
        greedy = first.argmax(-1) == first_targets
        longer = [r for r, c in enumerate(continuations) if len(c) > 1]
        if longer:
            rest = torch.tensor(longer, device=device)
            width = max(len(continuations[r]) for r in longer) - 1
            cont_ids = torch.full((len(longer), width), pad_id, dtype=torch.long)
            cont_mask = torch.zeros((len(longer), width), dtype=torch.long)
            rows, cols, targets = [], [], []
            for i, r in enumerate(longer):
                tokens = continuations[r]
                cont_ids[i, :len(tokens) - 1] = torch.tensor(tokens[:-1])
                cont_mask[i, :len(tokens) - 1] = 1
                rows += [i] * (len(tokens) - 1)
                cols += range(len(tokens) - 1)
                targets += tokens[1:]
            cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
            cache.reorder_cache(owner[rest])  # one cache row per continuation
            start = torch.tensor([len(contexts[context_of[r]]) for r in longer], device=device)
            hidden = decoder(input_ids=cont_ids.to(device),
                             attention_mask=torch.cat([mask[owner[rest]], cont_mask.to(device)], dim=1),
                             position_ids=start[:, None] + torch.arange(width, device=device)[None, :],
                             use_cache=True, **{cache_arg: cache}).last_hidden_state
            rows_t, cols_t = torch.tensor(rows, device=device), torch.tensor(cols, device=device)
            targets_t = torch.tensor(targets, device=device)
            logprobs = F.log_softmax(head(hidden[rows_t, cols_t]).float(), dim=-1)
            chosen = logprobs.gather(1, targets_t[:, None]).squeeze(1).double()
            hit = (logprobs.argmax(-1) == targets_t).long()
            index = rest[rows_t]
            sums.index_add_(0, index, chosen)
            misses = torch.zeros(len(continuations), dtype=torch.long, device=device).index_add_(0, index, 1 - hit)
            greedy &= misses == 0
        return sums.cpu(), greedy.cpu()

    return score


def _load_hf(folder: Path, device: str) -> ScoringModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype="auto")
    return from_hf(model, tokenizer, name=folder.name, device=device)
