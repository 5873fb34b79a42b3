"""A lenient WARC reader: FastWARC parses records and HTTP headers; we count every record's outcome.

Records are read by FastWARC (resiliparse's C++/Rust WARC library). FastWARC stops at the first corrupt gzip
member and silently ends at a truncated last one, so the reader keeps a thin framing layer of its own for
damage: each record FastWARC yields is held back until the next one has been read cleanly, and on any error
(and for the last record of a run) the reader re-reads from the held record with its own framing, which
resynchronises on the next gzip member or `WARC/1.x` line, recovers records whose Content-Length is wrong or
missing from the record's own end, and hands the file back to FastWARC at the next clean record boundary.

On top of the library's framing and header parsing, the HTTP payload is decoded leniently, as real archives
need (`http_payload`): dechunked only when the body really is chunked, gzip/deflate/br/zstd Content-Encoding
decoded, a header that lies about either (the archiver stored the decoded body) keeps the body and counts a
repair, `X-Crawler-*` headers are informational only, HTTP/1.0 and header-less (HTTP/0.9-style) responses are
kept. `warc_records` turns one record into its outcome; `warc_framing` is the framing for damage.

Every record ends under exactly one outcome: kept (a row), `skipped[reason]` (unreadable) or
`non_response[kind]` (readable but not a document: request, metadata, warcinfo, revisit, dns...). `repaired`
counts fixes applied to kept records (a record can carry several). `records_seen` is their sum:
`records_seen == kept + sum(skipped) + sum(non_response)`.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import polars as pl
from fastwarc.warc import ArchiveIterator, WarcRecord

from .http_payload import HTTP_HEAD_ALLOWANCE
from .sources import open_uri, redact_text, redact_url, source_file_name
from .warc_framing import CHUNK, GZIP_MAGIC, Buffer, GzipMember, frame_records
from .warc_records import Outcome, record_outcome

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 10 << 20

RAW_SCHEMA = {
    "url": pl.Utf8,
    "warc_record_id": pl.Utf8,
    "warc_file": pl.Utf8,
    "fetch_time": pl.Datetime("us", "UTC"),
    "http_status": pl.Int32,
    "content_type": pl.Utf8,
    "charset": pl.Utf8,
    "body": pl.Binary,
    "host": pl.Utf8,
}


class UnreadableWarcError(RuntimeError):
    """The file as a whole cannot be read (missing, not a WARC at all, no permission)."""


@dataclass
class WarcRead:
    records: pl.DataFrame
    skipped: dict[str, int]
    repaired: dict[str, int]
    non_response: dict[str, int]
    bytes_read: int
    records_seen: int = 0


@dataclass
class Tally:
    skipped: Counter = field(default_factory=Counter)
    repaired: Counter = field(default_factory=Counter)
    non_response: Counter = field(default_factory=Counter)
    bytes_read: int = 0
    records_seen: int = 0
    kept: int = 0
    fastwarc_records: int = 0  # records read on FastWARC's fast path (the rest went through the fallback)

    def balanced(self) -> bool:
        """Every record seen is counted under exactly one outcome."""
        return self.records_seen == self.kept + sum(self.skipped.values()) + sum(self.non_response.values())


def iter_warc_batches(uri: str, batch_records: int = 2000, tally: Tally | None = None,
                      max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES) -> Iterator[pl.DataFrame]:
    """Document records of one WARC file as frames of `batch_records` rows (the raw_crawl schema).

    Documents are `response` records (HTTP parsed and decoded), `resource` and `conversion` records (status
    200, typed by their WARC Content-Type). Bodies longer than `max_body_bytes` (None: no cap) are cut there
    and counted as repaired `truncated_body`. Everything else is counted in `tally`.
    """
    tally = tally if tally is not None else Tally()
    name = source_file_name(uri)
    try:
        stream = _seekable(open_uri(uri))
        head = stream.read(8)
        stream.seek(0)
    except Exception as exc:  # any failure to open is the file's (HTTP errors are not all OSErrors)
        raise UnreadableWarcError(f"cannot open WARC file {redact_url(uri)}: {root_cause(exc)}") from exc
    with stream:
        if head.startswith(GZIP_MAGIC):
            gz = True
        elif head.startswith(b"WARC/"):
            gz = False
        else:
            raise UnreadableWarcError(
                f"{redact_url(uri)} is not a WARC file: it starts with {head!r}, neither gzip nor 'WARC/'"
            )
        rows: list[dict] = []
        for kind, value, repairs in _Reader(stream, gz, name, max_body_bytes, tally).outcomes():
            tally.records_seen += 1
            if kind == "kept":
                tally.kept += 1
                tally.repaired.update(repairs)
                rows.append(value)
                if len(rows) >= batch_records:
                    yield pl.DataFrame(rows, schema=RAW_SCHEMA)
                    rows = []
            elif kind == "skipped":
                tally.skipped[value] += 1
            else:
                tally.non_response[value] += 1
        if rows:
            yield pl.DataFrame(rows, schema=RAW_SCHEMA)
        stream.seek(0, io.SEEK_END)
        tally.bytes_read = stream.tell()
    if tally.kept == 0 and not tally.non_response and tally.skipped:
        raise UnreadableWarcError(
            f"{redact_url(uri)}: no WARC record could be read ({dict(tally.skipped)}); is it a WARC file?"
        )


def read_warc(uri: str, max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES) -> WarcRead:
    """All document records of one WARC file, with the skip reasons counted."""
    tally = Tally()
    frames = list(iter_warc_batches(uri, tally=tally, max_body_bytes=max_body_bytes))
    records = pl.concat(frames) if frames else pl.DataFrame(schema=RAW_SCHEMA)
    if tally.skipped:
        log.warning("%s: skipped %s", redact_url(uri), dict(tally.skipped))
    return WarcRead(records, dict(tally.skipped), dict(tally.repaired), dict(tally.non_response),
                    tally.bytes_read, tally.records_seen)


def root_cause(exc: BaseException) -> str:
    """The innermost cause of `exc` in one line, credentials in URLs redacted: what failed underneath the
    wrappers (an HTTP status, a refused connection, a failed DNS lookup, a missing file)."""
    chain = [exc]
    while (inner := chain[-1].__cause__ or chain[-1].__context__) is not None and inner not in chain:
        chain.append(inner)
    for error in chain:  # an HTTP response (aiohttp's ClientResponseError, urllib's HTTPError) says most
        status = getattr(error, "status", None) or getattr(error, "code", None)
        if isinstance(status, int) and 300 <= status < 600:
            reason = getattr(error, "message", None) or getattr(error, "reason", None) or ""
            return redact_text(f"HTTP {status} {reason}".strip())
    inner = chain[-1]
    if isinstance(inner, socket.gaierror):
        message = f"host name lookup failed ({inner.strerror or inner})"
    elif isinstance(inner, ConnectionRefusedError):
        message = f"connection refused ({inner.strerror or inner})"
    else:
        message = f"{type(inner).__name__}: {inner}"
    return redact_text(" ".join(message.split()))


class _Reader:
    """Alternates between FastWARC (fast path) and our framing (after damage) over one seekable stream."""

    def __init__(self, stream, gz: bool, warc_file: str, cap: int | None, tally: Tally):
        self.f = stream
        self.gz = gz
        self.warc_file = warc_file
        self.cap = cap
        # the framing keeps what record_outcome would read of a block; the rest is read past, never held
        self.keep = None if cap is None else cap + HTTP_HEAD_ALLOWANCE
        self.tally = tally
        try:
            self.fd = stream.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            self.fd = None

    def outcomes(self) -> Iterator[Outcome]:
        pos: int | None = 0
        while pos is not None:
            redo = yield from self._fast(pos)
            pos = yield from self._fallback(redo)

    def _fast(self, start: int) -> Iterator[Outcome]:
        """FastWARC from `start`; returns where our framing must take over (the last, unconfirmed record)."""
        f = self.f
        f.seek(start)
        held: tuple[int, Outcome] | None = None
        last_pos = -1
        try:
            for rec in ArchiveIterator(f, parse_http=False, stream_detect=self.gz, quirks_mode=False):
                pos = rec.stream_pos
                if pos <= last_pos or not self._starts_record(pos):
                    break  # several records in one gzip member: our framing reads those
                outcome = record_outcome(rec, self.warc_file, self.cap)
                if held is not None:
                    self.tally.fastwarc_records += 1
                    yield held[1]
                held, last_pos = (pos, outcome), pos
        except (OSError, ValueError):
            pass
        return held[0] if held is not None else start

    def _starts_record(self, pos: int) -> bool:
        """Whether FastWARC's record position is where a gzip member (or a plain record) starts."""
        if self.fd is not None:
            head = os.pread(self.fd, 6, pos)
        else:
            here = self.f.tell()
            self.f.seek(pos)
            head = self.f.read(6)
            self.f.seek(here)
        return head.startswith(GZIP_MAGIC) if self.gz else head.startswith(b"WARC/1")

    def _fallback(self, start: int) -> Iterator[Outcome]:
        """Our framing from `start` until a clean record boundary; returns where FastWARC resumes (None: EOF)."""
        self.f.seek(start)
        raw = Buffer(self.f, start)
        units = 0
        while True:
            if not self.gz:
                for kind, value in frame_records(raw, None, "garbage_between_records", self.keep):
                    if kind == "clean_end":
                        if units >= 2:
                            return raw.offset()
                        continue
                    units += 1
                    yield self._framed(kind, value)
                return None
            raw.fill(3)
            if raw.available() == 0:
                return None
            if raw.data[raw.pos : raw.pos + 3] != GZIP_MAGIC:
                units += 1
                yield "skipped", "garbage_between_records", ()
                if not raw.skip_to(GZIP_MAGIC, 1):
                    return None
                continue
            member_start = raw.offset()
            member = GzipMember(raw)
            records = clean = lost = 0
            for kind, value in frame_records(Buffer(member), member, "bad_record_header", self.keep):
                if kind == "clean_end":
                    clean += 1
                    continue
                if kind == "lost":
                    lost += 1
                    continue
                records += 1
                units += 1
                yield self._framed(kind, value)
            if member.corrupt:
                if lost or not records:  # a member whose records all came out whole lost nothing
                    units += 1
                    yield "skipped", "corrupt_gzip_member", ()
                self.f.seek(member_start + 1)  # resynchronise on the next gzip header after this one
                raw = Buffer(self.f, member_start + 1)
                if not raw.skip_to(GZIP_MAGIC, 0):
                    return None
                continue
            if records == 1 and clean == 1 and units >= 2:
                return raw.offset()

    def _framed(self, kind: str, value) -> Outcome:
        if kind == "skipped":
            return "skipped", value, ()
        data, framing_repairs = value
        try:
            rec = WarcRecord.from_bytes(data)
        except OSError:
            return "skipped", "bad_record_header", ()
        kind, result, repairs = record_outcome(rec, self.warc_file, self.cap)
        # a block the framing cut may be cut again by record_outcome: one truncated_body per record
        return kind, result, tuple(dict.fromkeys((*framing_repairs, *repairs)))


def _seekable(stream):
    try:
        if stream.seekable():
            return stream
    except (AttributeError, OSError):
        pass
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
    shutil.copyfileobj(stream, spool, CHUNK)
    stream.close()
    spool.seek(0)
    return spool
