"""Fuzzing the WARC framing and the HTTP payload decoder: whatever the bytes, every input ends under counted
outcomes or one clear error, with bodies within the cap and memory bounded.

The inputs are the hand-crafted records of `warc_cases` (each leniency case real archives need), mutated:
bytes flipped, cut, inserted, duplicated, Content-Length values replaced, records spliced, gzip members
damaged after compression, and members that inflate far beyond the cap. The HTTP payload decoder's parts
(status line and headers, chunked transfer coding, gzip/deflate/br/zstd Content-Encoding) get bodies that
are valid, truncated, corrupted or plain random. The budget is fixed and derandomized so CI is reproducible;
`bench/fuzz_parsers.py` runs the same properties for longer with random seeds.
"""

from __future__ import annotations

import gzip
import io
import re
import tracemalloc
import zlib
from pathlib import Path

import brotli
import pytest
import warc_cases as wc
from fastwarc.stream_io import ZstdWriter

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from llm_assets.crawl import UnreadableWarcError, read_warc  # noqa: E402
from llm_assets.crawl.http_payload import dechunk, decode_content, parse_http  # noqa: E402

CAP = 64 << 10  # max_body_bytes for the fuzzed reads: small, so that the cap is actually reached
BOMB_PEAK_LIMIT = 16 << 20  # Python allocations while reading a file whose member inflates to up to 24 MiB
BUDGET = settings(derandomize=True, max_examples=120, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SKIP_REASONS = {"garbage_between_records", "corrupt_gzip_member", "bad_record_header", "truncated_record",
                "bad_target_uri", "bad_warc_date", "bad_http_status_line", "unsupported_content_encoding",
                "corrupt_content_encoding"}
REPAIRS = {"bad_content_length", "chunked_body_truncated", "chunked_header_over_plain_body",
           "content_encoding_header_lies", "content_encoding_truncated", "content_length_mismatch",
           "http_headerless_response", "http_headers_lf_only", "missing_content_length",
           "target_uri_angle_brackets", "target_uri_not_utf8", "truncated_body"}
CHUNK_REPAIRS = {None, "chunked_body_truncated", "chunked_header_over_plain_body"}
# a known WARC type (two WARC-Type headers that disagree count under the first), or kind:scheme / kind:mime
NON_RESPONSE = re.compile(r"(warcinfo|response|resource|request|metadata|revisit|conversion|continuation|"
                          r"unknown_warc_type|[a-z]+:.{1,40})", re.S)

SEEDS = [wc.page(0), wc.page(1), wc.chunked_header_over_plain_body(), wc.really_chunked_body(),
         wc.common_crawl_x_crawler_headers(), *(wc.content_encoded(e) for e in ("gzip", "deflate", "raw-deflate", "br")),
         wc.gzip_then_chunked(), wc.content_encoding_header_lies(), wc.corrupt_gzip_body(), wc.truncated_gzip_body(),
         wc.http_10_response(), wc.headerless_http09_response(), wc.lf_only_http_headers(), wc.revisit_record(),
         wc.resource_record(), wc.conversion_record(), wc.dns_response(), wc.non_utf8_target_uri(),
         wc.wget_log_resource(), wc.large_body(100_000)]


# --------------------------------------------------------------------------- strategies


@st.composite
def mutated(draw, data: bytes, max_mutations: int = 4) -> bytes:
    """`data` with a few mutations: flips, cuts, inserts, duplications, a replaced Content-Length."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, max_mutations))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "duplicate", "length", "date", "truncate"]))
        at = draw(st.integers(0, max(0, len(out) - 1)))
        if kind == "flip" and out:
            out[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del out[at : at + draw(st.integers(1, 64))]
        elif kind == "insert":
            out[at:at] = draw(st.sampled_from([b"\r\n", b"\r\n\r\n", b"WARC/1.0\r\n", b"\x1f\x8b\x08", b"0\r\n\r\n"])
                              | st.binary(max_size=32))
        elif kind == "duplicate":
            out[at:at] = out[at : at + draw(st.integers(1, 256))]
        elif kind == "length":
            value = draw(st.sampled_from([b"0", b"-1", b"lots", b"99999999999", b"", b" 12 ", b"9" * 5000]) |
                         st.integers(0, 10**9).map(lambda n: str(n).encode()))
            out = bytearray(re.sub(rb"(Content-Length:)[^\r\n]*", rb"\1 " + value.replace(b"\\", b"\\\\"), bytes(out),
                                   count=1, flags=re.I))
        elif kind == "date":
            value = draw(st.sampled_from([b"9999-12-31T23:59:59-05:00", b"0001-01-01T00:00:00+05:00", b"2024-02-30",
                                          b"99991231235959", b"x"]) | st.binary(max_size=30))
            out = bytearray(re.sub(rb"(WARC-Date:)[^\r\n]*", rb"\1 " + value.replace(b"\\", b"\\\\"), bytes(out),
                                   count=1))
        elif kind == "truncate":
            del out[at:]
    return bytes(out)


@st.composite
def http_blocks(draw) -> bytes:
    """An HTTP response whose body is (maybe) content-encoded and chunked, then damaged."""
    text = draw(st.binary(max_size=2000) | st.sampled_from([wc.HTML, wc.LONG_HTML]))
    encoding = draw(st.sampled_from(["", "gzip", "deflate", "br", "zstd", "gzip, gzip", "compress", "identity"]))
    body = encode(text, encoding)
    headers = "Content-Type: text/html\r\n"
    if encoding:
        headers += f"Content-Encoding: {draw(st.sampled_from([encoding, 'gzip', 'br', 'x-unknown']))}\r\n"
    if draw(st.booleans()):
        headers += "Transfer-Encoding: chunked\r\n"
        if draw(st.booleans()):
            body = wc.chunked(body, draw(st.integers(1, 5)))
    status = draw(st.sampled_from(["HTTP/1.1 200 OK", "HTTP/1.0 404 Not Found", "HTTP/1.1 abc", "HTTP/", "",
                                   "HTTP/1.1 99999999999 OK", "HTTP/1.1 0 Zero"]))
    block = f"{status}\r\n{headers}\r\n".encode() + body
    return draw(mutated(block, 3))


def encode(text: bytes, encoding: str) -> bytes:
    if encoding in ("gzip", "gzip, gzip"):
        once = gzip.compress(text, mtime=0)
        return gzip.compress(once, mtime=0) if encoding == "gzip, gzip" else once
    if encoding == "deflate":
        return zlib.compress(text)
    if encoding == "br":
        return brotli.compress(text)
    if encoding == "zstd":
        return zstd_frame(text)
    return text


def zstd_frame(text: bytes) -> bytes:
    out = io.BytesIO()
    writer = ZstdWriter(out)
    writer.write(text)
    writer.close()
    return out.getvalue()


@st.composite
def records(draw) -> bytes:
    if draw(st.integers(0, 3)) == 0:
        url = draw(st.sampled_from(["https://fuzz.example/", "http://[::1]/x", "dns:x", "<https://a.b/>", "no host"]))
        return draw(mutated(wc.warc_record(url, draw(http_blocks()),
                                           length=draw(st.sampled_from([None, None, -1, 5, 10**6]))), 2))
    return draw(mutated(draw(st.sampled_from(SEEDS))))


@st.composite
def warc_files(draw) -> tuple[str, bytes]:
    """(file name, bytes): records as one gzip member each, as one member, or uncompressed; then damaged."""
    parts = draw(st.lists(records(), min_size=1, max_size=5))
    layout = draw(st.sampled_from(["members", "members", "one member", "plain"]))
    if layout == "plain":
        return "f.warc", draw(mutated(b"".join(parts), 2))
    members = [gzip.compress(p, mtime=0) for p in parts] if layout == "members" else \
        [gzip.compress(b"".join(parts), mtime=0)]
    damaged = [draw(mutated(m, 2)) if draw(st.integers(0, 3)) == 0 else m for m in members]
    return "f.warc.gz", b"".join(damaged)


# --------------------------------------------------------------------------- properties


def outcome(path: Path):
    """read_warc's result, with every property of a result checked; None when the file was refused with
    one clear error naming it."""
    try:
        result = read_warc(str(path), max_body_bytes=CAP)
    except UnreadableWarcError as exc:
        message = str(exc)
        assert path.name in message and "\n" not in message, message
        return None
    kept = result.records.height
    assert result.records_seen == kept + sum(result.skipped.values()) + sum(result.non_response.values())
    assert set(result.skipped) <= SKIP_REASONS, result.skipped
    assert set(result.repaired) <= REPAIRS, result.repaired
    assert all(NON_RESPONSE.fullmatch(k) for k in result.non_response), result.non_response
    assert all(len(body) <= CAP for body in result.records["body"]), "a body longer than max_body_bytes"
    return result


def check_warc_file(case: tuple[str, bytes], folder: Path) -> None:
    name, data = case
    path = folder / name
    path.write_bytes(data)
    outcome(path)


@st.composite
def bomb_files(draw) -> tuple[bytes, list[str], int]:
    """Pages around one member that inflates to 2..24 MiB: with, without or with a wrong Content-Length,
    maybe cut short or followed by junk. Returns the file, the pages that must be read, and the size."""
    mib = draw(st.integers(2, 24))
    # a repeated byte, blank lines, or text with a record start every MiB (the framing must hold those back)
    filler = draw(st.sampled_from([b"a", b"\r\n", b"\0", b"a" * ((1 << 20) - 14) + b"\r\n\r\nWARC/1.0\r\n"]))
    body = b"<p>" + filler * ((mib << 20) // len(filler))
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
    length = draw(st.sampled_from(["true", "missing", "short", "huge"]))
    value = {"true": len(http) + len(body), "missing": None, "short": 7, "huge": 10**12}[length]
    head = (b"WARC/1.1\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:bomb>\r\n"
            b"WARC-Date: 2024-03-01T12:00:00Z\r\nWARC-Target-URI: https://bomb.example/\r\n"
            b"Content-Type: application/http; msgtype=response\r\n"
            + (b"" if value is None else f"Content-Length: {value}\r\n".encode()) + b"\r\n")
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    bomb = z.compress(head + http) + z.compress(body) + z.compress(b"\r\n\r\n") + z.flush()
    if draw(st.booleans()):
        bomb = bomb[: draw(st.integers(len(bomb) // 2, len(bomb)))]  # the file or member ends early
    before = draw(st.integers(0, 3))
    after = draw(st.integers(0, 3))
    pages = [wc.member(wc.page(i)) for i in range(before + after)]
    data = b"".join(pages[:before]) + bomb + b"".join(pages[before:])
    must_read = [f"https://site{i}.example/page" for i in range(before + after)]
    return data, must_read, mib


def check_bomb(case: tuple[bytes, list[str], int], folder: Path) -> None:
    data, must_read, mib = case
    path = folder / "b.warc.gz"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        result = outcome(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < BOMB_PEAK_LIMIT, f"{peak / 2**20:.0f} MiB held reading a member of {mib} MiB"
    if result is None:  # refused with one clear error: only when nothing but a broken bomb was in the file
        assert not must_read
        return
    assert set(must_read) <= set(result.records["url"]), (must_read, result.records["url"].to_list())


ENCODINGS = st.sampled_from(["gzip", "x-gzip", "deflate", "br", "zstd", "gzip, br", "identity", "compress",
                             "gzip,,identity", " GZIP "]) | st.text(max_size=20)


def check_decode(case: tuple[bytes, str], folder: Path) -> None:
    body, header = case
    repairs: list[str] = []
    decoded = decode_content(body, header, 1000, repairs)
    # decoding never inflates past the cap; a body that was not really encoded comes back as it was
    assert decoded is None or len(decoded) <= max(1001, len(body))
    assert set(repairs) <= REPAIRS | {"unsupported_content_encoding"}, repairs


def check_dechunk(case: tuple[bytes, bool], folder: Path) -> None:
    body, truncated = case
    out, repair = dechunk(body, truncated)
    assert len(out) <= len(body) and repair in CHUNK_REPAIRS


def check_parse_http(block: bytes, folder: Path) -> None:
    parsed = parse_http(block, [])
    if parsed is not None:
        status, headers, body = parsed
        assert isinstance(status, int) and isinstance(headers, dict) and len(body) <= 2 * len(block)


# name: (inputs, property, examples in the test budget); bench/fuzz_parsers.py runs the same for longer
TARGETS = {
    "warc files": (warc_files(), check_warc_file, 120),
    "member bombs": (bomb_files(), check_bomb, 16),
    "content encoding": (st.tuples(st.binary(max_size=4000) | http_blocks().map(
        lambda b: b.partition(b"\r\n\r\n")[2]), ENCODINGS), check_decode, 150),
    "chunked bodies": (st.tuples(st.binary(max_size=3000).flatmap(lambda b: mutated(wc.chunked(b, 4), 3))
                                 | st.binary(max_size=500), st.booleans()), check_dechunk, 150),
    "http headers": (http_blocks() | st.binary(max_size=600), check_parse_http, 150),
}


@pytest.mark.parametrize("target", list(TARGETS))
def test_fuzzed_input_ends_in_counted_outcomes_or_one_clear_error(target, tmp_path):
    """Every input ends under counted outcomes or one clear error, bodies within the cap, memory bounded."""
    inputs, check, examples = TARGETS[target]

    @settings(BUDGET, max_examples=examples)
    @given(case=inputs)
    def run(case):
        check(case, tmp_path)

    run()


def test_the_strategies_reach_kept_records_skips_and_refusals(tmp_path):
    """The fuzzed files are not all-valid or all-broken: a derandomized draw gives each kind of outcome."""
    seen = {"kept": 0, "skipped": 0, "refused": 0}

    @settings(BUDGET, max_examples=60)
    @given(case=warc_files())
    def draw(case):
        path = tmp_path / case[0]
        path.write_bytes(case[1])
        result = outcome(path)
        if result is None:
            seen["refused"] += 1
        else:
            seen["kept"] += result.records.height
            seen["skipped"] += sum(result.skipped.values())

    draw()
    assert all(seen.values()), seen
