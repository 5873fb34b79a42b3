"""A robust WARC reader: response records to rows, every bad record counted by reason and skipped.

Gzipped WARC files are read one gzip member at a time (the WARC convention is one member per record), so
a corrupt or truncated member costs only its own record: the reader resynchronises on the next gzip
header and carries on. Uncompressed files are read by Content-Length with the same resynchronisation on
the next `WARC/1.x` line.
"""

from __future__ import annotations

import gzip
import logging
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import polars as pl

from .sources import open_uri

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b\x08"
CHUNK = 1 << 22
RECORD_START = re.compile(rb"WARC/1\.[01]\r\n")

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


# --------------------------------------------------------------------------- record framing


class _Buffer:
    """A sliding window over a byte stream with cheap consumption from the front."""

    def __init__(self, stream):
        self.stream = stream
        self.data = bytearray()
        self.pos = 0
        self.eof = False
        self.total = 0

    def fill(self, want: int) -> None:
        while len(self.data) - self.pos < want and not self.eof:
            chunk = self.stream.read(CHUNK)
            if not chunk:
                self.eof = True
                break
            self.total += len(chunk)
            if self.pos > CHUNK:  # compact: drop consumed bytes now and then, not per record
                del self.data[: self.pos]
                self.pos = 0
            self.data += chunk

    def available(self) -> int:
        return len(self.data) - self.pos

    def find(self, needle: bytes | re.Pattern, start: int) -> int:
        """Absolute index of the next match at or after pos+start, reading more as needed; -1 at EOF."""
        while True:
            if isinstance(needle, bytes):
                i = self.data.find(needle, self.pos + start)
            else:
                m = needle.search(self.data, self.pos + start)
                i = m.start() if m else -1
            if i >= 0 or self.eof:
                return i - self.pos if i >= 0 else -1
            self.fill(self.available() + CHUNK)


def _gzip_members(buf: _Buffer, tally: Tally) -> Iterator[bytes]:
    """Decompressed gzip members; a corrupt or truncated member is counted and skipped."""
    while True:
        buf.fill(3)
        if buf.available() == 0:
            return
        if buf.data[buf.pos : buf.pos + 3] != GZIP_MAGIC:
            nxt = buf.find(GZIP_MAGIC, 1)
            tally.skipped["garbage_between_records"] += 1
            if nxt < 0:
                return
            buf.pos += nxt
            continue
        d = zlib.decompressobj(31)
        parts: list[bytes] = []
        offset = 0
        ok = False
        try:
            while True:
                if offset >= buf.available():
                    buf.fill(offset + CHUNK)
                    if offset >= buf.available():
                        break  # ran out of file inside the member
                with memoryview(buf.data) as whole:
                    view = whole[buf.pos + offset : buf.pos + offset + CHUNK]
                    fed = len(view)
                    parts.append(d.decompress(view))
                    view.release()
                if d.eof:
                    offset += fed - len(d.unused_data)
                    ok = True
                    break
                offset += fed
        except zlib.error:
            ok = False
        if ok:
            buf.pos += offset
            yield b"".join(parts)
            continue
        tally.skipped["corrupt_gzip_member"] += 1
        nxt = buf.find(GZIP_MAGIC, 1)
        if nxt < 0:
            return
        buf.pos += nxt


def _plain_records(buf: _Buffer, tally: Tally) -> Iterator[bytes]:
    """Records of an uncompressed WARC, framed by Content-Length and resynchronised on `WARC/1.x`."""
    while True:
        buf.fill(16)
        if buf.available() == 0:
            return
        if not RECORD_START.match(buf.data, buf.pos):
            nxt = buf.find(RECORD_START, 1)
            tally.skipped["garbage_between_records"] += 1
            if nxt < 0:
                return
            buf.pos += nxt
            continue
        head_end = buf.find(b"\r\n\r\n", 0)
        nxt_start = buf.find(RECORD_START, 1)
        length = None
        if head_end >= 0 and (nxt_start < 0 or head_end < nxt_start):
            m = re.search(rb"\r\nContent-Length:\s*(\d+)", bytes(buf.data[buf.pos : buf.pos + head_end]), re.I)
            length = int(m.group(1)) if m else None
        if length is not None:
            end = head_end + 4 + length
            buf.fill(end + 4)
            well_framed = buf.data[buf.pos + end : buf.pos + end + 4] == b"\r\n\r\n"
            if well_framed:
                yield bytes(buf.data[buf.pos : buf.pos + end + 4])
                buf.pos += end + 4
                continue
        # framing is broken: hand the bytes up to the next record to the parser, which names the fault
        stop = nxt_start if nxt_start >= 0 else buf.available()
        buf.fill(stop)
        yield bytes(buf.data[buf.pos : buf.pos + stop])
        buf.pos += stop


# --------------------------------------------------------------------------- record parsing


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split(b"\r\n"):
        if not line:
            continue
        key, sep, value = line.partition(b":")
        if not sep:
            raise ValueError("header line without a colon")
        headers[key.decode("ascii").strip().lower()] = value.decode("utf-8").strip()
    return headers


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            raise ValueError("chunk size line missing")
        size = int(body[pos:eol].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += body[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


def _decode_content(body: bytes, encoding: str) -> bytes:
    encoding = encoding.lower().strip()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return gzip.decompress(body)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -15)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)


def _parse_http(block: bytes) -> tuple[int, str, str | None, bytes]:
    head_end = block.find(b"\r\n\r\n")
    if head_end < 0:
        raise ValueError("no end of HTTP headers")
    lines = block[:head_end].split(b"\r\n")
    status_line = lines[0].decode("latin-1").split(None, 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/"):
        raise ValueError("bad HTTP status line")
    status = int(status_line[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(b":")
        if sep:
            headers[key.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    body = block[head_end + 4 :]
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    body = _decode_content(body, headers.get("content-encoding", ""))
    ctype = headers.get("content-type", "")
    mime = ctype.split(";")[0].strip().lower() or "application/octet-stream"
    m = _CHARSET.search(ctype)
    return status, mime, (m.group(1).lower() if m else None), body


def _parse_record(raw: bytes, warc_file: str, tally: Tally) -> dict | None:
    tally.records_seen += 1
    head_end = raw.find(b"\r\n\r\n")
    if not raw.startswith(b"WARC/") or head_end < 0:
        tally.skipped["bad_record_header"] += 1
        return None
    version, _, header_block = raw[:head_end].partition(b"\r\n")
    try:
        headers = _parse_headers(header_block)
    except UnicodeDecodeError:
        tally.skipped["header_not_utf8"] += 1
        return None
    except ValueError:
        tally.skipped["bad_record_header"] += 1
        return None
    length = headers.get("content-length")
    if length is None:
        tally.skipped["missing_content_length"] += 1
        return None
    if not length.isdigit():
        tally.skipped["bad_content_length"] += 1
        return None
    block = raw[head_end + 4 :]
    if block.endswith(b"\r\n\r\n"):
        block = block[:-4]
    if len(block) != int(length):
        tally.skipped["content_length_mismatch"] += 1
        return None
    wtype = headers.get("warc-type", "").lower()
    if wtype != "response":
        tally.non_response[wtype or "missing"] += 1
        return None
    url = headers.get("warc-target-uri", "")
    if url.startswith("<") and url.endswith(">"):
        url = url[1:-1]  # the WARC 1.0 spec's own example wraps the URI; keep the record
        tally.repaired["target_uri_angle_brackets"] += 1
    host = urlsplit(url).hostname
    if not host:
        tally.skipped["bad_target_uri"] += 1
        return None
    if "application/http" not in headers.get("content-type", "application/http"):
        tally.skipped["not_http_response"] += 1
        return None
    try:
        status, mime, charset, body = _parse_http(block)
    except (ValueError, OSError, EOFError, zlib.error):
        tally.skipped["bad_http_payload"] += 1
        return None
    try:
        fetched = datetime.fromisoformat(headers.get("warc-date", "").replace("Z", "+00:00"))
        fetched = fetched.astimezone(UTC) if fetched.tzinfo else fetched.replace(tzinfo=UTC)
    except ValueError:
        tally.skipped["bad_warc_date"] += 1
        return None
    return {
        "url": url,
        "warc_record_id": headers.get("warc-record-id", ""),
        "warc_file": warc_file,
        "fetch_time": fetched,
        "http_status": status,
        "content_type": mime,
        "charset": charset,
        "body": body,
        "host": host.lower(),
    }


# --------------------------------------------------------------------------- public API


def iter_warc_batches(uri: str, batch_records: int = 2000, tally: Tally | None = None
                      ) -> Iterator[pl.DataFrame]:
    """Response records of one WARC file as frames of `batch_records` rows (the raw_crawl schema)."""
    tally = tally if tally is not None else Tally()
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    try:
        stream = open_uri(uri)
    except (OSError, ValueError) as exc:
        raise UnreadableWarcError(f"cannot open WARC file {uri}: {exc}") from exc
    with stream:
        buf = _Buffer(stream)
        try:
            buf.fill(4)
        except OSError as exc:
            raise UnreadableWarcError(f"cannot read WARC file {uri}: {exc}") from exc
        head = bytes(buf.data[:8])
        if head.startswith(GZIP_MAGIC):
            records = _gzip_members(buf, tally)
        elif head.startswith(b"WARC/"):
            records = _plain_records(buf, tally)
        else:
            raise UnreadableWarcError(
                f"{uri} is not a WARC file: it starts with {head!r}, neither gzip nor 'WARC/'"
            )
        rows: list[dict] = []
        for raw in records:
            row = _parse_record(raw, name, tally)
            if row is not None:
                rows.append(row)
            if len(rows) >= batch_records:
                yield pl.DataFrame(rows, schema=RAW_SCHEMA)
                rows = []
        if rows:
            yield pl.DataFrame(rows, schema=RAW_SCHEMA)
        tally.bytes_read = buf.total
    if tally.records_seen == 0 and sum(tally.skipped.values()) > 0:
        raise UnreadableWarcError(
            f"{uri}: no WARC record could be read ({dict(tally.skipped)}); is it a WARC file?"
        )


def read_warc(uri: str) -> WarcRead:
    """All response records of one WARC file, with the skip reasons counted."""
    tally = Tally()
    frames = list(iter_warc_batches(uri, tally=tally))
    records = pl.concat(frames) if frames else pl.DataFrame(schema=RAW_SCHEMA)
    if tally.skipped:
        log.warning("%s: skipped %s", uri, dict(tally.skipped))
    return WarcRead(records, dict(tally.skipped), dict(tally.repaired), dict(tally.non_response),
                    tally.bytes_read, tally.records_seen)
