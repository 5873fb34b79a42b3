"""Write planned pages as WARC/1.1 files: warcinfo, then a request and a response record per page."""

from __future__ import annotations

import io
import logging
import os
import random
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from llm_assets.synthetic.page import Page
from llm_assets.synthetic.sites import server_for

log = logging.getLogger(__name__)

USER_AGENT = "Mozilla/5.0 (compatible; WikiverseResearchCrawler/1.0; +https://www.wikiverse.org/crawler)"


def record_id(rng: random.Random) -> str:
    return f"<urn:uuid:{uuid.UUID(int=rng.getrandbits(128), version=4)}>"


def warc_date(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _response_headers(page: Page, moment: datetime) -> StatusAndHeaders:
    content_type = page.content_type + (f"; charset={page.charset}" if page.charset else "")
    headers = [
        ("Date", format_datetime(moment, usegmt=True)),
        ("Server", server_for(page.host)),
        ("Content-Type", content_type),
        ("Content-Length", str(len(page.body))),
    ]
    if page.location:
        headers.append(("Location", page.location))
    if page.status == 200:
        headers.append(("Last-Modified", format_datetime(moment - timedelta(days=3), usegmt=True)))
        headers.append(("Cache-Control", "public, max-age=3600"))
    headers.append(("Connection", "close"))
    status = f"{page.status} {HTTPStatus(page.status).phrase}"
    return StatusAndHeaders(status, headers, protocol="HTTP/1.1")


def _request_headers(page: Page) -> StatusAndHeaders:
    path = "/" + page.url.split("/", 3)[3] if page.url.count("/") >= 3 else "/"
    headers = [("Host", page.host), ("User-Agent", USER_AGENT),
               ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
               ("Accept-Language", "en-US,en;q=0.8"), ("Connection", "close")]
    return StatusAndHeaders(f"GET {path} HTTP/1.1", headers, is_http_request=True)


def _ip_for(host: str) -> str:
    h = zlib.crc32(host.encode())
    return f"{93 + h % 90}.{(h >> 8) % 256}.{(h >> 16) % 256}.{1 + (h >> 24) % 250}"


def write_warc_files(out_dir: Path, pages: list[Page], warc_files: int, rng: random.Random,
                     start: datetime, description: str) -> list[dict]:
    """Write `pages` round-robin into `warc_files` gzipped WARCs; returns one label row per response.

    Record ids and dates come from `rng` and `start`, so the bytes depend only on the seed.
    """
    if warc_files < 1:
        raise ValueError(f"SyntheticSize.warc_files must be >= 1, got {warc_files}")
    response_ids = [record_id(rng) for _ in pages]
    request_ids = [record_id(rng) for _ in pages]
    moments, moment = [], start
    for _ in pages:
        moment += timedelta(seconds=rng.randint(1, 30))
        moments.append(moment)
    rows: list[dict] = []
    for file_index in range(warc_files):
        name = f"crawl-{file_index:05d}.warc.gz"
        final = out_dir / name
        tmp = out_dir / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            writer = WARCWriter(fh, gzip=True, warc_version="1.1")
            info = (f"software: llm_assets synthetic web generator\r\nformat: WARC File Format 1.1\r\n"
                    f"robots: obey\r\ndescription: {description}\r\n").encode()
            writer.write_record(writer.create_warc_record(
                "", "warcinfo", payload=io.BytesIO(info), length=len(info),
                warc_content_type="application/warc-fields",
                warc_headers_dict={"WARC-Record-ID": record_id(rng), "WARC-Date": warc_date(start),
                                   "WARC-Filename": name}))
            for i in range(file_index, len(pages), warc_files):
                page = pages[i]
                date = warc_date(moments[i])
                request = writer.create_warc_record(
                    page.url, "request", payload=io.BytesIO(b""), length=0, http_headers=_request_headers(page),
                    warc_headers_dict={"WARC-Record-ID": request_ids[i], "WARC-Date": date,
                                       "WARC-Concurrent-To": response_ids[i]})
                response = writer.create_warc_record(
                    page.url, "response", payload=io.BytesIO(page.body), length=len(page.body),
                    http_headers=_response_headers(page, moments[i]),
                    warc_headers_dict={"WARC-Record-ID": response_ids[i], "WARC-Date": date,
                                       "WARC-IP-Address": _ip_for(page.host),
                                       "WARC-Concurrent-To": request_ids[i]})
                writer.write_record(request)
                writer.write_record(response)
                rows.append({
                    "warc_record_id": response_ids[i], "url": page.url, "warc_file": name, "site": page.site,
                    "category": page.category, "language": page.language,
                    "duplicate_of": None if page.duplicate_of is None else response_ids[page.duplicate_of],
                    "near_duplicate": page.near_duplicate, "pii": list(page.pii), "nsfw": page.nsfw,
                    "toxic": page.toxic, "junk": page.junk, "contaminated": page.contaminated,
                    "quality": page.quality, "http_status": page.status, "content_type": page.content_type,
                    "charset": page.charset, "fetch_time": moments[i],
                })
        os.replace(tmp, final)
        log.info("wrote %s (%d pages)", final, len(range(file_index, len(pages), warc_files)))
    return rows


def crawl_start(seed: int) -> datetime:
    """The crawl's first fetch time: a fixed date in 2024, shifted by the seed."""
    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=seed % 300, hours=seed % 24)
