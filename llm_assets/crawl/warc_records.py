"""One WARC record to one outcome: a raw_crawl row, a skip reason, or the kind of a record that is no document.

Documents are `response` records (HTTP parsed and decoded by `http_payload`), `resource` and `conversion` records
(status 200, typed by their WARC Content-Type). Records about the crawl rather than the web (dns:, urn:,
wget's metadata:// log, requests, warcinfo, revisits) are `non_response`; a record whose target URI has no host
or whose date cannot be read is skipped with the reason.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import quote

from fastwarc.warc import WarcRecord, WarcRecordType

from .http_payload import (
    HTTP_HEAD_ALLOWANCE,
    dechunk,
    decode_content,
    header_dict,
    parse_http,
    sniff_type,
    split_content_type,
)

_RESPONSE = int(WarcRecordType.response)
_WEB_SCHEMES = ("http", "https", "ftp")
_DOCUMENT_TYPES = int(WarcRecordType.response) | int(WarcRecordType.resource) | int(WarcRecordType.conversion)
_WARC_TYPES = {"warcinfo", "response", "resource", "request", "metadata", "revisit", "conversion", "continuation"}
_LABEL = 40  # characters of a URI scheme or MIME type kept in a non_response kind (they come from the file)
_URL_HEAD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(?://([^/?#]*))?")

# An outcome is ("kept", row, repairs), ("skipped", reason, repairs) or ("non_response", kind, repairs).
Outcome = tuple[str, object, tuple[str, ...]]


def record_outcome(rec: WarcRecord, warc_file: str, cap: int | None) -> Outcome:
    """What `rec` of `warc_file` comes to (see `Outcome`); a document's body is cut at `cap` bytes (None: no cap)."""
    rtype = int(rec.record_type)
    if not rtype & _DOCUMENT_TYPES:
        kind = rec.headers.get("WARC-Type")
        if kind is None:
            return "skipped", "bad_record_header", ()
        kind = kind.strip().lower()
        # the type is the file's text: an unknown one is not let out as a metadata key of its own
        return "non_response", kind if kind in _WARC_TYPES else "unknown_warc_type", ()
    repairs: list[str] = []
    warc = header_dict(rec.headers)
    kind = str(rec.record_type)
    url = _target_uri(warc.get(b"warc-target-uri", b""), repairs)
    scheme, host = _scheme_and_host(url)
    if scheme not in _WEB_SCHEMES and scheme:
        # dns:, urn:, file:, wget's metadata:// log... : records about the crawl, not pages of the web
        return "non_response", f"{kind}:{scheme[:_LABEL]}", ()
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
    warc_mime, warc_charset = split_content_type(warc_ctype)
    status, mime, charset = 200, warc_mime, warc_charset
    if rtype == _RESPONSE:
        if block.startswith(b"HTTP/"):
            parsed = parse_http(block, repairs)
            if parsed is None:
                return "skipped", "bad_http_status_line", tuple(repairs)
            status_code, http, body = parsed
            status = status_code
            mime, charset = split_content_type(_text(http.get(b"content-type")))
            if b"chunked" in http.get(b"transfer-encoding", b"").lower():
                body, repair = dechunk(body, raw_truncated)
                if repair:
                    repairs.append(repair)
            encoding = _text(http.get(b"content-encoding"))
            if encoding:
                decoded = decode_content(body, encoding, limit, repairs)
                if decoded is None:
                    reason = repairs.pop() if repairs[-1:] == ["unsupported_content_encoding"] else \
                        "corrupt_content_encoding"
                    return "skipped", reason, tuple(repairs)
                body = decoded
        elif warc_ctype is None or warc_mime == "application/http":
            body = block  # HTTP/0.9 style: no status line, no headers, just the document
            mime, charset = sniff_type(body), None
            repairs.append("http_headerless_response")
        else:
            return "non_response", f"response:{warc_mime[:_LABEL]}", ()
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
        # a date at the calendar's ends with an offset overflows when moved to UTC
        return fetched.astimezone(UTC) if fetched.tzinfo else fetched.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "replace").strip()
