"""Data-quality checks on the tokenizer and the token shards; each returns `(passed, details)`.

Validation leakage is checked on the `<split>-documents.parquet` sidecars that `write_shards` writes,
after proving each sidecar agrees with the shard `.idx` files. Two keys are compared:
`warc_record_id` (the same page in both splits) and a hash of the document text (the same text under
another record id, e.g. a mirror that deduplication missed). Byte-level BPE maps equal texts to equal
token sequences and different texts to different ones, so the text hash is a token-sequence hash that
costs nothing to compute and needs no second pass over the shards. (Both sides' hashes are written by
the same `write_shards` run, so polars' hash being version-specific does not matter.)
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import polars as pl

from llm_assets.lake import file_sha256
from llm_assets.tokens.shards import (
    SPLITS,
    ShardError,
    documents_path,
    load_manifest,
    read_header,
    read_index,
    read_tokens,
    verify_shard,
)
from llm_assets.tokens.tokenizer import load_tokenizer

log = logging.getLogger(__name__)

_EXAMPLES = 5  # failing examples reported in details
_CHUNK = 1 << 22  # tokens scanned at a time from a memory map


def check_round_trip(tokenizer_path: str | os.PathLike, texts: Iterable[str], sample_size: int = 200,
                     seed: int = 0) -> tuple[bool, dict]:
    """decode(encode(text)) == text on a random sample of `texts`, encoding exactly as the shards do."""
    texts = [t for t in texts if t]
    if not texts:
        return False, {"error": "no non-empty texts to sample"}
    sample = random.Random(seed).sample(texts, min(sample_size, len(texts)))
    tokenizer = load_tokenizer(tokenizer_path)
    encodings = tokenizer.encode_batch(sample, add_special_tokens=False)
    decoded = tokenizer.decode_batch([e.ids for e in encodings], skip_special_tokens=False)
    failures = [(t, d) for t, d in zip(sample, decoded, strict=True) if t != d]
    return not failures, {
        "sampled": len(sample),
        "failures": len(failures),
        "examples": [{"text": t[:200], "decoded": d[:200]} for t, d in failures[:_EXAMPLES]],
    }


def check_shard_integrity(folder: str | os.PathLike, tokenizer_path: str | os.PathLike | None = None
                          ) -> tuple[bool, dict]:
    """Every shard in the manifest exists, has a valid header and index, and matches its sha256 and counts."""
    folder = Path(folder)
    try:
        manifest = load_manifest(folder)
    except ShardError as err:
        return False, {"errors": [str(err)]}
    errors = []
    checked = 0
    for split, entries in manifest["splits"].items():
        for entry in entries:
            path = folder / entry["file"]
            try:
                verify_shard(path, entry["sha256"])
                header = read_header(path)
            except ShardError as err:
                errors.append(str(err))
                continue
            checked += 1
            if header["dtype"] != manifest["dtype"]:
                errors.append(f"shard {path}: dtype {header['dtype']}, manifest says {manifest['dtype']}")
            if (header["token_count"], header["doc_count"]) != (entry["tokens"], entry["documents"]):
                errors.append(f"shard {path} ({split}): header counts {header['token_count']} tokens / "
                              f"{header['doc_count']} documents, manifest {entry['tokens']} / {entry['documents']}")
    if tokenizer_path is not None and file_sha256(tokenizer_path) != manifest["tokenizer_sha256"]:
        errors.append(f"tokenizer {tokenizer_path}: sha256 differs from the one the shards were written with")
    return not errors, {"shards_checked": checked, "errors": errors[:_EXAMPLES * 4], "error_count": len(errors)}


def check_token_range(folder: str | os.PathLike) -> tuple[bool, dict]:
    """No token id >= vocab_size, and each split holds exactly one EOT per document (none lost, none injected)."""
    folder = Path(folder)
    manifest = load_manifest(folder)
    vocab_size, eot_id = manifest["vocab_size"], manifest["eot_id"]
    errors = []
    max_token = -1
    for split, entries in manifest["splits"].items():
        eot_count = 0
        for entry in entries:
            tokens = read_tokens(folder / entry["file"])
            for begin in range(0, len(tokens), _CHUNK):
                chunk = np.asarray(tokens[begin:begin + _CHUNK])
                chunk_max = int(chunk.max())
                max_token = max(max_token, chunk_max)
                eot_count += int(np.count_nonzero(chunk == eot_id))
                if chunk_max >= vocab_size:
                    bad = begin + int(np.argmax(chunk >= vocab_size))
                    errors.append(f"shard {folder / entry['file']}: token {chunk_max} >= vocab_size "
                                  f"{vocab_size} (first at position {bad})")
                    break
        documents = sum(e["documents"] for e in entries)
        if eot_count != documents:
            errors.append(f"split {split}: {eot_count} end-of-document tokens for {documents} documents")
        if entries:
            last = read_tokens(folder / entries[-1]["file"])
            if len(last) and int(last[-1]) != eot_id:
                errors.append(f"shard {folder / entries[-1]['file']}: does not end with the EOT token")
    return not errors, {"vocab_size": vocab_size, "max_token": max_token, "errors": errors}


def check_splits_nonempty(folder: str | os.PathLike) -> tuple[bool, dict]:
    """Both train and validation have tokens."""
    manifest = load_manifest(folder)
    tokens = {s: sum(e["tokens"] for e in manifest["splits"].get(s, [])) for s in SPLITS}
    documents = {s: sum(e["documents"] for e in manifest["splits"].get(s, [])) for s in SPLITS}
    return all(n > 0 for n in tokens.values()), {"tokens": tokens, "documents": documents}


def _sidecar(folder: Path, split: str, manifest: dict) -> tuple[pl.DataFrame, list[str]]:
    """The split's document sidecar, and disagreements between it and the shards' `.idx` files."""
    path = documents_path(folder, split)
    if not path.exists():
        return pl.DataFrame(), [f"{path}: missing document sidecar"]
    frame = pl.read_parquet(path)
    errors = []
    entries = manifest["splits"].get(split, [])
    offsets = [read_index(folder / e["file"]) for e in entries]
    index_shard = np.repeat(np.arange(len(entries)), [len(o) for o in offsets])
    index_offset = np.concatenate(offsets) if offsets else np.zeros(0, np.uint64)
    matches = (frame.height == len(index_offset)
               and np.array_equal(frame["shard"].to_numpy(), index_shard)
               and np.array_equal(frame["offset"].to_numpy(), index_offset))
    if not matches:
        errors.append(f"{path}: {frame.height} documents do not match the {len(index_offset)} starts in the "
                      f"{split} .idx files")
    return frame, errors


def check_no_validation_leak(folder: str | os.PathLike) -> tuple[bool, dict]:
    """No validation document is in train, by warc_record_id and by text (token-sequence) hash."""
    folder = Path(folder)
    manifest = load_manifest(folder)
    train, train_errors = _sidecar(folder, "train", manifest)
    validation, validation_errors = _sidecar(folder, "validation", manifest)
    errors = train_errors + validation_errors
    if errors:
        return False, {"errors": errors}
    shared_ids = validation.join(train.select("warc_record_id").unique(), on="warc_record_id", how="semi")
    shared_text = validation.join(train.select("text_hash").unique(), on="text_hash", how="semi")
    leaked = pl.concat([shared_ids, shared_text]).unique("warc_record_id")
    return leaked.height == 0, {
        "validation_documents": validation.height,
        "train_documents": train.height,
        "shared_record_ids": shared_ids["warc_record_id"].n_unique(),
        "shared_texts": shared_text["warc_record_id"].n_unique(),
        "examples": leaked["warc_record_id"].head(_EXAMPLES).to_list(),
    }
