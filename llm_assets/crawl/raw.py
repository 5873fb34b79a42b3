"""One WARC file to one Parquet file of response records, streamed in bounded batches."""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from .warc import DEFAULT_MAX_BODY_BYTES, RAW_SCHEMA, Tally, iter_warc_batches


def crawl_to_parquet(uri: str, out_path: str | os.PathLike, batch_records: int = 2000,
                     max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES) -> dict:
    """Write the document records of `uri` to `out_path`; return counts for metadata and checks.

    Memory is bounded by one batch of records, not by the file. Bodies longer than `max_body_bytes` are cut
    there (counted as repaired `truncated_body`); None keeps them whole.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex}.tmp")
    tally = Tally()
    statuses: Counter = Counter()
    ctypes: Counter = Counter()
    rows = body_bytes = 0
    start = time.perf_counter()
    writer = None
    try:
        for batch in iter_warc_batches(uri, batch_records, tally, max_body_bytes=max_body_bytes):
            table = batch.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table)
            rows += batch.height
            body_bytes += int(batch["body"].bin.size().sum() or 0)
            statuses.update(dict(batch["http_status"].value_counts().iter_rows()))
            ctypes.update(dict(batch["content_type"].value_counts().iter_rows()))
        if writer is None:
            pl.DataFrame(schema=RAW_SCHEMA).write_parquet(tmp, compression="zstd")
        else:
            writer.close()
            writer = None
        os.replace(tmp, out_path)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    seconds = time.perf_counter() - start
    bad = sum(tally.skipped.values())
    return {
        "uri": uri,
        "rows": rows,
        "records_seen": tally.records_seen,
        "fastwarc_records": tally.fastwarc_records,
        "bytes_read": tally.bytes_read,
        "body_bytes": body_bytes,
        "seconds": seconds,
        "skipped": dict(tally.skipped),
        "repaired": dict(tally.repaired),
        "non_response": dict(tally.non_response),
        "unreadable_share": bad / max(tally.records_seen, 1),
        "http_status": {str(k): v for k, v in sorted(statuses.items())},
        "content_type": dict(ctypes.most_common()),
    }
