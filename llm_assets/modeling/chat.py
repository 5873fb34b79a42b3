"""Talk to a fine-tuned checkpoint: an interactive multi-turn terminal chat, or one answer to one prompt.

The history is rendered with `render_chat(..., add_generation_prompt=True)` each turn and the reply is
streamed token by token until `<|end|>` (or `<|endoftext|>`, or `max_new_tokens`). When the history no
longer fits the model's context, the oldest turns are left out of the prompt. Only the template's markers
become special ids: a message that spells `<|end|>` or `<|assistant|>` stays one message of plain text.
Commands in the loop: `/reset` clears the history, `/exit` (or end of input) quits.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, TextIO

from llm_assets.modeling.checkpoint import load_checkpoint
from llm_assets.modeling.generate import generate
from llm_assets.modeling.model import DecoderLM
from llm_assets.tokens.special import END_OF_TURN, ENDOFTEXT, MarkedText, render_chat
from llm_assets.tokens.tokenizer import encode_chat, encode_text, special_id

if TYPE_CHECKING:
    from llm_assets.tokens.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

USER_PROMPT = "you> "
ASSISTANT_PROMPT = "assistant> "
EXIT_COMMANDS = ("/exit", "/quit")
RESET_COMMAND = "/reset"


def _load(checkpoint: str | os.PathLike | tuple[DecoderLM, Tokenizer], device: str) -> tuple[DecoderLM, Tokenizer]:
    if isinstance(checkpoint, tuple):
        return checkpoint
    return load_checkpoint(checkpoint, device=device)


def stop_ids(tokenizer: Tokenizer) -> list[int]:
    ids = [special_id(tokenizer, token) for token in (END_OF_TURN, ENDOFTEXT)]
    if ids[0] is None:
        logger.warning("the tokenizer has no %s token: replies stop only at %s or max_new_tokens",
                       END_OF_TURN, ENDOFTEXT)
    return [i for i in ids if i is not None]


def fitting_prompt(history: list[dict], tokenizer: Tokenizer, budget: int, system: list[dict]) -> MarkedText:
    """The chat prompt of the latest turns whose tokens fit `budget`; a ValueError when even the last does not."""
    for first in range(len(history)):
        if history[first]["role"] != "user":
            continue
        prompt = encode_chat(tokenizer, system + history[first:], add_generation_prompt=True)
        if len(prompt.ids) <= budget:
            if first:
                logger.info("left the %d oldest messages out of the prompt to fit the context", first)
            return prompt.text
    raise ValueError(f"the message is too long for the model's context ({budget} tokens left for the prompt); "
                     f"send a shorter message or lower max_new_tokens")


DEFAULT_MAX_NEW_TOKENS = 128


def plan_reply(messages: list[dict], tokenizer: Tokenizer, context: int, max_new_tokens: int | None,
               system: list[dict]) -> tuple[MarkedText, int, str | None]:
    """(prompt, new-token limit, note) for a reply that fits the model's `context`.

    `max_new_tokens=None` asks for the default (`DEFAULT_MAX_NEW_TOKENS`, at most half the window while the
    prompt is chosen), silently limited to what the window leaves after the prompt. An explicit limit that
    leaves no room for the newest message is lowered to what fits, and `note` says so.
    """
    if max_new_tokens is not None and max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    wanted = max_new_tokens if max_new_tokens is not None else min(DEFAULT_MAX_NEW_TOKENS, max(1, context // 2))
    try:
        prompt = fitting_prompt(messages, tokenizer, max(1, context - wanted), system)
    except ValueError:
        # the newest message alone, with whatever room the window leaves for the reply
        last = next(i for i in range(len(messages) - 1, -1, -1) if messages[i]["role"] == "user")
        prompt = render_chat(system + messages[last:], add_generation_prompt=True)
        used = len(encode_text(tokenizer, prompt))
        if used >= context:
            raise ValueError(f"the message is too long for the model's context: the prompt takes {used} of "
                             f"{context} tokens; send a shorter message") from None
    used = len(encode_text(tokenizer, prompt))
    room = context - used
    if max_new_tokens is None:
        return prompt, max(1, min(DEFAULT_MAX_NEW_TOKENS, room)), None
    if max_new_tokens > room:
        return prompt, room, (f"--max-new-tokens {max_new_tokens} does not fit: the model's context is {context} "
                              f"tokens and the prompt takes {used}, so the reply stops after {room} tokens")
    return prompt, max_new_tokens, None


def stream_reply(model: DecoderLM, tokenizer: Tokenizer, messages: list[dict], max_new_tokens: int | None,
                 temperature: float, top_k: int | None, top_p: float | None, seed: int | None,
                 system: list[dict] | None = None, notice=None):
    """Yield the assistant's reply to `messages` as text pieces (the conversation so far, ending with a user turn).

    `max_new_tokens=None` uses the default limit fitted to the model's window; `notice(text)` (default: a
    log warning) hears when an explicit limit was lowered to fit.
    """
    prompt, limit, note = plan_reply(messages, tokenizer, model.config.context, max_new_tokens, system or [])
    if note:
        (notice or logger.warning)(note)
    yield from generate(model, tokenizer, prompt, max_new_tokens=limit, temperature=temperature,
                        top_k=top_k, top_p=top_p, seed=seed, stop_ids=stop_ids(tokenizer))


def chat_loop(checkpoint: str | os.PathLike | tuple[DecoderLM, Tokenizer], max_new_tokens: int | None = None,
              temperature: float = 0.7, top_k: int | None = 50, top_p: float | None = 0.95,
              seed: int | None = 0, input: TextIO = sys.stdin, output: TextIO = sys.stdout,
              system: str | None = None, device: str = "cpu", notice=None) -> list[dict]:
    """Interactive chat on `input`/`output`; returns the conversation's messages when the input ends.

    `max_new_tokens=None`: the default reply limit, fitted to the model's window (see `plan_reply`).
    """
    model, tokenizer = _load(checkpoint, device)
    system_messages = [{"role": "system", "content": system}] if system else []
    history: list[dict] = []
    interactive = hasattr(input, "isatty") and input.isatty()
    if interactive:
        output.write(f"chatting with {checkpoint} ({RESET_COMMAND} clears the history, {EXIT_COMMANDS[0]} quits)\n")
    turn = 0
    while True:
        output.write(USER_PROMPT)
        output.flush()
        line = input.readline()
        if not line:  # end of input
            output.write("\n")
            break
        text = line.strip()
        if not interactive:
            output.write(text + "\n")  # echo piped input so the transcript reads like a conversation
        if not text:
            continue
        if text in EXIT_COMMANDS:
            break
        if text == RESET_COMMAND:
            history.clear()
            output.write("(history cleared)\n")
            continue
        history.append({"role": "user", "content": text})
        output.write(ASSISTANT_PROMPT)
        output.flush()
        pieces = []
        try:
            for piece in stream_reply(model, tokenizer, history, max_new_tokens, temperature, top_k, top_p,
                                      None if seed is None else seed + turn, system_messages, notice):
                pieces.append(piece)
                output.write(piece)
                output.flush()
        except ValueError as err:
            history.pop()
            output.write(f"[{err}]\n")
            continue
        output.write("\n")
        output.flush()
        history.append({"role": "assistant", "content": "".join(pieces)})
        turn += 1
    return system_messages + history


def answer_once(checkpoint: str | os.PathLike | tuple[DecoderLM, Tokenizer], prompt: str,
                max_new_tokens: int | None = None, temperature: float = 0.0, top_k: int | None = None,
                top_p: float | None = None, seed: int | None = 0, system: str | None = None,
                device: str = "cpu", notice=None) -> str:
    """The assistant's reply to a single user message (greedy by default)."""
    if not prompt.strip():
        raise ValueError("answer_once: the prompt is empty")
    model, tokenizer = _load(checkpoint, device)
    system_messages = [{"role": "system", "content": system}] if system else []
    return "".join(stream_reply(model, tokenizer, [{"role": "user", "content": prompt}], max_new_tokens,
                                temperature, top_k, top_p, seed, system_messages, notice))


def first_message_content(text: str) -> str:
    """The content of the first message of a conversation rendered by `render_chat` (an SFT example's question)."""
    return text.split("\n", 1)[1].split(END_OF_TURN)[0]


def ends_turn_share(checkpoint: str | os.PathLike | tuple[DecoderLM, Tokenizer], prompts: list[str],
                    max_new_tokens: int = 64, device: str = "cpu") -> tuple[float, list[dict]]:
    """Share of `prompts` whose greedy reply closes its turn with `<|end|>` within `max_new_tokens`."""
    from llm_assets.modeling.generate import generate_ids

    model, tokenizer = _load(checkpoint, device)
    end_id = special_id(tokenizer, END_OF_TURN)
    rows = []
    for prompt in prompts:
        ids = encode_chat(tokenizer, [{"role": "user", "content": prompt}], add_generation_prompt=True).ids
        reply = list(generate_ids(model, ids, max_new_tokens, temperature=0.0, stop_ids=()))
        ended = end_id in reply
        cut = reply[: reply.index(end_id)] if ended else reply
        rows.append({"prompt": prompt, "ended": ended, "reply": tokenizer.decode(cut)})
    return (sum(r["ended"] for r in rows) / len(rows) if rows else 0.0), rows
