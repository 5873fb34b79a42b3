"""A lenient WARC reader: FastWARC parses records and HTTP headers; we count every record's outcome.

Records are read by FastWARC (resiliparse's C++/Rust WARC library). FastWARC stops at the first corrupt gzip
member and silently ends at a truncated last one, so the reader keeps a thin framing layer of its own for
damage: each record FastWARC yields is held back until the next one has been read cleanly, and on any error
(and for the last record of a run) the reader re-reads from the held record with its own framing, which
resynchronises on the next gzip member or `WARC/1.x` line, recovers records whose Content-Length is wrong or
missing from the record's own end, and hands the file back to FastWARC at the next clean record boundary.

On top of the library's framing and header parsing, the HTTP payload is decoded leniently, as real archives
need: dechunked only when the body really is chunked, gzip/deflate/br/zstd Content-Encoding decoded, a header
that lies about either (the archiver stored the decoded body) keeps the body and counts a repair,
`X-Crawler-*` headers are informational only, HTTP/1.0 and header-less (HTTP/0.9-style) responses are kept.

Every record ends under exactly one outcome: kept (a row), `skipped[reason]` (unreadable) or
`non_response[kind]` (readable but not a document: request, metadata, warcinfo, revisit, dns...). `repaired`
counts fixes applied to kept records (a record can carry several). `records_seen` is their sum:
`records_seen == kept + sum(skipped) + sum(non_response)`.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import socket
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

import brotli
import polars as pl
from fastwarc.stream_io import ZstdReader
from fastwarc.warc import ArchiveIterator, HeaderMap, WarcRecord, WarcRecordType

from .sources import open_uri, redact_text, redact_url, source_file_name

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b\x08"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20
MEMBER_INPUT = 1 << 16
MAX_WARC_HEADER = 1 << 20
HTTP_HEAD_ALLOWANCE = 1 << 16
DEFAULT_MAX_BODY_BYTES = 10 << 20
RECORD_START = re.compile(rb"WARC/1\.[01]\r\n")
NEXT_RECORD = re.compile(rb"\r\n\r\nWARC/1\.[01]\r\n")
CONTENT_LENGTH = re.compile(rb"\r\nContent-Length:[ \t]*([^\r\n]*)", re.I)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
_RESPONSE = int(WarcRecordType.response)
_WEB_SCHEMES = ("http", "https", "ftp")
_DOCUMENT_TYPES = int(WarcRecordType.response) | int(WarcRecordType.resource) | int(WarcRecordType.conversion)

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


# An outcome is ("kept", row, repairs), ("skipped", reason, repairs) or ("non_response", kind, repairs).
Outcome = tuple[str, object, tuple[str, ...]]


# --------------------------------------------------------------------------- HTTP payload decoding


def _looks_uncompressed(body: bytes) -> bool:
    """Text-like bytes (no control characters up front): what a lying Content-Encoding header sits on."""
    return not _CONTROL.search(body, 0, 1024)


def _dechunk(body: bytes, truncated_record: bool) -> tuple[bytes, str | None]:
    """The body of a `Transfer-Encoding: chunked` response, or the body as it is when it is not chunked.

    Returns (body, repair): repair is None for a well-formed chunked body, `chunked_header_over_plain_body`
    when the archiver stored the body de-chunked (or it never was chunked), `chunked_body_truncated` when
    the chunks end before the terminating zero-size chunk.
    """
    out = bytearray()
    pos = 0
    n = len(body)
    chunks = 0
    while pos < n:
        eol = body.find(b"\r\n", pos, pos + 1024)
        size_field = body[pos:eol].split(b";", 1)[0].strip() if eol >= 0 else b""
        try:
            size = int(size_field, 16) if size_field else -1
        except ValueError:
            size = -1
        if size < 0:
            return body, "chunked_header_over_plain_body"
        if size == 0:
            return bytes(out), None
        start = eol + 2
        if start + size > n:
            if chunks == 0 and not truncated_record:
                return body, "chunked_header_over_plain_body"
            out += body[start:]
            return bytes(out), "chunked_body_truncated"
        if body[start + size : start + size + 2] not in (b"\r\n", b"", b"\r"):
            return body, "chunked_header_over_plain_body"
        out += body[start : start + size]
        chunks += 1
        pos = start + size + 2
    if chunks == 0:
        return body, "chunked_header_over_plain_body"
    return bytes(out), "chunked_body_truncated"


def _inflate(body: bytes, wbits: int, cap: int) -> tuple[bytes, bool]:
    d = zlib.decompressobj(wbits)
    out = d.decompress(body, cap + 1)
    return out, d.eof


def _decode_one(body: bytes, encoding: str, cap: int) -> tuple[bytes, bool]:
    """(decoded, complete) for one Content-Encoding; raises ValueError when the body is not in it."""
    try:
        if encoding in ("gzip", "x-gzip"):
            if body[:2] != b"\x1f\x8b":
                raise ValueError("no gzip header")
            return _inflate(body, 31, cap)
        if encoding == "deflate":
            try:
                return _inflate(body, 15, cap)
            except zlib.error:
                return _inflate(body, -15, cap)
        if encoding == "br":
            d = brotli.Decompressor()
            out = d.process(body, output_buffer_limit=cap + 1)
            return out, d.is_finished()
        if encoding == "zstd":
            if body[:4] != ZSTD_MAGIC:
                raise ValueError("no zstd frame header")
            return ZstdReader(io.BytesIO(body)).read(cap + 1), True
    except (zlib.error, brotli.error, OSError) as exc:
        raise ValueError(str(exc)) from exc
    raise LookupError(encoding)


def _decode_content(body: bytes, header: str, cap: int, repairs: list[str]) -> bytes | None:
    """The body with its Content-Encoding(s) undone; None when it is encoded but cannot be decoded."""
    encodings = [e.strip().lower() for e in header.split(",")]
    for encoding in reversed([e for e in encodings if e and e != "identity"]):
        try:
            decoded, complete = _decode_one(body, encoding, cap)
        except LookupError:
            if not _looks_uncompressed(body):
                repairs.append("unsupported_content_encoding")
                return None
            repairs.append("content_encoding_header_lies")
            continue
        except ValueError:
            if not _looks_uncompressed(body):
                return None
            repairs.append("content_encoding_header_lies")
            continue
        if not complete and len(decoded) <= cap:
            repairs.append("content_encoding_truncated")
        body = decoded
    return body


def _sniff_type(body: bytes) -> str:
    head = body[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "text/html"
    if head.startswith(b"<?xml"):
        return "text/xml"
    return "application/octet-stream"


def _split_content_type(value: str | None) -> tuple[str, str | None]:
    value = value or ""
    mime = value.split(";")[0].strip().lower() or "application/octet-stream"
    m = _CHARSET.search(value)
    return mime, (m.group(1).lower() if m else None)


# --------------------------------------------------------------------------- one record to an outcome


def _target_uri(raw: bytes, repairs: list[str]) -> str:
    try:
        url = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        url = quote(raw.strip(), safe="!#$%&'()*+,/:;=?@[]~")
        repairs.append("target_uri_not_utf8")
    if url.startswith("<") and url.endswith(">"):
        url = url[1:-1]  # the WARC 1.0 spec's own example wraps the URI; keep the record
        repairs.append("target_uri_angle_brackets")
    return url


_URL_HEAD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(?://([^/?#]*))?")


def _scheme_and_host(url: str) -> tuple[str, str | None]:
    """(scheme, host) of a URL, as urlsplit(url).scheme/.hostname say, at a fraction of its cost per record."""
    m = _URL_HEAD.match(url)
    if not m:
        return "", None
    netloc = (m.group(2) or "").rpartition("@")[2]
    if netloc.startswith("["):
        host = netloc[1 : netloc.find("]")] if "]" in netloc else ""
    else:
        host = netloc.partition(":")[0]
    return m.group(1).lower(), host.lower() or None


def _fetch_time(value: str | None) -> datetime | None:
    value = (value or "").strip()
    try:
        if len(value) == 14 and value.isdigit():  # ARC-style 20240301120000
            return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        fetched = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return fetched.astimezone(UTC) if fetched.tzinfo else fetched.replace(tzinfo=UTC)


def _parse_http(block: bytes, repairs: list[str]) -> tuple[int, dict[bytes, bytes], bytes] | None:
    """FastWARC's HTTP header parser over the block; None for an unreadable status line."""
    first_eol = block.find(b"\n", 0, HTTP_HEAD_ALLOWANCE)
    if first_eol > 0 and block[first_eol - 1 : first_eol] != b"\r":
        end = block.find(b"\n\n", 0, HTTP_HEAD_ALLOWANCE)
        if end >= 0:  # LF-only header lines: give the parser CRLF ones
            block = block[:end].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n\r\n" + block[end + 2 :]
            repairs.append("http_headers_lf_only")
    headers = HeaderMap()
    try:
        consumed = headers.parse(io.BytesIO(block))
    except OSError:
        return None
    status = headers.status_code
    if status is None:
        return None
    return status, _header_dict(headers), block[consumed:]


def _header_dict(headers: HeaderMap) -> dict[bytes, bytes]:
    """Header names lower-cased to their (first) raw value: one call into the library, not one per name."""
    out: dict[bytes, bytes] = {}
    for key, value in headers.items_bytes():
        out.setdefault(key.lower(), value)
    return out


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace").strip()


def _record_outcome(rec: WarcRecord, warc_file: str, cap: int | None) -> Outcome:
    rtype = int(rec.record_type)
    if not rtype & _DOCUMENT_TYPES:
        kind = rec.headers.get("WARC-Type")
        if kind is None:
            return "skipped", "bad_record_header", ()
        return "non_response", kind.strip().lower(), ()
    repairs: list[str] = []
    warc = _header_dict(rec.headers)
    kind = str(rec.record_type)
    url = _target_uri(warc.get(b"warc-target-uri", b""), repairs)
    scheme, host = _scheme_and_host(url)
    if scheme not in _WEB_SCHEMES and scheme:
        # dns:, urn:, file:, wget's metadata:// log... : records about the crawl, not pages of the web
        return "non_response", f"{kind}:{scheme}", ()
    if not host:
        return "skipped", "bad_target_uri", tuple(repairs)
    fetched = _fetch_time(_text(warc.get(b"warc-date")))
    if fetched is None:
        return "skipped", "bad_warc_date", tuple(repairs)
    limit = cap if cap is not None else 1 << 62
    wanted = limit + HTTP_HEAD_ALLOWANCE
    block = rec.reader.read(wanted) if wanted < rec.content_length else rec.reader.read()
    raw_truncated = rec.content_length > len(block) or b"warc-truncated" in warc
    warc_ctype = _text(warc.get(b"content-type"))
    warc_mime, warc_charset = _split_content_type(warc_ctype)
    status, mime, charset = 200, warc_mime, warc_charset
    if rtype == _RESPONSE:
        if block.startswith(b"HTTP/"):
            parsed = _parse_http(block, repairs)
            if parsed is None:
                return "skipped", "bad_http_status_line", tuple(repairs)
            status_code, http, body = parsed
            status = status_code
            mime, charset = _split_content_type(_text(http.get(b"content-type")))
            if b"chunked" in http.get(b"transfer-encoding", b"").lower():
                body, repair = _dechunk(body, raw_truncated)
                if repair:
                    repairs.append(repair)
            encoding = _text(http.get(b"content-encoding"))
            if encoding:
                decoded = _decode_content(body, encoding, limit, repairs)
                if decoded is None:
                    reason = repairs.pop() if repairs[-1:] == ["unsupported_content_encoding"] else \
                        "corrupt_content_encoding"
                    return "skipped", reason, tuple(repairs)
                body = decoded
        elif warc_ctype is None or warc_mime == "application/http":
            body = block  # HTTP/0.9 style: no status line, no headers, just the document
            mime, charset = _sniff_type(body), None
            repairs.append("http_headerless_response")
        else:
            return "non_response", f"response:{warc_mime}", ()
    else:
        body = block  # resource / conversion: the block is the document, typed by the WARC Content-Type
    if len(body) > limit:
        body = body[:limit]
        repairs.append("truncated_body")
    row = {
        "url": url,
        "warc_record_id": _text(warc.get(b"warc-record-id")) or "",
        "warc_file": warc_file,
        "fetch_time": fetched,
        "http_status": status,
        "content_type": mime,
        "charset": charset,
        "body": body,
        "host": host,
    }
    return "kept", row, tuple(repairs)


# --------------------------------------------------------------------------- our framing, for damage


class _Buffer:
    """A sliding window over a byte stream with cheap consumption from the front."""

    def __init__(self, stream, offset: int = 0):
        self.stream = stream
        self.data = bytearray()
        self.pos = 0
        self.eof = False
        self.base = offset  # absolute offset of data[0] in the stream

    def fill(self, want: int) -> None:
        while len(self.data) - self.pos < want and not self.eof:
            chunk = self.stream.read(max(CHUNK, want))
            if not chunk:
                self.eof = True
                break
            if self.pos > CHUNK:  # compact: drop consumed bytes now and then, not per record
                del self.data[: self.pos]
                self.base += self.pos
                self.pos = 0
            self.data += chunk

    def available(self) -> int:
        return len(self.data) - self.pos

    def offset(self) -> int:
        return self.base + self.pos

    def find(self, needle: bytes | re.Pattern, start: int, limit: int | None = None) -> int:
        """Index (relative to pos) of the next match at or after pos+start, reading more as needed; -1 if none."""
        while True:
            if isinstance(needle, bytes):
                i = self.data.find(needle, self.pos + start)
            else:
                m = needle.search(self.data, self.pos + start)
                i = m.start() if m else -1
            if i >= 0:
                return i - self.pos
            if self.eof or (limit is not None and self.available() > limit):
                return -1
            self.fill(self.available() + CHUNK)


class _Member:
    """One gzip member as a stream of decompressed bytes; `corrupt` is set when it breaks or ends early."""

    def __init__(self, raw: _Buffer):
        self.raw = raw
        self.d = zlib.decompressobj(31)
        self.done = False
        self.corrupt = False

    def read(self, size: int = CHUNK) -> bytes:
        raw = self.raw
        while not self.done:
            raw.fill(MEMBER_INPUT)
            if raw.available() == 0:
                self.done = self.corrupt = True  # the file ends inside the member
                break
            view = bytes(raw.data[raw.pos : raw.pos + MEMBER_INPUT])
            try:
                out = self.d.decompress(view, size)
            except zlib.error:
                self.done = self.corrupt = True
                break
            raw.pos += len(view) - len(self.d.unconsumed_tail) - len(self.d.unused_data)
            if self.d.eof:
                self.done = True
            if out:
                return out
        return b""


def _with_length(head: bytes, length: int) -> bytes:
    """The WARC header block with its Content-Length set to `length` (replaced or added)."""
    line = f"\r\nContent-Length: {length}".encode()
    if CONTENT_LENGTH.search(head):
        return CONTENT_LENGTH.sub(line, head, count=1)
    return head + line


def _frame_records(buf: _Buffer, source, stray: str) -> Iterator[tuple[str, object]]:
    """Records of one uncompressed stretch (a gzip member or a plain file) by Content-Length, leniently.

    Yields ("record", (bytes, framing_repair | None)), ("skipped", reason), ("clean_end", None) when a record
    ended exactly where its Content-Length said (a safe point to hand back to FastWARC), and ("lost", None)
    when a broken gzip member ends inside a record. Bytes that are not a record count once as `stray`.
    """
    broken = lambda: getattr(source, "corrupt", False)  # noqa: E731
    while True:
        buf.fill(16)
        while buf.available() and buf.data[buf.pos] in b"\r\n":
            buf.pos += 1  # blank lines between records are not data
            buf.fill(16)
        if buf.available() == 0:
            return
        if not RECORD_START.match(buf.data, buf.pos):
            nxt = buf.find(RECORD_START, 1)
            if nxt < 0:
                buf.pos += buf.available()
                yield ("lost", None) if broken() else ("skipped", stray)
                return
            yield "skipped", stray
            buf.pos += nxt
            continue
        head_end = buf.find(b"\r\n\r\n", 0, MAX_WARC_HEADER)
        if head_end < 0:
            nxt = buf.find(RECORD_START, 1)
            if broken() and nxt < 0:
                yield "lost", None
                return
            yield "skipped", "bad_record_header"
            if nxt < 0:
                buf.pos += buf.available()
                return
            buf.pos += nxt
            continue
        head = bytes(buf.data[buf.pos : buf.pos + head_end])
        m = CONTENT_LENGTH.search(head)
        value = m.group(1).strip() if m else None
        if value is not None and value.isdigit():
            end = head_end + 4 + int(value)
            buf.fill(end + 16)
            if buf.data[buf.pos + end : buf.pos + end + 4] == b"\r\n\r\n":
                after = buf.pos + end + 4
                while after < len(buf.data) and buf.data[after] in b"\r\n":
                    after += 1
                if after >= len(buf.data) and buf.eof or RECORD_START.match(buf.data, after):
                    record = bytes(buf.data[buf.pos : buf.pos + end + 4])
                    buf.pos += end + 4
                    yield "record", (record, None)
                    if not broken():
                        yield "clean_end", None
                    continue
        # the Content-Length is wrong or missing: the record ends where the next one starts, or at the end
        nxt = buf.find(NEXT_RECORD, head_end)
        if nxt >= 0:
            block = bytes(buf.data[buf.pos + head_end + 4 : buf.pos + nxt])
            advance = nxt + 4
        else:
            buf.fill(buf.available() + CHUNK)
            while not buf.eof:
                buf.fill(buf.available() + CHUNK)
            tail = bytes(buf.data[buf.pos + head_end + 4 :])
            if broken() or not tail.endswith(b"\r\n"):
                # the file (or the broken member) ends inside this record
                yield ("lost", None) if broken() else ("skipped", "truncated_record")
                buf.pos += buf.available()
                return
            block = tail[:-4] if tail.endswith(b"\r\n\r\n") else tail[:-2]
            advance = buf.available()
        if value is None:
            reason = "missing_content_length"
        elif not value.isdigit():
            reason = "bad_content_length"
        else:
            reason = "content_length_mismatch"
        record = _with_length(head, len(block)) + b"\r\n\r\n" + block + b"\r\n\r\n"
        buf.pos += advance
        yield "record", (record, reason)


# --------------------------------------------------------------------------- the reader


class _Reader:
    """Alternates between FastWARC (fast path) and our framing (after damage) over one seekable stream."""

    def __init__(self, stream, gz: bool, warc_file: str, cap: int | None, tally: Tally):
        self.f = stream
        self.gz = gz
        self.warc_file = warc_file
        self.cap = cap
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
                outcome = _record_outcome(rec, self.warc_file, self.cap)
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
        raw = _Buffer(self.f, start)
        units = 0
        while True:
            if not self.gz:
                for kind, value in _frame_records(raw, None, "garbage_between_records"):
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
                nxt = raw.find(GZIP_MAGIC, 1)
                units += 1
                yield "skipped", "garbage_between_records", ()
                if nxt < 0:
                    return None
                raw.pos += nxt
                continue
            member_start = raw.offset()
            member = _Member(raw)
            records = clean = lost = 0
            for kind, value in _frame_records(_Buffer(member), member, "bad_record_header"):
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
                raw = _Buffer(self.f, member_start + 1)
                nxt = raw.find(GZIP_MAGIC, 0)
                if nxt < 0:
                    return None
                raw.pos += nxt
                continue
            if records == 1 and clean == 1 and units >= 2:
                return raw.offset()

    def _framed(self, kind: str, value) -> Outcome:
        if kind == "skipped":
            return "skipped", value, ()
        data, framing_repair = value
        try:
            rec = WarcRecord.from_bytes(data)
        except OSError:
            return "skipped", "bad_record_header", ()
        kind, result, repairs = _record_outcome(rec, self.warc_file, self.cap)
        if framing_repair:
            repairs = (framing_repair, *repairs)
        return kind, result, repairs


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


# --------------------------------------------------------------------------- public API


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
