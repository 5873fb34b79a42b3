"""Reference text for the quality classifier, from files: Parquet, JSONL or plain text, gzipped or not."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import polars as pl

REFERENCE_SUFFIXES = (".parquet", ".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".txt", ".txt.gz")
_BLANK_LINES = re.compile(r"\n\s*\n")  # plain text: one document per block


def read_reference_texts(paths: list[str | Path] | tuple) -> pl.DataFrame:
    """`reference_id, text` of every non-empty reference document in `paths` (files, or folders of them).

    Parquet: the `text` column; JSONL (`.jsonl`, `.ndjson`, gzipped too): the `text` field of each line;
    plain text (`.txt`, gzipped too): one document per block of lines between blank lines.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(f for f in path.iterdir() if f.is_file() and f.name.lower().endswith(REFERENCE_SUFFIXES))
            if not found:
                raise ValueError(f"reference folder {path} holds no {', '.join(REFERENCE_SUFFIXES)} files")
            files.extend(found)
        elif not path.is_file():
            raise FileNotFoundError(f"reference file {path} does not exist (CurationConfig.reference_files)")
        elif not path.name.lower().endswith(REFERENCE_SUFFIXES):
            raise ValueError(f"reference file {path}: unknown type; use {', '.join(REFERENCE_SUFFIXES)}")
        else:
            files.append(path)
    ids, texts = [], []
    for index, path in enumerate(files):
        for number, text in enumerate(_reference_file_texts(path)):
            text = text.strip()
            if text:
                ids.append(f"reference:{index}:{path.name}:{number}")
                texts.append(text)
    return pl.DataFrame({"reference_id": ids, "text": texts}, schema={"reference_id": pl.Utf8, "text": pl.Utf8})


def _reference_file_texts(path: Path) -> list[str]:
    name = path.name.lower()
    if name.endswith(".parquet"):
        try:
            return pl.read_parquet(path, columns=["text"])["text"].drop_nulls().cast(pl.Utf8).to_list()
        except pl.exceptions.ColumnNotFoundError:
            raise ValueError(f"reference file {path}: Parquet without a `text` column") from None
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        if name.endswith((".txt", ".txt.gz")):
            return _BLANK_LINES.split(handle.read())
        texts = []
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"reference file {path}:{number}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise ValueError(f"reference file {path}:{number}: expected an object with a string `text` field")
            texts.append(row["text"])
        return texts
