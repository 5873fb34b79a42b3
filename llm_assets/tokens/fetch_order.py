"""The training mixture's documents as the shard writer reads them: streamed, merged in fetch order.

The mixture is written one part per crawl file; merging the parts by (fetch time, record id, copy) gives
the same document order, hence byte-identical shards, however the crawl was split into files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from llm_assets.lake import parquet_file, parquet_schema

REQUIRED_COLUMNS = ("text", "split", "warc_record_id")


@dataclass
class DocumentBatch:
    """Documents of one split, in order: their texts and `warc_record_id`, `copy`, `text_hash`, and their
    fetch times when the mixture has them (what the merge of encoded parts orders by)."""

    split: str
    texts: list[str]
    meta: pl.DataFrame  # warc_record_id, copy, text_hash
    fetch_time: pl.Series | None = None


def _file_frames(files: list[Path], batch_documents: int,
                 required: tuple[str, ...] = REQUIRED_COLUMNS) -> Iterator[Iterator[pl.DataFrame]]:
    """Per file, its record batches as frames with the `required` columns, `copy` (and `fetch_time` when
    the file has it), after checking the columns."""
    for path in files:
        parquet = parquet_file(path)
        names = parquet.schema_arrow.names
        missing = [c for c in required if c not in names]
        if missing:
            raise ValueError(f"mixture file {path}: missing column(s) {', '.join(missing)}; "
                             f"it has {', '.join(names)}")
        columns = [*required, *(c for c in ("copy", "fetch_time") if c in names)]

        def frames(parquet=parquet, path=path, columns=columns) -> Iterator[pl.DataFrame]:
            for record_batch in parquet.iter_batches(batch_size=batch_documents, columns=columns):
                frame = pl.from_arrow(record_batch)
                if "text" in frame.columns and frame.schema["text"] != pl.Utf8:
                    raise ValueError(f"mixture file {path}: column text is {frame.schema['text']}, "
                                     "expected a string")
                frame = frame.with_columns(pl.col("split").cast(pl.Utf8))
                yield frame if "copy" in frame.columns else frame.with_columns(pl.lit(0).alias("copy"))

        yield frames()


def _with_order_key(frame: pl.DataFrame) -> pl.DataFrame:
    """`_key`: a string that sorts like (fetch time, nulls last; record id; copy)."""
    micros = (pl.col("fetch_time").dt.epoch("us") + (1 << 62)).cast(pl.Utf8).str.zfill(20)
    return frame.with_columns(pl.concat_str([
        pl.when(pl.col("fetch_time").is_null()).then(pl.lit("~")).otherwise(micros),
        pl.col("warc_record_id").fill_null(""),
        pl.col("copy").cast(pl.Int64).cast(pl.Utf8).str.zfill(12),
    ], separator="\x00").alias("_key"))


def in_fetch_order(files: list[Path], batch_documents: int,
                   required: tuple[str, ...] = REQUIRED_COLUMNS) -> Iterator[pl.DataFrame]:
    """The documents of all files merged by (fetch time, record id, copy).

    The training mixture is written one part per WARC file, each part in that order; merging the parts
    gives the same document order, hence the same shards, however the crawl was split into files. The
    merge holds one small record batch per file. Files without a datetime `fetch_time` are read one
    after the other.
    """
    schemas = [parquet_schema(f) for f in files] if len(files) > 1 else []
    ordered = bool(schemas) and all(
        "fetch_time" in schema.names and isinstance(schema.field("fetch_time").type, pa.TimestampType)
        for schema in schemas)
    if not ordered:
        for frames in _file_frames(files, batch_documents, required):
            yield from frames
        return
    # a batch per file, smaller with many files so the merge holds about 64 K documents at most
    per_file = max(64, min(batch_documents, 65_536 // len(files)))
    sources = [iter(frames) for frames in _file_frames(files, per_file, required)]
    buffers: list[pl.DataFrame | None] = [None] * len(sources)

    def refill(i: int) -> None:
        while buffers[i] is None or buffers[i].height == 0:
            frame = next(sources[i], None)
            if frame is None:
                buffers[i] = None
                return
            buffers[i] = _with_order_key(frame)

    for i in range(len(sources)):
        refill(i)
    out: list[pl.DataFrame] = []
    waiting = 0
    while live := [i for i, b in enumerate(buffers) if b is not None]:
        # every row up to the smallest of the buffers' last keys can go: no file holds a smaller one later
        bound = min(buffers[i]["_key"][-1] for i in live)
        ready = []
        for i in live:
            ready.append(buffers[i].filter(pl.col("_key") <= bound))
            buffers[i] = buffers[i].filter(pl.col("_key") > bound)
            refill(i)
        out.append(pl.concat(ready, how="diagonal_relaxed").sort("_key", maintain_order=True).drop("_key"))
        waiting += out[-1].height
        if waiting >= batch_documents:  # hand on full batches: encoding runs in parallel per batch
            yield pl.concat(out)
            out, waiting = [], 0
    if out:
        yield pl.concat(out)


def iter_batches(files: list[Path], batch_documents: int, splits: tuple[str, ...],
                 skipped: dict[str, int]) -> Iterator[DocumentBatch]:
    """Per-split batches of documents, streamed from the mixture files in record batches and merged in fetch
    order; documents with empty text or a split not in `splits` are counted in `skipped` and left out."""
    for frame in in_fetch_order(files, batch_documents):
        empty = frame["text"].is_null() | (frame["text"] == "")
        unknown = ~frame["split"].is_in(splits) | frame["split"].is_null()
        for reason, mask in (("empty_text", empty), ("unknown_split", unknown & ~empty)):
            count = int(mask.fill_null(True).sum())
            if count:
                skipped[reason] = skipped.get(reason, 0) + count
        frame = frame.filter(~empty.fill_null(True) & ~unknown.fill_null(True))
        for split in splits:
            part = frame.filter(pl.col("split") == split)
            if part.height:
                meta = part.select(
                    pl.col("warc_record_id"), pl.col("copy").cast(pl.Int32),
                    pl.col("text").hash(seed=0).alias("text_hash"))
                yield DocumentBatch(split, part["text"].to_list(), meta,
                                    part["fetch_time"] if "fetch_time" in part.columns else None)
