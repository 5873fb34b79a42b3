"""One WARC file to one Parquet file of response records, streamed in bounded batches."""

from __future__ import annotations

import os
import time
from collections import Counter
from urllib.parse import parse_qsl, unquote_plus, urlsplit

import polars as pl
import pyarrow.parquet as pq

from llm_assets.lake import atomic_target

from .sources import REDACTED, redact_text, redact_url
from .warc import DEFAULT_MAX_BODY_BYTES, RAW_SCHEMA, Tally, UnreadableWarcError, iter_warc_batches


def _credentials_of(uri: str) -> set[str]:
    """The credential strings in `uri` (userinfo, secret query values, raw and decoded) to scrub from
    messages that may quote them outside a URL."""
    if redact_url(uri) == uri:
        return set()
    parts = urlsplit(uri)
    found = {parts.netloc.rsplit("@", 1)[0]} if "@" in parts.netloc else set()
    found |= {v for v in (parts.password,) if v}
    hidden = {k for k, v in parse_qsl(urlsplit(redact_url(uri)).query, keep_blank_values=True) if v == REDACTED}
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        if value and unquote_plus(name) in hidden:
            found |= {value, unquote_plus(value)}
    return {s for s in found if len(s) >= 3}


def safe_message(text: str, uri: str) -> str:
    """`text` with every URL redacted and every credential of `uri` replaced, on one line."""
    text = redact_text(" ".join(text.split()))
    for credential in sorted(_credentials_of(uri), key=len, reverse=True):
        text = text.replace(credential, REDACTED)
    return text


def _redacted_error(exc: BaseException, uri: str) -> Exception:
    """An error to raise instead of `exc` when `uri` carries credentials: its message and its innermost
    cause's, redacted, with no chained traceback (Dagster stores the whole chain in its event log)."""
    if isinstance(exc, UnreadableWarcError):  # the reader's own message already names the file and cause
        return UnreadableWarcError(safe_message(str(exc), uri))
    message = f"reading {uri}: {type(exc).__name__}: {exc}"
    cause = exc
    while cause.__cause__ is not None or (cause.__context__ is not None and not cause.__suppress_context__):
        cause = cause.__cause__ or cause.__context__
    if cause is not exc and str(cause) not in message:
        message += f" (caused by {type(cause).__name__}: {cause})"
    return UnreadableWarcError(safe_message(message, uri))


def crawl_to_parquet(uri: str, out_path: str | os.PathLike, batch_records: int = 2000,
                     max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES) -> dict:
    """Write the document records of `uri` to `out_path`; return counts for metadata and checks.

    Memory is bounded by one batch of records, not by the file. Bodies longer than `max_body_bytes` are cut
    there (counted as repaired `truncated_body`); None keeps them whole. Nothing it returns or raises holds
    a credential of `uri` (userinfo, presigned signatures): `uri` comes back redacted, and an error reading
    a URL with credentials is raised as `UnreadableWarcError` with a redacted message and no chain.
    """
    tally = Tally()
    statuses: Counter = Counter()
    ctypes: Counter = Counter()
    rows = body_bytes = 0
    start = time.perf_counter()
    writer = None
    with atomic_target(out_path) as tmp:
        try:
            for batch in _batches(uri, batch_records, tally, max_body_bytes):
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
        finally:
            if writer is not None:
                writer.close()
    seconds = time.perf_counter() - start
    bad = sum(tally.skipped.values())
    return {
        "uri": redact_url(uri),
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


def _batches(uri: str, batch_records: int, tally: Tally, max_body_bytes: int | None):
    """`iter_warc_batches`, with errors of a URL that carries credentials raised without them."""
    try:
        yield from iter_warc_batches(uri, batch_records, tally, max_body_bytes=max_body_bytes)
    except Exception as exc:
        if redact_url(uri) == uri:
            raise
        raise _redacted_error(exc, uri) from None
