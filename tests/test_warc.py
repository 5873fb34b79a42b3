"""The WARC reader keeps every good record of a damaged file and counts what it skipped, by reason."""

from __future__ import annotations

import gzip
import io
import zlib

import pytest

from llm_assets.crawl import UnreadableWarcError, read_warc, resolve_sources


def http_block(body: bytes, ctype: str = "text/html; charset=utf-8", status: str = "200 OK",
               extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


def warc_record(url: str, block: bytes, rtype: str = "response", length: int | None = None,
                rid: str | None = None, headers: bytes = b"") -> bytes:
    rid = rid or f"<urn:uuid:00000000-0000-0000-0000-{abs(hash(url)) % 10**12:012d}>"
    head = (
        b"WARC/1.1\r\n"
        + f"WARC-Type: {rtype}\r\nWARC-Record-ID: {rid}\r\nWARC-Date: 2024-03-01T12:00:00Z\r\n".encode()
        + f"WARC-Target-URI: {url}\r\nContent-Type: application/http; msgtype=response\r\n".encode()
        + headers
        + (f"Content-Length: {len(block) if length is None else length}\r\n".encode() if length != -1 else b"")
        + b"\r\n"
    )
    return head + block + b"\r\n\r\n"


def member(record: bytes) -> bytes:
    return gzip.compress(record, mtime=0)


def page(i: int) -> bytes:
    return warc_record(f"https://site{i}.example/page", http_block(f"<p>page {i}</p>".encode()))


def write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def urls(read) -> list[str]:
    return read.records["url"].to_list()


def test_clean_file_reads_every_response(tmp_path):
    info = member(warc_record("", b"software: test\r\n", rtype="warcinfo"))
    path = write(tmp_path, "ok.warc.gz", info + b"".join(member(page(i)) for i in range(3)))
    read = read_warc(path)
    assert urls(read) == [f"https://site{i}.example/page" for i in range(3)]
    assert read.skipped == {}
    assert read.non_response == {"warcinfo": 1}
    row = read.records.row(0, named=True)
    assert row["http_status"] == 200 and row["content_type"] == "text/html" and row["charset"] == "utf-8"
    assert row["body"] == b"<p>page 0</p>" and row["host"] == "site0.example"
    assert row["warc_file"] == "ok.warc.gz"


def test_truncated_member_in_the_middle_keeps_the_rest(tmp_path):
    broken = member(page(1))[:-15]
    path = write(tmp_path, "t.warc.gz", member(page(0)) + broken + member(page(2)))
    read = read_warc(path)
    assert urls(read) == ["https://site0.example/page", "https://site2.example/page"]
    assert read.skipped == {"corrupt_gzip_member": 1}


def test_truncated_file_end(tmp_path):
    path = write(tmp_path, "t.warc.gz", member(page(0)) + member(page(1))[:40])
    read = read_warc(path)
    assert urls(read) == ["https://site0.example/page"]
    assert read.skipped == {"corrupt_gzip_member": 1}


def test_corrupt_deflate_data(tmp_path):
    bad = bytearray(member(page(1)))
    for i in range(12, 30):
        bad[i] ^= 0x5A
    path = write(tmp_path, "c.warc.gz", member(page(0)) + bytes(bad) + member(page(2)))
    read = read_warc(path)
    assert urls(read) == ["https://site0.example/page", "https://site2.example/page"]
    assert read.skipped["corrupt_gzip_member"] >= 1


def test_wrong_and_missing_content_length(tmp_path):
    block = http_block(b"<p>x</p>")
    wrong = member(warc_record("https://wrong.example/", block, length=len(block) + 7))
    missing = member(warc_record("https://missing.example/", block, length=-1))
    notnum = member(warc_record("https://nan.example/", block, headers=b"") .replace(
        f"Content-Length: {len(block)}".encode(), b"Content-Length: lots"))
    path = write(tmp_path, "l.warc.gz", member(page(0)) + wrong + missing + notnum + member(page(1)))
    read = read_warc(path)
    assert urls(read) == ["https://site0.example/page", "https://site1.example/page"]
    assert read.skipped == {"content_length_mismatch": 1, "missing_content_length": 1,
                            "bad_content_length": 1}


def test_bad_header_and_non_utf8_header(tmp_path):
    garbage_head = member(b"WARC/1.1\r\nthis line has no colon\r\nContent-Length: 3\r\n\r\nabc\r\n\r\n")
    latin = member(warc_record("https://x.example/", http_block(b"hi"), headers=b"X-Note: caf\xe9\r\n"))
    not_warc = member(b"hello, I am not a WARC record at all")
    path = write(tmp_path, "h.warc.gz", garbage_head + latin + not_warc + member(page(3)))
    read = read_warc(path)
    assert urls(read) == ["https://site3.example/page"]
    assert read.skipped == {"bad_record_header": 2, "header_not_utf8": 1}


def test_angle_bracket_uri_is_repaired_and_counted(tmp_path):
    rec = member(warc_record("<https://wrapped.example/a>", http_block(b"<p>ok</p>")))
    read = read_warc(write(tmp_path, "u.warc.gz", rec))
    assert urls(read) == ["https://wrapped.example/a"]
    assert read.repaired == {"target_uri_angle_brackets": 1}


def test_non_response_records_counted(tmp_path):
    req = member(warc_record("https://a.example/", b"GET / HTTP/1.1\r\n\r\n", rtype="request"))
    meta = member(warc_record("https://a.example/", b"fetchTimeMs: 5\r\n", rtype="metadata"))
    read = read_warc(write(tmp_path, "n.warc.gz", req + meta + member(page(0))))
    assert read.non_response == {"request": 1, "metadata": 1}
    assert read.skipped == {}


def test_http_payload_chunked_gzip_and_legacy_charset(tmp_path):
    body = "<p>café crème</p>".encode("cp1252")
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    block = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=windows-1252\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
    gz_body = gzip.compress(b"<p>zipped</p>", mtime=0)
    gz_block = http_block(gz_body, extra="Content-Encoding: gzip\r\n")
    broken_block = http_block(b"\x00\x01 not gzip", extra="Content-Encoding: gzip\r\n")
    data = b"".join(member(warc_record(f"https://e{i}.example/", b)) for i, b in
                    enumerate([block, gz_block, broken_block]))
    read = read_warc(write(tmp_path, "p.warc.gz", data))
    rows = read.records.to_dicts()
    assert rows[0]["body"] == body and rows[0]["charset"] == "windows-1252"
    assert rows[1]["body"] == b"<p>zipped</p>"
    assert read.skipped == {"bad_http_payload": 1}


def test_uncompressed_warc_with_wrong_length_resyncs(tmp_path):
    block = http_block(b"<p>x</p>")
    wrong = warc_record("https://wrong.example/", block, length=len(block) - 3)
    path = write(tmp_path, "plain.warc", page(0) + wrong + page(1))
    read = read_warc(path)
    assert urls(read) == ["https://site0.example/page", "https://site1.example/page"]
    assert read.skipped == {"content_length_mismatch": 1}


def test_unreadable_files_fail_naming_the_file(tmp_path):
    with pytest.raises(UnreadableWarcError, match="nothing.warc.gz"):
        read_warc(str(tmp_path / "nothing.warc.gz"))
    path = write(tmp_path, "text.warc.gz", b"just some text file\n")
    with pytest.raises(UnreadableWarcError, match="not a WARC file"):
        read_warc(path)
    path = write(tmp_path, "junk.warc.gz", zlib.compress(b"x") + b"\x1f\x8b\x08" + b"\x00" * 40)
    with pytest.raises(UnreadableWarcError):
        read_warc(path)


def test_resolve_sources_dirs_globs_and_listings(tmp_path):
    for name in ("a.warc.gz", "b.warc.gz", "notes.txt.bak"):
        (tmp_path / name).write_bytes(member(page(0)))
    assert list(resolve_sources([str(tmp_path)])) == ["a", "b"]
    assert list(resolve_sources([str(tmp_path / "b*.warc.gz")])) == ["b"]
    listing = tmp_path / "warc.paths.gz"
    listing.write_bytes(gzip.compress(
        b"crawl-data/CC-MAIN-2024-10/segments/1/warc/CC-MAIN-1-00000.warc.gz\n", mtime=0))
    resolved = resolve_sources([str(listing)])
    assert resolved == {"CC-MAIN-1-00000":
                        "https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-10/segments/1/warc/"
                        "CC-MAIN-1-00000.warc.gz"}
    with pytest.raises(FileNotFoundError, match="missing-dir"):
        resolve_sources([str(tmp_path / "missing-dir")])


def test_batches_are_bounded(tmp_path):
    from llm_assets.crawl import iter_warc_batches

    path = write(tmp_path, "many.warc.gz", b"".join(member(page(i)) for i in range(25)))
    sizes = [len(b) for b in iter_warc_batches(path, batch_records=10)]
    assert sizes == [10, 10, 5]


def test_warcio_written_file(tmp_path):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True)
    headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
    writer.write_record(writer.create_warc_record("https://w.example/", "response",
                                                  payload=io.BytesIO(b"<p>w</p>"), http_headers=headers))
    read = read_warc(write(tmp_path, "w.warc.gz", out.getvalue()))
    assert urls(read) == ["https://w.example/"] and read.records["body"][0] == b"<p>w</p>"
