"""The one seam between the project and the `tokenizers` library: train byte-level BPE, save and load
`tokenizer.json`, turn text into ids. Swapping the tokenizer library or trainer changes this module only.

Training: ByteLevel pre-tokenizer (GPT-2 split regex, no prefix space) and decoder, so decode(encode(t)) == t
for every string; the special tokens of `special.py` take the first ids. The saved `tokenizer.json` loads
unchanged in `transformers.PreTrainedTokenizerFast(tokenizer_file=...)`.

Encoding: text is encoded as ordinary text, special-token text included: a page, an SFT reply, a benchmark
question, a chat message or a `generate` prompt that spells `<|end|>` gets the byte-level tokens of those
characters, never the control id (tiktoken's `disallowed_special`, nanochat's renderer). Only the chat
template's own markers, the marker pieces of a `MarkedText` from `render_chat`, become special ids. Text
between markers is encoded as one run, so ordinary conversations get exactly the ids the whole rendered
string had before.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from llm_assets.lake import parquet_file
from llm_assets.tokens.special import SPECIAL_TOKENS, MarkedText, render_chat

log = logging.getLogger(__name__)


def build_untrained_tokenizer():
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    # trim_offsets=False keeps character offsets exact (spaces belong to the following token)
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer


def train_tokenizer(texts: Iterable[str], vocab_size: int, out_path: str | os.PathLike) -> dict:
    """Train byte-level BPE on `texts` and save `tokenizer.json` at `out_path` (temp name + rename).

    Returns stats: vocab_size, training_seconds, documents, characters, sample_merges, special_tokens.
    """
    minimum = 256 + len(SPECIAL_TOKENS)
    if vocab_size < minimum:
        raise ValueError(f"vocab_size {vocab_size} is below {minimum} (256 bytes + {len(SPECIAL_TOKENS)} "
                         f"special tokens)")
    counts = {"documents": 0, "characters": 0}

    def counted(items: Iterable[str]) -> Iterator[str]:
        for text in items:
            if not text:
                continue
            counts["documents"] += 1
            counts["characters"] += len(text)
            if counts["documents"] % 20000 == 0:
                log.info("tokenizer training read %d documents", counts["documents"])
            yield text

    tokenizer = build_untrained_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    started = time.perf_counter()
    tokenizer.train_from_iterator(counted(texts), trainer=trainer)
    seconds = time.perf_counter() - started
    if counts["documents"] == 0:
        raise ValueError("train_tokenizer: no non-empty texts to train on")

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tokenizer.save(str(tmp))
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    merges = json.loads(out_path.read_text())["model"]["merges"]
    stats = {
        "vocab_size": tokenizer.get_vocab_size(with_added_tokens=True),
        "requested_vocab_size": vocab_size,
        "training_seconds": round(seconds, 3),
        "documents": counts["documents"],
        "characters": counts["characters"],
        "merges": len(merges),
        "sample_merges": [_readable_merge(m) for m in merges[:10] + merges[-5:]],
        "special_tokens": {t: tokenizer.token_to_id(t) for t in SPECIAL_TOKENS},
    }
    log.info("trained %d-token BPE on %d documents (%d chars) in %.1fs", stats["vocab_size"],
             counts["documents"], counts["characters"], seconds)
    return stats


def _readable_merge(merge: str | list[str]) -> str:
    """A merge as text: byte-level symbols mapped back to what they spell ('Ġ' is a space)."""
    left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
    decode = _byte_decoder()
    spelled = bytes(decode.get(c, 63) for c in left + right).decode("utf-8", errors="replace")
    return f"{left} + {right} -> {spelled!r}"


def _byte_decoder() -> dict[str, int]:
    return {ch: b for b, ch in enumerate(byte_level_symbols())}


def byte_level_symbols() -> list[str]:
    """The printable character that byte-level BPE uses for each byte value 0..255 (GPT-2's mapping)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def measure_compression(tokenizer_path: str | os.PathLike, texts: Iterable[str]) -> dict:
    """Characters and UTF-8 bytes per token of `tokenizer_path` over `texts` (higher is better)."""
    tokenizer = load_tokenizer(tokenizer_path)
    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("measure_compression: no non-empty texts")
    tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False))
    chars = sum(len(t) for t in texts)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    return {"chars_per_token": chars / tokens, "bytes_per_token": n_bytes / tokens, "tokens": tokens,
            "characters": chars, "bytes": n_bytes, "documents": len(texts)}


def _text_and_split_batches(mixture_files: Iterable[str | os.PathLike], batch_documents: int
                            ) -> Iterator[tuple[list, list]]:
    """`(texts, splits)` of the mixture files in record batches; empty parts (maybe without columns) skipped."""
    for path in mixture_files:
        parquet = parquet_file(path)
        if parquet.metadata.num_rows == 0:  # an empty part may have been written without columns
            continue
        missing = [c for c in ("text", "split") if c not in parquet.schema_arrow.names]
        if missing:
            raise ValueError(f"mixture file {path}: missing column(s) {', '.join(missing)}")
        for batch in parquet.iter_batches(batch_size=batch_documents, columns=["text", "split"]):
            yield batch.column("text").to_pylist(), batch.column("split").to_pylist()


def mixture_texts(mixture_files: Iterable[str | os.PathLike], split: str = "train",
                  batch_documents: int = 1024, max_characters: int | None = None) -> Iterator[str]:
    """Texts of one split of the training mixture, streamed in record batches (for `train_tokenizer`)."""
    total = 0
    for texts, splits in _text_and_split_batches(mixture_files, batch_documents):
        for text, text_split in zip(texts, splits, strict=True):
            if text and text_split == split:
                yield text
                total += len(text)
                if max_characters is not None and total >= max_characters:
                    return


def split_counts(mixture_files: Iterable[str | os.PathLike]) -> dict[str, int]:
    """Documents with non-empty text per split of the training mixture (reads two columns only)."""
    counts: dict[str, int] = {}
    for texts, splits in _text_and_split_batches(mixture_files, 8192):
        for text, split in zip(texts, splits, strict=True):
            if text:
                counts[split] = counts.get(split, 0) + 1
    return counts


def to_transformers(tokenizer_path: str | os.PathLike):
    """A `transformers.PreTrainedTokenizerFast` over our tokenizer.json, with the special tokens named and
    the chat template set, ready for `save_pretrained` next to an exported model."""
    from transformers import PreTrainedTokenizerFast

    from llm_assets.tokens.special import CHAT_TEMPLATE, ENDOFTEXT, PAD

    hf = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_path), bos_token=ENDOFTEXT, eos_token=ENDOFTEXT,
                                 unk_token=None, pad_token=PAD, clean_up_tokenization_spaces=False)
    hf.chat_template = CHAT_TEMPLATE
    return hf


TOKENIZER_FILE = "tokenizer.json"  # a checkpoint folder's and the tokenizer asset's file name


def as_plain(tokenizer):
    """`tokenizer` set to encode special-token text as text (tokenizers' `encode_special_tokens`)."""
    if not tokenizer.encode_special_tokens:
        tokenizer.encode_special_tokens = True
    return tokenizer


def load_tokenizer(path: str | os.PathLike):
    """Our `tokenizer.json` as a `tokenizers.Tokenizer` that encodes special-token text as plain text."""
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
