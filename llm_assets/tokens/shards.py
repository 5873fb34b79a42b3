"""Binary token shards: the format, a streaming writer and a memory-mapped reader.

Format (little-endian), one folder per tokenization:

- `<split>-<nnnnn>.bin`: a 64-byte header (magic `LLMATOK1`, uint32 version = 1, uint32 dtype code
  2 = uint16 / 4 = uint32, uint64 token_count, uint64 doc_count, zero padding), then the tokens.
  Every document is followed by the end-of-document token; shards hold `shard_tokens` tokens each
  except the last, so a document may continue into the next shard.
- `<split>-<nnnnn>.idx`: uint64 start offsets (within the shard) of the documents that start in it.
- `<split>-documents.parquet`: one row per document (warc_record_id, copy, shard, offset, tokens,
  text_hash), used by the leakage check and to answer "which shard holds this page?".
- `manifest.json`: vocab size, dtype, eot id, tokenizer checksum, and per split the shard files with
  token/document counts and sha256 checksums.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import struct
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from llm_assets.lake import file_sha256, lake_path, parquet_file, read_json, uri, write_parquet
from llm_assets.tokens.fetch_order import DocumentBatch, in_fetch_order, iter_batches
from llm_assets.tokens.special import ENDOFTEXT

# a web page that spells "<|endoftext|>" must not inject a real document boundary: the seam encodes it as text
from llm_assets.tokens.tokenizer import load_tokenizer

log = logging.getLogger(__name__)

MAGIC = b"LLMATOK1"
VERSION = 1
HEADER_BYTES = 64
_HEADER = struct.Struct("<8sIIQQ")  # magic, version, dtype_code, token_count, doc_count
DTYPE_BY_CODE: dict[int, np.dtype] = {2: np.dtype("<u2"), 4: np.dtype("<u4")}
CODE_BY_NAME = {"uint16": 2, "uint32": 4}
SPLITS = ("train", "validation")
MANIFEST = "manifest.json"


class ShardError(ValueError):
    """A shard file or its index is missing, truncated or not what the manifest says."""


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    return DTYPE_BY_CODE[2] if vocab_size <= 65536 else DTYPE_BY_CODE[4]


def shard_name(split: str, number: int) -> str:
    return f"{split}-{number:05d}.bin"


def index_path(shard_path: str | os.PathLike) -> Path:
    return Path(shard_path).with_suffix(".idx")


def documents_path(folder: str | os.PathLike, split: str) -> Path:
    return Path(folder) / f"{split}-documents.parquet"


def encode_header(dtype_code: int, token_count: int, doc_count: int) -> bytes:
    return _HEADER.pack(MAGIC, VERSION, dtype_code, token_count, doc_count).ljust(HEADER_BYTES, b"\0")


# ----------------------------------------------------------------------------------------------
# Reading


def read_header(path: str | os.PathLike) -> dict:
    """The header of a shard: magic, version, dtype (numpy name), dtype_code, token_count, doc_count."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(HEADER_BYTES)
    except FileNotFoundError:
        raise ShardError(f"shard {path}: file not found") from None
    if len(raw) < HEADER_BYTES:
        raise ShardError(f"shard {path}: header truncated ({len(raw)} of {HEADER_BYTES} bytes)")
    magic, version, dtype_code, token_count, doc_count = _HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise ShardError(f"shard {path}: bad magic {magic!r}, expected {MAGIC!r} (not a token shard)")
    if version != VERSION:
        raise ShardError(f"shard {path}: format version {version}, this reader understands {VERSION}")
    if dtype_code not in DTYPE_BY_CODE:
        raise ShardError(f"shard {path}: unknown dtype code {dtype_code} (2 = uint16, 4 = uint32)")
    return {"magic": magic.decode(), "version": version, "dtype": DTYPE_BY_CODE[dtype_code].name,
            "dtype_code": dtype_code, "token_count": token_count, "doc_count": doc_count}


def read_tokens(path: str | os.PathLike) -> np.memmap:
    """The shard's tokens as a read-only memory map (nothing is read until it is indexed)."""
    path = Path(path)
    header = read_header(path)
    dtype = DTYPE_BY_CODE[header["dtype_code"]]
    expected = HEADER_BYTES + header["token_count"] * dtype.itemsize
    actual = path.stat().st_size
    if actual != expected:
        raise ShardError(f"shard {path}: {actual} bytes on disk but the header promises {expected} "
                         f"({header['token_count']} {dtype.name} tokens); the file is truncated or padded")
    if header["token_count"] == 0:
        return np.zeros(0, dtype=dtype)  # np.memmap refuses empty maps
    return np.memmap(path, dtype=dtype, mode="r", offset=HEADER_BYTES, shape=(header["token_count"],))


def read_index(path: str | os.PathLike) -> np.ndarray:
    """Start offsets of the documents that start in the shard at `path` (its `.bin` or `.idx` path)."""
    idx = index_path(path)
    if not idx.exists():
        raise ShardError(f"shard index {idx}: file not found")
    size = idx.stat().st_size
    if size % 8:
        raise ShardError(f"shard index {idx}: {size} bytes is not a whole number of uint64 offsets")
    return np.fromfile(idx, dtype="<u8")


def verify_shard(path: str | os.PathLike, expected_sha256: str | None = None) -> None:
    """Raise `ShardError` naming the file and the fault unless the shard and its index are sound."""
    path = Path(path)
    header = read_header(path)
    tokens = read_tokens(path)  # checks the size against the header
    if expected_sha256 is not None:
        actual = file_sha256(path)
        if actual != expected_sha256:
            raise ShardError(f"shard {path}: sha256 {actual} does not match the manifest's {expected_sha256}")
    offsets = read_index(path)
    if len(offsets) != header["doc_count"]:
        raise ShardError(f"shard index {index_path(path)}: {len(offsets)} offsets but the header counts "
                         f"{header['doc_count']} documents")
    if len(offsets):
        if np.any(np.diff(offsets.astype(np.int64)) <= 0):
            raise ShardError(f"shard index {index_path(path)}: offsets are not strictly increasing")
        if offsets[-1] >= header["token_count"]:
            raise ShardError(f"shard index {index_path(path)}: offset {int(offsets[-1])} is past the "
                             f"{header['token_count']} tokens of the shard")
    del tokens


def load_manifest(folder: str | os.PathLike) -> dict:
    """The shard folder's manifest, after checking its format fields."""
    path = Path(folder) / MANIFEST
    manifest = read_json(path, f"{path}: no manifest; materialize token_shards first", error=ShardError,
                         missing_error=ShardError)
    if manifest.get("format") != "llmatok" or manifest.get("version") != VERSION:
        raise ShardError(f"{path}: format {manifest.get('format')!r} version {manifest.get('version')!r}, "
                         f"expected 'llmatok' version {VERSION}")
    for key in ("vocab_size", "dtype", "eot_id", "tokenizer_sha256", "splits"):
        if key not in manifest:
            raise ShardError(f"{path}: missing field {key!r}")
    return manifest


# ----------------------------------------------------------------------------------------------
# Writing


@dataclass
class SplitWriter:
    """Appends documents of one split to fixed-size shards, each finished via temp name + rename."""

    folder: Path
    split: str
    shard_tokens: int
    dtype: np.dtype
    shards: list[dict] = field(default_factory=list)
    position: int = 0  # tokens written to this split so far
    _file: object = None
    _tmp: Path | None = None
    _filled: int = 0  # tokens in the open shard
    _starts: list[np.ndarray] = field(default_factory=list)  # split-wide start positions not yet indexed

    def append(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Write documents laid end to end (`tokens`, each ending with EOT); return their start positions."""
        starts = self.position + np.concatenate(([0], np.cumsum(lengths[:-1], dtype=np.int64)))
        self._starts.append(starts.astype(np.uint64))
        tokens = tokens.astype(self.dtype, copy=False)
        while len(tokens):
            if self._file is None:
                self._open()
            room = self.shard_tokens - self._filled
            chunk, tokens = tokens[:room], tokens[room:]
            self._file.write(chunk.tobytes())
            self._filled += len(chunk)
            self.position += len(chunk)
            if self._filled == self.shard_tokens:
                self._finish()
        return starts

    def close(self) -> list[dict]:
        if self._file is not None:
            self._finish()
        return self.shards

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._tmp.unlink(missing_ok=True)
            self._file = None

    def _open(self) -> None:
        name = shard_name(self.split, len(self.shards))
        self._tmp = self.folder / f".{name}.{uuid.uuid4().hex}.tmp"
        self._file = open(self._tmp, "wb")  # noqa: SIM115 - closed in _finish/abort
        self._file.write(b"\0" * HEADER_BYTES)
        self._filled = 0

    def _finish(self) -> None:
        begin = self.position - self._filled
        pending = np.concatenate(self._starts) if self._starts else np.zeros(0, np.uint64)
        inside = pending < self.position
        offsets = (pending[inside] - np.uint64(begin)).astype("<u8")
        self._starts = [pending[~inside]]
        self._file.seek(0)
        self._file.write(encode_header(CODE_BY_NAME[self.dtype.name], self._filled, len(offsets)))
        self._file.close()
        self._file = None
        name = shard_name(self.split, len(self.shards))
        final = self.folder / name
        idx_tmp = self.folder / f".{final.stem}.{uuid.uuid4().hex}.idx.tmp"
        offsets.tofile(idx_tmp)
        os.replace(idx_tmp, index_path(final))
        os.replace(self._tmp, final)
        self.shards.append({"file": name, "tokens": self._filled, "documents": len(offsets),
                            "sha256": file_sha256(final)})
        log.info("wrote %s: %d tokens, %d documents start here", name, self._filled, len(offsets))


def _encoder(tokenizer):
    # encode_batch_fast skips the character offsets we never use (tokenizers >= 0.21)
    return getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)


def encode_documents(tokenizer, texts: list[str], eot_id: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Encode `texts` in parallel; return the tokens laid end to end with EOT after each, and lengths."""
    encodings = _encoder(tokenizer)(texts, add_special_tokens=False)
    ids = [e.ids for e in encodings]
    lengths = np.fromiter((len(i) + 1 for i in ids), dtype=np.int64, count=len(ids))
    tokens = np.empty(int(lengths.sum()), dtype=dtype)
    ends = np.cumsum(lengths)
    tokens[ends - 1] = eot_id
    body = np.ones(len(tokens), dtype=bool)
    body[ends - 1] = False
    tokens[body] = np.fromiter(itertools.chain.from_iterable(ids), dtype=dtype, count=int(body.sum()))
    return tokens, lengths


def write_shards(mixture_files: list[Path], tokenizer_path: str | os.PathLike, out_dir: str | os.PathLike,
                 shard_tokens: int, batch_documents: int, engine=None, scratch: str | os.PathLike | None = None
                 ) -> dict:
    """Tokenize the mixture into per-split binary shards under `out_dir`; write and return the manifest.

    Streams the Parquet files in record batches of `batch_documents`, appends EOT after every document,
    and writes `shard_tokens` tokens per shard. Documents with null/empty text or an unknown split are
    counted under `skipped`. With no `engine` (or the local one) batches are encoded on all cores while
    the previous one is written. On the ray engine each mixture part is encoded by a task into `scratch`
    (a folder every task can reach), and this process merges the encoded parts in fetch order into the
    shards: the same documents in the same order, so the same bytes.
    """
    if shard_tokens <= 0 or batch_documents <= 0:
        raise ValueError(f"shard_tokens ({shard_tokens}) and batch_documents ({batch_documents}) must be positive")
    files = [lake_path(f) for f in mixture_files]
    for path in files:
        if not path.exists():
            raise FileNotFoundError(f"mixture file {path} does not exist; materialize training_mixture first")
    # an empty part (a crawl partition whose pages were all removed) may have been written without columns
    files = [f for f in files if parquet_file(f).metadata.num_rows > 0]
    tokenizer = load_tokenizer(tokenizer_path)
    eot_id = tokenizer.token_to_id(ENDOFTEXT)
    if eot_id is None:
        raise ValueError(f"tokenizer {tokenizer_path}: has no {ENDOFTEXT} token; train it with train_tokenizer")
    vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
    dtype = dtype_for_vocab(vocab_size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # a manifest only ever describes a complete run: a crash below leaves none, never a stale one
    (out / MANIFEST).unlink(missing_ok=True)
    writers = {s: SplitWriter(out, s, shard_tokens, dtype) for s in SPLITS}
    documents: dict[str, list[pl.DataFrame]] = {s: [] for s in SPLITS}
    skipped: dict[str, int] = {}
    started = time.perf_counter()
    n_docs = 0
    try:
        if engine is None or engine.name == "local":
            encoded = _encoded_here(files, tokenizer, eot_id, dtype, batch_documents, skipped)
        else:
            encoded = _encoded_by_tasks(files, str(tokenizer_path), batch_documents, skipped, engine, scratch)
        for n_batches, (batch, tokens_and_lengths) in enumerate(encoded, start=1):
            n_docs += _write_batch(batch, tokens_and_lengths, writers, documents)
            if n_batches % 64 == 0:
                log.info("tokenized %d documents, %d tokens, %.0f tokens/s", n_docs,
                         sum(w.position for w in writers.values()),
                         sum(w.position for w in writers.values()) / (time.perf_counter() - started))
        splits = {s: w.close() for s, w in writers.items()}
    except BaseException:
        for w in writers.values():
            w.abort()
        raise

    manifest = {
        "format": "llmatok", "version": VERSION, "vocab_size": vocab_size, "dtype": dtype.name,
        "eot_id": eot_id, "tokenizer_sha256": file_sha256(tokenizer_path), "shard_tokens": shard_tokens,
        "splits": splits,
        "documents": {s: sum(e["documents"] for e in splits[s]) for s in SPLITS},
        "tokens": {s: sum(e["tokens"] for e in splits[s]) for s in SPLITS},
        "skipped": skipped,
    }  # content only: a rerun of the same data writes the same manifest (training resumes on its checksum)
    _finish(out, documents, manifest)
    log.info("token_shards: %s tokens, %s documents, skipped %s in %.1fs", manifest["tokens"],
             manifest["documents"], skipped or "none", time.perf_counter() - started)
    return manifest


def _finish(out: Path, documents: dict[str, list[pl.DataFrame]], manifest: dict) -> None:
    """The document lists, then the manifest (by rename, so a crash before it leaves none), then the shard
    files of an earlier run that this one did not write are removed."""
    for split, frames in documents.items():
        frame = pl.concat(frames) if frames else pl.DataFrame(schema=_DOCUMENT_SCHEMA)
        write_parquet(frame, documents_path(out, split))
    tmp = out / f".{MANIFEST}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, out / MANIFEST)
    _remove_stale(out, manifest["splits"])


def _encoded_here(files: list[Path], tokenizer, eot_id: int, dtype: np.dtype, batch_documents: int,
                  skipped: dict[str, int]) -> Iterator[tuple[DocumentBatch, tuple[np.ndarray, np.ndarray]]]:
    """Batches in fetch order with their tokens; one thread encodes the next batch (the Rust side releases
    the GIL) while the caller writes this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for batch in iter_batches(files, batch_documents, SPLITS, skipped):
            future = pool.submit(lambda b: (b, encode_documents(tokenizer, b.texts, eot_id, dtype)), batch)
            if pending is not None:
                yield pending.result()
            pending = future
        if pending is not None:
            yield pending.result()


_ENCODED_COLUMNS = ("warc_record_id", "text_hash", "tokens", "split")


def encode_part(number: int, files: tuple[str, ...], tokenizer_path: str, scratch: str,
                batch_documents: int) -> dict[str, int]:
    """Encode mixture part `files[number]` into `scratch/<split>/<number>.parquet` (its documents in order,
    with `tokens` as a list column); return what it skipped. A task of the ray engine."""
    tokenizer = load_tokenizer(tokenizer_path)
    eot_id = tokenizer.token_to_id(ENDOFTEXT)
    dtype = dtype_for_vocab(tokenizer.get_vocab_size(with_added_tokens=True))
    skipped: dict[str, int] = {}
    frames: dict[str, list[pl.DataFrame]] = {s: [] for s in SPLITS}
    for batch in iter_batches([files[number]], batch_documents, SPLITS, skipped):
        tokens, lengths = encode_documents(tokenizer, batch.texts, eot_id, dtype)
        offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
        lists = pl.from_arrow(pa.LargeListArray.from_arrays(offsets, tokens.astype(np.uint32)))
        frame = batch.meta.with_columns(pl.Series("tokens", lists), pl.lit(batch.split).alias("split"))
        if batch.fetch_time is not None:
            frame = frame.with_columns(batch.fetch_time)
        frames[batch.split].append(frame)
    for split, parts in frames.items():
        if parts:
            write_parquet(pl.concat(parts), lake_path(scratch) / split / f"{number:06d}.parquet")
    return skipped


def _encoded_by_tasks(files: list[Path], tokenizer_path: str, batch_documents: int, skipped: dict[str, int],
                      engine, scratch) -> Iterator[tuple[DocumentBatch, tuple[np.ndarray, np.ndarray]]]:
    """Encode every part as a task, then merge each split's encoded parts in fetch order (the merge holds
    a record batch per part, as the text merge does)."""
    if scratch is None:
        raise ValueError("write_shards on the ray engine needs a scratch folder that every task can reach")
    names = tuple(uri(f) for f in files)
    for part_skipped in engine.map(encode_part, list(range(len(names))), "token_shards (encode parts)",
                                   files=names, tokenizer_path=tokenizer_path, scratch=str(scratch),
                                   batch_documents=batch_documents):
        for reason, count in part_skipped.items():
            skipped[reason] = skipped.get(reason, 0) + count
    for split in SPLITS:
        folder = lake_path(scratch) / split
        encoded = sorted(folder.glob("*.parquet"), key=str) if folder.exists() else []
        for frame in in_fetch_order(encoded, batch_documents, _ENCODED_COLUMNS) if encoded else ():
            lists = frame["tokens"]
            tokens = lists.explode().to_numpy()
            lengths = lists.list.len().to_numpy().astype(np.int64)
            meta = frame.select("warc_record_id", pl.col("copy").cast(pl.Int32), "text_hash")
            yield DocumentBatch(split, [], meta), (tokens, lengths)


_DOCUMENT_SCHEMA = {"warc_record_id": pl.Utf8, "copy": pl.Int32, "text_hash": pl.UInt64,
                    "shard": pl.Int32, "offset": pl.UInt64, "tokens": pl.Int64}


def _write_batch(batch: DocumentBatch, encoded: tuple[np.ndarray, np.ndarray], writers: dict[str, SplitWriter],
                 documents: dict[str, list[pl.DataFrame]]) -> int:
    tokens, lengths = encoded
    writer = writers[batch.split]
    starts = writer.append(tokens, lengths)
    documents[batch.split].append(batch.meta.with_columns(
        pl.Series("shard", starts // writer.shard_tokens, dtype=pl.Int32),
        pl.Series("offset", starts % writer.shard_tokens, dtype=pl.UInt64),
        pl.Series("tokens", lengths, dtype=pl.Int64)))
    return len(lengths)


def _remove_stale(out: Path, splits: dict[str, list[dict]]) -> None:
    """Drop shards of an earlier, longer run that the new manifest no longer lists."""
    current = {e["file"] for entries in splits.values() for e in entries}
    for split in SPLITS:
        for path in out.glob(f"{split}-*.bin"):
            if path.name not in current:
                path.unlink(missing_ok=True)
                index_path(path).unlink(missing_ok=True)
