"""The one seam between the project and the `tokenizers` library: load `tokenizer.json`, turn text into ids.

Text is encoded as ordinary text, special-token text included: a page, an SFT reply, a benchmark question,
a chat message or a `generate` prompt that spells `<|end|>` gets the byte-level tokens of those characters,
never the control id (tiktoken's `disallowed_special`, nanochat's renderer). Only the chat template's own
markers, the marker pieces of a `MarkedText` from `render_chat`, become special ids. Text between markers is
encoded as one run, so ordinary conversations get exactly the ids the whole rendered string had before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llm_assets.tokens.special import MarkedText, render_chat

TOKENIZER_FILE = "tokenizer.json"  # a checkpoint folder's and the tokenizer asset's file name


def as_plain(tokenizer):
    """`tokenizer` set to encode special-token text as text (tokenizers' `encode_special_tokens`)."""
    if not tokenizer.encode_special_tokens:
        tokenizer.encode_special_tokens = True
    return tokenizer


def load_tokenizer(path: str | os.PathLike):
    """Our `tokenizer.json` as a `tokenizers.Tokenizer` that encodes special-token text as plain text."""
    from tokenizers import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file {path} not found")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises a bare Exception for malformed files
        raise ValueError(f"{path}: not a readable tokenizer.json ({err})") from None
    return as_plain(tokenizer)


def special_id(tokenizer, token: str) -> int | None:
    """The id of special token `token` (a chat marker, `<|endoftext|>`), None when the tokenizer lacks it."""
    return tokenizer.token_to_id(token)


def marker_runs(text: str, marker_id: Callable[[str], int | None]) -> list[tuple[str, int | None]]:
    """`text` as `(piece, id)` runs: a marker the tokenizer knows has its id, every other run is plain (None).

    Plain `str` is one plain run; a marker the tokenizer lacks joins its neighbours as text, as it always did.
    """
    pieces = text.pieces if isinstance(text, MarkedText) else ((str(text), False),)
    runs: list[tuple[str, int | None]] = []
    for piece, marker in pieces:
        token = marker_id(piece) if marker else None
        if token is None and runs and runs[-1][1] is None:
            runs[-1] = (runs[-1][0] + piece, None)
        elif piece:
            runs.append((piece, token))
    return runs


def encode_runs(texts: Sequence[str], marker_id: Callable[[str], int | None],
                encode_plain: Callable[[list[str]], list[tuple[list[int], list[tuple[int, int]]]]]
                ) -> list[tuple[list[int], np.ndarray]]:
    """`(ids, offsets[N,2])` per text: plain runs through `encode_plain` (one batch), markers as their ids."""
    all_runs = [marker_runs(text, marker_id) for text in texts]
    plain = list(dict.fromkeys(piece for runs in all_runs for piece, token in runs if token is None))
    encoded = dict(zip(plain, encode_plain(plain), strict=True)) if plain else {}
    out = []
    for runs in all_runs:
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        start = 0
        for piece, token in runs:
            if token is None:
                piece_ids, piece_offsets = encoded[piece]
                ids += piece_ids
                offsets += [(start + a, start + b) for a, b in piece_offsets]
            else:
                ids.append(token)
                offsets.append((start, start + len(piece)))
            start += len(piece)
        out.append((ids, np.asarray(offsets, dtype=np.int64).reshape(-1, 2)))
    return out


def encode_with_offsets(tokenizer, texts: Sequence[str]) -> list[tuple[list[int], np.ndarray]]:
    """`(ids, character offsets[N,2])` of each text, encoded in parallel (see the module doc for markers)."""
    tokenizer = as_plain(tokenizer)

    def plain(pieces: list[str]) -> list[tuple[list[int], list[tuple[int, int]]]]:
        return [(e.ids, e.offsets) for e in tokenizer.encode_batch(pieces, add_special_tokens=False)]

    return encode_runs(texts, lambda token: special_id(tokenizer, token), plain)


def encode_texts(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text (special-token text as text; a `MarkedText`'s markers as their ids)."""
    return [ids for ids, _ in encode_with_offsets(tokenizer, texts)]


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of one text (special-token text as text; a `MarkedText`'s markers as their ids)."""
    if not isinstance(text, MarkedText):
        return as_plain(tokenizer).encode(text, add_special_tokens=False).ids
    return encode_texts(tokenizer, [text])[0]


@dataclass(frozen=True)
class ChatTokens:
    """A rendered conversation: its `text` (as `render_chat` writes it), `ids`, and character `offsets[N,2]`."""

    text: MarkedText
    ids: list[int]
    offsets: np.ndarray


def encode_chats(tokenizer, conversations: Iterable[Sequence[Mapping[str, str]]],
                 add_generation_prompt: bool = False) -> list[ChatTokens]:
    """Each conversation in the chat format: markers as special ids, every message content as plain text."""
    texts = [render_chat(messages, add_generation_prompt) for messages in conversations]
    return [ChatTokens(text, ids, offsets)
            for text, (ids, offsets) in zip(texts, encode_with_offsets(tokenizer, texts), strict=True)]


def encode_chat(tokenizer, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = False
                ) -> ChatTokens:
    """One conversation in the chat format (see `encode_chats`)."""
    return encode_chats(tokenizer, [messages], add_generation_prompt)[0]
