"""Lenient HTTP payload decoding, as real archives need.

FastWARC's parser reads the status line and headers (LF-only header lines are given CRLF ones first). The body is
dechunked only when it really is chunked, gzip/deflate/br/zstd Content-Encoding is decoded, and a header that
lies about either (the archiver stored the decoded body) keeps the body and counts a repair. Repairs are appended
to the caller's `repairs` list under the names the reader's tally counts.
"""

from __future__ import annotations

import io
import re
import zlib

import brotli
from fastwarc.stream_io import ZstdReader
from fastwarc.warc import HeaderMap

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
HTTP_HEAD_ALLOWANCE = 1 << 16
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


def parse_http(block: bytes, repairs: list[str]) -> tuple[int, dict[bytes, bytes], bytes] | None:
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
    return status, header_dict(headers), block[consumed:]


def header_dict(headers: HeaderMap) -> dict[bytes, bytes]:
    """Header names lower-cased to their (first) raw value: one call into the library, not one per name."""
    out: dict[bytes, bytes] = {}
    for key, value in headers.items_bytes():
        out.setdefault(key.lower(), value)
    return out


def dechunk(body: bytes, truncated_record: bool) -> tuple[bytes, str | None]:
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


def decode_content(body: bytes, header: str, cap: int, repairs: list[str]) -> bytes | None:
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


def split_content_type(value: str | None) -> tuple[str, str | None]:
    value = value or ""
    mime = value.split(";")[0].strip().lower() or "application/octet-stream"
    m = _CHARSET.search(value)
    return mime, (m.group(1).lower() if m else None)


def sniff_type(body: bytes) -> str:
    head = body[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "text/html"
    if head.startswith(b"<?xml"):
        return "text/xml"
    return "application/octet-stream"


def _looks_uncompressed(body: bytes) -> bool:
    """Text-like bytes (no control characters up front): what a lying Content-Encoding header sits on."""
    return not _CONTROL.search(body, 0, 1024)


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
            # the limit is brotli's buffer size, not a bound: it hands back up to 32 KiB or ~1.6x more
            return out[: cap + 1], d.is_finished() and len(out) <= cap + 1
        if encoding == "zstd":
            if body[:4] != ZSTD_MAGIC:
                raise ValueError("no zstd frame header")
            return ZstdReader(io.BytesIO(body)).read(cap + 1), True
    except (zlib.error, brotli.error, OSError) as exc:
        raise ValueError(str(exc)) from exc
    raise LookupError(encoding)
