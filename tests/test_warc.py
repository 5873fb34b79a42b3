"""The WARC reader keeps every good record of a damaged file and counts every record under one outcome.

The first half is damage to the file (gzip members, framing, headers); the second half is one test per
leniency case of real archives, each on a hand-crafted fixture from `warc_cases`.
"""

from __future__ import annotations

import gzip
import io
import zlib

import pytest
import warc_cases as wc
from warc_cases import HTML, http_block, member, page, warc_record

from llm_assets.crawl import UnreadableWarcError, iter_warc_batches, read_warc, resolve_sources
from llm_assets.crawl.warc import Tally


def write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def read(tmp_path, data: bytes, name: str = "t.warc.gz", **kw):
    """read_warc, plus the check that every record seen is counted under exactly one outcome."""
    result = read_warc(write(tmp_path, name, data), **kw)
    outcomes = result.records.height + sum(result.skipped.values()) + sum(result.non_response.values())
    assert result.records_seen == outcomes, "a record was counted twice or not at all"
    return result


def urls(result) -> list[str]:
    return result.records["url"].to_list()


def only_row(result) -> dict:
    assert result.records.height == 1, result
    return result.records.row(0, named=True)


# --------------------------------------------------------------------------- damaged files


def test_clean_file_reads_every_response(tmp_path):
    info = member(warc_record("", b"software: test\r\n", rtype="warcinfo"))
    result = read(tmp_path, info + b"".join(member(page(i)) for i in range(3)), "ok.warc.gz")
    assert urls(result) == [f"https://site{i}.example/page" for i in range(3)]
    assert result.skipped == {} and result.repaired == {}
    assert result.non_response == {"warcinfo": 1}
    row = result.records.row(0, named=True)
    assert row["http_status"] == 200 and row["content_type"] == "text/html" and row["charset"] == "utf-8"
    assert row["body"] == b"<p>page 0</p>" and row["host"] == "site0.example"
    assert row["warc_file"] == "ok.warc.gz"


def test_truncated_member_in_the_middle_keeps_the_rest(tmp_path):
    broken = member(page(1))[:-15]
    result = read(tmp_path, member(page(0)) + broken + member(page(2)))
    assert urls(result) == ["https://site0.example/page", "https://site2.example/page"]
    assert result.skipped == {"corrupt_gzip_member": 1}


def test_truncated_file_end(tmp_path):
    result = read(tmp_path, member(page(0)) + member(page(1))[:40])
    assert urls(result) == ["https://site0.example/page"]
    assert result.skipped == {"corrupt_gzip_member": 1}


def test_corrupt_deflate_data(tmp_path):
    bad = bytearray(member(page(1)))
    for i in range(12, 30):
        bad[i] ^= 0x5A
    result = read(tmp_path, member(page(0)) + bytes(bad) + member(page(2)))
    assert urls(result) == ["https://site0.example/page", "https://site2.example/page"]
    assert result.skipped["corrupt_gzip_member"] >= 1


def test_garbage_between_members_is_skipped_once(tmp_path):
    result = read(tmp_path, member(page(0)) + b"\x00junk bytes\xff" + member(page(1)) + member(page(2)))
    assert urls(result) == [f"https://site{i}.example/page" for i in range(3)]
    assert result.skipped == {"garbage_between_records": 1}


def test_wrong_and_missing_content_length_are_recovered_from_the_member_end(tmp_path):
    # these records used to be skipped; the gzip member bounds the record, so the real block is known
    block = http_block(b"<p>x</p>")
    wrong = member(warc_record("https://wrong.example/", block, length=len(block) + 7))
    short = member(warc_record("https://short.example/", block, length=len(block) - 3))
    missing = member(warc_record("https://missing.example/", block, length=-1))
    notnum = member(warc_record("https://nan.example/", block).replace(
        f"Content-Length: {len(block)}".encode(), b"Content-Length: lots"))
    result = read(tmp_path, member(page(0)) + wrong + short + missing + notnum + member(page(1)))
    assert urls(result) == ["https://site0.example/page", "https://wrong.example/", "https://short.example/",
                            "https://missing.example/", "https://nan.example/", "https://site1.example/page"]
    assert result.records["body"].to_list()[1:5] == [b"<p>x</p>"] * 4
    assert result.skipped == {}
    assert result.repaired == {"content_length_mismatch": 2, "missing_content_length": 1,
                               "bad_content_length": 1}


def test_uncompressed_warc_with_wrong_length_resyncs(tmp_path):
    # recovered (it used to be skipped): the next `WARC/1.x` line bounds the record
    block = http_block(b"<p>x</p>")
    wrong = warc_record("https://wrong.example/", block, length=len(block) - 3)
    long = warc_record("https://long.example/", block, length=len(block) + 40)
    result = read(tmp_path, page(0) + wrong + page(1) + long + page(2), "plain.warc")
    assert urls(result) == ["https://site0.example/page", "https://wrong.example/",
                            "https://site1.example/page", "https://long.example/", "https://site2.example/page"]
    assert result.records["body"].to_list()[1] == b"<p>x</p>"
    assert result.records["body"].to_list()[3] == b"<p>x</p>"
    assert result.repaired == {"content_length_mismatch": 2}


def test_uncompressed_warc_cut_inside_the_last_record(tmp_path):
    result = read(tmp_path, page(0) + page(1)[:-20], "cut.warc")
    assert urls(result) == ["https://site0.example/page"]
    assert result.skipped == {"truncated_record": 1}


def test_bad_header_and_non_utf8_header(tmp_path):
    # a non-UTF-8 byte in an unrelated WARC header no longer costs the record (it used to be skipped)
    garbage_head = member(b"WARC/1.1\r\nthis line has no colon\r\nContent-Length: 3\r\n\r\nabc\r\n\r\n")
    latin = member(warc_record("https://x.example/", http_block(b"hi"), headers=b"X-Note: caf\xe9\r\n"))
    not_warc = member(b"hello, I am not a WARC record at all")
    result = read(tmp_path, garbage_head + latin + not_warc + member(page(3)))
    assert urls(result) == ["https://x.example/", "https://site3.example/page"]
    assert result.skipped == {"bad_record_header": 2}


def test_angle_bracket_uri_is_repaired_and_counted(tmp_path):
    result = read(tmp_path, member(warc_record("<https://wrapped.example/a>", http_block(b"<p>ok</p>"))))
    assert urls(result) == ["https://wrapped.example/a"]
    assert result.repaired == {"target_uri_angle_brackets": 1}


def test_non_response_records_counted(tmp_path):
    req = member(warc_record("https://a.example/", b"GET / HTTP/1.1\r\n\r\n", rtype="request"))
    meta = member(warc_record("https://a.example/", b"fetchTimeMs: 5\r\n", rtype="metadata"))
    result = read(tmp_path, req + meta + member(page(0)))
    assert result.non_response == {"request": 1, "metadata": 1}
    assert result.skipped == {}


def test_unreadable_files_fail_naming_the_file(tmp_path):
    with pytest.raises(UnreadableWarcError, match="nothing.warc.gz"):
        read_warc(str(tmp_path / "nothing.warc.gz"))
    path = write(tmp_path, "text.warc.gz", b"just some text file\n")
    with pytest.raises(UnreadableWarcError, match="not a WARC file"):
        read_warc(path)
    path = write(tmp_path, "junk.warc.gz", zlib.compress(b"x") + b"\x1f\x8b\x08" + b"\x00" * 40)
    with pytest.raises(UnreadableWarcError):
        read_warc(path)
    path = write(tmp_path, "allbad.warc.gz", member(b"not a record") + member(b"nor this"))
    with pytest.raises(UnreadableWarcError, match="allbad.warc.gz.*no WARC record"):
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
    path = write(tmp_path, "many.warc.gz", b"".join(member(page(i)) for i in range(25)))
    sizes = [len(b) for b in iter_warc_batches(path, batch_records=10)]
    assert sizes == [10, 10, 5]


def test_healthy_records_go_through_fastwarc_and_damage_through_the_fallback(tmp_path):
    clean = write(tmp_path, "clean.warc.gz", b"".join(member(page(i)) for i in range(20)))
    tally = Tally()
    assert sum(len(b) for b in iter_warc_batches(clean, tally=tally)) == 20
    assert tally.fastwarc_records == 19  # the last record is always re-read to check how the file ends
    damaged = b"".join(member(page(i)) for i in range(10)) + member(page(10))[:-15] + \
        b"".join(member(page(i)) for i in range(11, 30))
    tally = Tally()
    assert sum(len(b) for b in iter_warc_batches(write(tmp_path, "d.warc.gz", damaged), tally=tally)) == 29
    assert tally.skipped == {"corrupt_gzip_member": 1} and tally.balanced()
    assert tally.fastwarc_records >= 25  # FastWARC resumed after the damage


def test_warcio_written_file(tmp_path):
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True)
    headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
    writer.write_record(writer.create_warc_record("https://w.example/", "response",
                                                  payload=io.BytesIO(b"<p>w</p>"), http_headers=headers))
    result = read(tmp_path, out.getvalue(), "w.warc.gz")
    assert urls(result) == ["https://w.example/"] and result.records["body"][0] == b"<p>w</p>"


# --------------------------------------------------------------------------- leniency cases, one each


def test_chunked_header_over_dechunked_body_keeps_the_body(tmp_path):
    row = only_row(result := read(tmp_path, member(wc.chunked_header_over_plain_body())))
    assert row["body"] == HTML
    assert result.repaired == {"chunked_header_over_plain_body": 1}


def test_really_chunked_body_is_dechunked(tmp_path):
    result = read(tmp_path, member(wc.really_chunked_body()))
    assert only_row(result)["body"] == HTML and result.repaired == {}


def test_chunked_body_with_legacy_charset(tmp_path):
    body = "<p>café crème</p>".encode("cp1252")
    block = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=windows-1252\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n" + wc.chunked(body, 1))
    row = only_row(read(tmp_path, member(warc_record("https://e.example/", block))))
    assert row["body"] == body and row["charset"] == "windows-1252"


def test_x_crawler_headers_are_informational(tmp_path):
    result = read(tmp_path, member(wc.common_crawl_x_crawler_headers()))
    assert only_row(result)["body"] == HTML and result.repaired == {}


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate", "br"])
def test_content_encoding_is_decoded(tmp_path, encoding):
    result = read(tmp_path, member(wc.content_encoded(encoding)))
    assert only_row(result)["body"] == HTML and result.repaired == {}


def test_gzip_body_sent_chunked(tmp_path):
    assert only_row(read(tmp_path, member(wc.gzip_then_chunked())))["body"] == HTML


def test_content_encoding_header_that_lies_keeps_the_body(tmp_path):
    result = read(tmp_path, member(wc.content_encoding_header_lies()))
    assert only_row(result)["body"] == HTML
    assert result.repaired == {"content_encoding_header_lies": 1}


def test_corrupt_encoded_body_is_skipped_with_its_reason(tmp_path):
    # binary bytes that claim gzip and are not: no document can come out of them (was `bad_http_payload`)
    broken = warc_record("https://b.example/", http_block(b"\x00\x01 not gzip", extra="Content-Encoding: gzip\r\n"))
    result = read(tmp_path, member(wc.corrupt_gzip_body()) + member(broken) + member(page(0)))
    assert urls(result) == ["https://site0.example/page"]
    assert result.skipped == {"corrupt_content_encoding": 2}


def test_truncated_encoded_body_keeps_what_decodes(tmp_path):
    result = read(tmp_path, member(wc.truncated_gzip_body()))
    body = only_row(result)["body"]
    assert len(wc.LONG_HTML) > len(body) > 10_000 and wc.LONG_HTML.startswith(body)
    assert result.repaired == {"content_encoding_truncated": 1}


def test_http_10_response(tmp_path):
    row = only_row(read(tmp_path, member(wc.http_10_response())))
    assert row["body"] == HTML and row["http_status"] == 200 and row["charset"] == "utf-8"


def test_headerless_http09_response_is_kept(tmp_path):
    result = read(tmp_path, member(wc.headerless_http09_response()))
    row = only_row(result)
    assert row["body"] == b"<!DOCTYPE html>" + HTML
    assert row["http_status"] == 200 and row["content_type"] == "text/html"
    assert result.repaired == {"http_headerless_response": 1}


def test_lf_only_http_headers(tmp_path):
    result = read(tmp_path, member(wc.lf_only_http_headers()))
    row = only_row(result)
    assert row["body"] == HTML and row["content_type"] == "text/html" and row["charset"] == "utf-8"
    assert result.repaired == {"http_headers_lf_only": 1}


def test_revisit_record_is_counted_not_kept(tmp_path):
    result = read(tmp_path, member(wc.revisit_record()) + member(page(0)))
    assert urls(result) == ["https://site0.example/page"]
    assert result.non_response == {"revisit": 1}


def test_resource_record_is_a_document(tmp_path):
    row = only_row(read(tmp_path, member(wc.resource_record())))
    assert row["body"] == "Plain notes, déjà vu.\n".encode()
    assert row["http_status"] == 200 and row["content_type"] == "text/plain" and row["charset"] == "utf-8"
    assert row["host"] == "files.example"


def test_conversion_record_is_kept_like_a_resource(tmp_path):
    row = only_row(read(tmp_path, member(wc.conversion_record())))
    assert row["body"] == b"The paper's text.\n" and row["content_type"] == "text/plain"


def test_dns_response_is_not_a_page(tmp_path):
    result = read(tmp_path, member(wc.dns_response()) + member(page(0)))
    assert urls(result) == ["https://site0.example/page"]
    assert result.non_response == {"response:dns": 1} and result.skipped == {}


def test_wget_log_resource_is_not_a_page(tmp_path):
    result = read(tmp_path, member(wc.wget_log_resource()) + member(page(0)))
    assert urls(result) == ["https://site0.example/page"]
    assert result.non_response == {"resource:metadata": 1}


def test_uncompressed_file(tmp_path):
    data = wc.really_chunked_body() + wc.resource_record() + page(0)
    result = read(tmp_path, data, "plain.warc")
    assert result.records.height == 3 and result.skipped == {} and result.repaired == {}


def test_whole_file_gzip_holding_many_records(tmp_path):
    data = gzip.compress(b"".join(page(i) for i in range(6)) + wc.revisit_record(), mtime=0)
    result = read(tmp_path, data)
    assert urls(result) == [f"https://site{i}.example/page" for i in range(6)]
    assert result.non_response == {"revisit": 1}


def test_very_large_body_is_truncated_at_the_cap_and_counted(tmp_path):
    data = member(wc.large_body(300_000)) + member(page(0))
    result = read(tmp_path, data, max_body_bytes=100_000)
    assert result.records["body"].bin.size().to_list() == [100_000, len(b"<p>page 0</p>")]
    assert result.repaired == {"truncated_body": 1}
    whole = read(tmp_path, data, "whole.warc.gz", max_body_bytes=None)
    assert whole.records["body"].bin.size()[0] > 300_000 and whole.repaired == {}


def test_non_utf8_target_uri_is_percent_encoded(tmp_path):
    result = read(tmp_path, member(wc.non_utf8_target_uri()))
    assert urls(result) == ["https://latin.example/caf%E9"]
    assert result.repaired == {"target_uri_not_utf8": 1}
