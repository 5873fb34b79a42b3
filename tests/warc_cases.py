"""Hand-crafted WARC bytes for the reader's tests: well-formed records and the malformed ones real archives hold.

Each builder returns the bytes of one record (uncompressed); `member` gzips one record the way WARC files do
(one gzip member per record).
"""

from __future__ import annotations

import gzip
import zlib

import brotli


def http_block(body: bytes, ctype: str = "text/html; charset=utf-8", status: str = "200 OK",
               extra: str = "", protocol: str = "HTTP/1.1", length: bool = True) -> bytes:
    """An HTTP response as archivers store it: status line, headers, blank line, body."""
    head = f"{protocol} {status}\r\nContent-Type: {ctype}\r\n"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    return (head + extra + "\r\n").encode() + body


def warc_record(url: str, block: bytes, rtype: str = "response", length: int | None = None,
                rid: str | None = None, headers: bytes = b"",
                content_type: str | None = "application/http; msgtype=response") -> bytes:
    """One WARC record; `length=-1` leaves Content-Length out, any other number overrides the true one."""
    rid = rid or f"<urn:uuid:00000000-0000-0000-0000-{abs(hash((url, block))) % 10**12:012d}>"
    head = (
        b"WARC/1.1\r\n"
        + f"WARC-Type: {rtype}\r\nWARC-Record-ID: {rid}\r\nWARC-Date: 2024-03-01T12:00:00Z\r\n".encode()
        + f"WARC-Target-URI: {url}\r\n".encode()
        + (f"Content-Type: {content_type}\r\n".encode() if content_type else b"")
        + headers
        + (f"Content-Length: {len(block) if length is None else length}\r\n".encode() if length != -1 else b"")
        + b"\r\n"
    )
    return head + block + b"\r\n\r\n"


def member(record: bytes) -> bytes:
    return gzip.compress(record, mtime=0)


def page(i: int) -> bytes:
    return warc_record(f"https://site{i}.example/page", http_block(f"<p>page {i}</p>".encode()))


def chunked(body: bytes, pieces: int = 3) -> bytes:
    """`body` in HTTP/1.1 chunked transfer coding, as it went over the wire."""
    step = max(1, -(-len(body) // pieces))
    out = b"".join(f"{len(body[i:i + step]):x}\r\n".encode() + body[i:i + step] + b"\r\n"
                   for i in range(0, len(body), step))
    return out + b"0\r\n\r\n"


HTML = "<html><head><title>Café</title></head><body><p>Une page réelle, encodée.</p></body></html>".encode()


def response(url: str, head: str, body: bytes, protocol: str = "HTTP/1.1") -> bytes:
    """A response record with the given raw HTTP header lines (CRLF-separated, no final blank line)."""
    block = f"{protocol} 200 OK\r\n{head}\r\n\r\n".encode() + body
    return warc_record(url, block)


# --------------------------------------------------------------------------- the leniency cases


def chunked_header_over_plain_body() -> bytes:
    """The archiver de-chunked the body but kept `Transfer-Encoding: chunked` (wget, some Heritrix setups)."""
    return response("https://dechunked.example/", "Content-Type: text/html\r\nTransfer-Encoding: chunked", HTML)


def really_chunked_body() -> bytes:
    return response("https://chunked.example/", "Content-Type: text/html\r\nTransfer-Encoding: chunked",
                    chunked(HTML))


def common_crawl_x_crawler_headers() -> bytes:
    """Common Crawl stores decoded bodies and renames the headers that no longer apply to `X-Crawler-*`."""
    return response("https://cc.example/",
                    "Content-Type: text/html\r\nX-Crawler-Transfer-Encoding: chunked\r\n"
                    "X-Crawler-Content-Encoding: gzip\r\nX-Crawler-Content-Length: 123", HTML)


def content_encoded(encoding: str) -> bytes:
    if encoding == "gzip":
        body = gzip.compress(HTML, mtime=0)
    elif encoding == "deflate":
        body = zlib.compress(HTML)
    elif encoding == "raw-deflate":
        c = zlib.compressobj(wbits=-15)
        body, encoding = c.compress(HTML) + c.flush(), "deflate"
    elif encoding == "br":
        body = brotli.compress(HTML)
    else:
        raise ValueError(encoding)
    return response(f"https://{encoding}.example/", f"Content-Type: text/html\r\nContent-Encoding: {encoding}",
                    body)


def gzip_then_chunked() -> bytes:
    """A gzip body sent chunked: both codings undone, transfer first."""
    return response("https://gzchunk.example/",
                    "Content-Type: text/html\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked",
                    chunked(gzip.compress(HTML, mtime=0)))


def content_encoding_header_lies() -> bytes:
    """`Content-Encoding: gzip` over a body the archiver stored decoded."""
    return response("https://lies.example/", "Content-Type: text/html\r\nContent-Encoding: gzip", HTML)


def corrupt_gzip_body() -> bytes:
    """A gzip body whose compressed data is damaged and not text: nothing can be decoded."""
    body = bytearray(gzip.compress(HTML * 4, mtime=0))
    for i in range(10, len(body) - 8):
        body[i] ^= 0xA5
    return response("https://corruptgz.example/", "Content-Type: text/html\r\nContent-Encoding: gzip",
                    bytes(body))


LONG_HTML = b"<html><body>" + b"".join(f"<p>line {i}: {i * i:x}</p>".encode() for i in range(3000)) + \
    b"</body></html>"


def truncated_gzip_body() -> bytes:
    """The record holds only the first part of a gzip body (the crawler stopped reading)."""
    body = gzip.compress(LONG_HTML, mtime=0)
    return response("https://cutgz.example/", "Content-Type: text/html\r\nContent-Encoding: gzip",
                    body[: len(body) // 2])


def http_10_response() -> bytes:
    return response("https://old.example/", "Content-Type: text/html; charset=utf-8", HTML, protocol="HTTP/1.0")


def headerless_http09_response() -> bytes:
    """An HTTP/0.9-style answer: no status line, no headers, the document straight away."""
    return warc_record("https://ancient.example/", b"<!DOCTYPE html>" + HTML)


def lf_only_http_headers() -> bytes:
    block = b"HTTP/1.1 200 OK\nContent-Type: text/html; charset=utf-8\n\n" + HTML
    return warc_record("https://unixy.example/", block)


def revisit_record() -> bytes:
    """A revisit: the payload equals an earlier capture's and is not stored again."""
    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
    return warc_record("https://again.example/", block, rtype="revisit",
                       headers=b"WARC-Profile: http://netpreserve.org/warc/1.1/revisit/identical-payload-digest\r\n"
                               b"WARC-Refers-To-Target-URI: https://again.example/\r\n")


def resource_record() -> bytes:
    """A captured file with a Content-Type and no HTTP header (browser archivers, `wget` page requisites)."""
    return warc_record("https://files.example/notes.txt", "Plain notes, déjà vu.\n".encode(), rtype="resource",
                       content_type="text/plain; charset=utf-8")


def conversion_record() -> bytes:
    """A conversion: text extracted from an earlier record (e.g. a PDF)."""
    return warc_record("https://files.example/paper.pdf", b"The paper's text.\n", rtype="conversion",
                       content_type="text/plain", headers=b"WARC-Refers-To: <urn:uuid:1>\r\n")


def dns_response() -> bytes:
    """Heritrix's dns: record: a response, but not a web page."""
    return warc_record("dns:example.org", b"20240301120000\nexample.org.\t300\tIN\tA\t192.0.2.1\n",
                       content_type="text/dns")


def large_body(size: int) -> bytes:
    body = b"<html><body>" + b"<p>all work and no play</p>" * (size // 27 + 1) + b"</body></html>"
    return response("https://big.example/", "Content-Type: text/html", body)


def non_utf8_target_uri() -> bytes:
    """A Target-URI in latin-1 bytes (WARC headers are UTF-8 by the standard)."""
    return warc_record("https://latin.example/café", http_block(b"<p>x</p>")).replace("café".encode(), b"caf\xe9")


def wget_log_resource() -> bytes:
    """GNU Wget stores its own log as a resource record under a metadata:// URI: not a page of the web."""
    return warc_record("metadata://gnu.org/software/wget/warc/wget.log", b"--2024-03-01-- http://x/\n",
                       rtype="resource", content_type="text/plain")
