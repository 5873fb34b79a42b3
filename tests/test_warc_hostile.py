"""Hostile WARC input: gzip member bombs read in bounded memory, what `curate` says about cut bodies and a
full disk, and the cases fuzzing (tests/test_fuzz_warc.py) found."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import subprocess
import sys
import tracemalloc
import zlib

import brotli
import pytest
from test_warc import read, urls
from warc_cases import http_block, member, page, warc_record

# --------------------------------------------------------------------------- gzip member bombs

BOMB_MIB = 64
CAP = 1 << 20


def bomb_record(mib: int, length: bool = True, url: str = "https://bomb.example/") -> bytes:
    """A response record whose HTML body is `mib` MiB of one byte (about 1 KB per MiB once gzipped)."""
    body = b"<p>" + b"a" * ((mib << 20) - 3)
    return warc_record(url, http_block(body, length=False), length=None if length else -1)


def peak_python_bytes(fn):
    """`fn()` and the peak of the Python allocations it made (bytes and bytearrays included)."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("length", [True, False], ids=["content_length", "no_content_length"])
@pytest.mark.parametrize("where", ["last", "middle"])
def test_gzip_member_bomb_is_read_in_bounded_memory_and_counted(tmp_path, where, length):
    """A member inflating to 64 MiB, cut at the 1 MiB cap: the pages around it are read, the bomb's row is
    kept cut and counted `truncated_body`, and the reader never holds the inflated member."""
    bomb = member(bomb_record(BOMB_MIB, length))
    pages = [member(page(i)) for i in range(4)]
    data = b"".join(pages + [bomb] if where == "last" else pages[:2] + [bomb] + pages[2:])
    assert len(data) < 200_000
    result, peak = peak_python_bytes(lambda: read(tmp_path, data, max_body_bytes=CAP))
    assert sorted(urls(result)) == ["https://bomb.example/"] + [f"https://site{i}.example/page" for i in range(4)]
    bomb_row = result.records.filter(result.records["url"] == "https://bomb.example/").row(0, named=True)
    assert len(bomb_row["body"]) == CAP and bomb_row["body"].startswith(b"<p>aaa")
    assert result.repaired.get("truncated_body") == 1 and result.skipped == {}
    assert (result.repaired.get("missing_content_length") == 1) is not length
    assert peak < 24 << 20, f"{peak / 2**20:.0f} MiB held for a {BOMB_MIB} MiB member"


def test_plain_file_with_a_huge_last_record_is_read_in_bounded_memory(tmp_path):
    data = page(0) + bomb_record(40, length=False)
    result, peak = peak_python_bytes(lambda: read(tmp_path, data, "plain.warc", max_body_bytes=CAP))
    assert urls(result) == ["https://site0.example/page", "https://bomb.example/"]
    assert result.repaired == {"missing_content_length": 1, "truncated_body": 1}
    assert peak < 24 << 20, f"{peak / 2**20:.0f} MiB held"


def test_member_of_garbage_inflating_far_is_skipped_in_bounded_memory(tmp_path):
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    junk = b"".join(z.compress(b"\0" * (1 << 20)) for _ in range(BOMB_MIB)) + z.flush()
    data = member(page(0)) + junk + member(page(1))
    result, peak = peak_python_bytes(lambda: read(tmp_path, data, max_body_bytes=CAP))
    assert urls(result) == ["https://site0.example/page", "https://site1.example/page"]
    assert result.skipped == {"bad_record_header": 1}
    assert peak < 24 << 20, f"{peak / 2**20:.0f} MiB held"


def test_content_length_that_lies_big_still_frees_the_records_after_it(tmp_path):
    """A Content-Length far past the real end (a flipped digit) is found wrong at the end of the stretch:
    the records it would have swallowed are read, in a gzip member holding several records and in a plain file."""
    liar = warc_record("https://liar.example/", http_block(b"<p>short</p>"), length=90_000_000)
    records = liar + b"".join(page(i) for i in range(3))
    for name, data in (("many.warc.gz", gzip.compress(records, mtime=0)), ("many.warc", records)):
        result = read(tmp_path, data, name, max_body_bytes=CAP)
        assert urls(result) == ["https://liar.example/"] + [f"https://site{i}.example/page" for i in range(3)], name
        assert result.repaired == {"content_length_mismatch": 1}, name
        assert result.records["body"][0] == b"<p>short</p>"


# --------------------------------------------------------------------------- what `curate` tells the user


def pages_warc(path, big_body_mib: int = 0) -> str:
    """A small crawl of text pages as a WARC file, plus one page of `big_body_mib` MiB when asked."""
    text = " ".join(f"Sentence {i} about the night sky, the moon and the planets." for i in range(300))
    records = [member(warc_record(f"https://site{i}.example/p", http_block(
        f"<html><body><p>{i} {text}</p></body></html>".encode()))) for i in range(30)]
    if big_body_mib:
        records.append(member(bomb_record(big_body_mib)))
    path.write_bytes(b"".join(records))
    return str(path)


def run_curate(warc: str, out) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llm_assets", "curate", "--warc", warc, "--out", str(out),
                           "--profile", "smoke"], capture_output=True, text=True, timeout=600)


def test_curate_summary_counts_bodies_cut_at_the_cap(tmp_path):
    done = run_curate(pages_warc(tmp_path / "big.warc.gz", big_body_mib=11), tmp_path / "lake")
    assert done.returncode == 0, done.stderr[-2000:]
    raw = json.loads(done.stdout)["raw_crawl"]
    assert raw["repaired"] == {"truncated_body": 1} and raw["kept"] == 31


@contextlib.contextmanager
def full_disk(folder):
    """A 16 KiB tmpfs at `folder`: writes there fail with ENOSPC, as on a full disk."""
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root and a mount namespace that allows it")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_disk_full_during_curate_names_the_file_and_the_cause(tmp_path):
    warc = pages_warc(tmp_path / "pages.warc.gz")
    with full_disk(tmp_path / "full") as out:
        done = run_curate(warc, out / "lake")
        leftovers = [p.name for p in out.rglob("*.tmp")]
    assert done.returncode == 1
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("llm_assets curate: error: ") and "No space left on device" in error, error
    assert f"{out}/lake/" in error and ".parquet" in error, error
    assert leftovers == []


# --------------------------------------------------------------------------- what fuzzing found


def test_an_unknown_warc_type_is_counted_under_one_name(tmp_path):
    """The type is the file's text: each made-up type is not a metadata key of its own."""
    odd = [warc_record("https://x.example/", b"x", rtype=t) for t in ("resp,nse", "x" * 500)]
    result = read(tmp_path, b"".join(member(r) for r in [*odd, page(0)]))
    assert result.non_response == {"unknown_warc_type": 2} and urls(result) == ["https://site0.example/page"]


def test_brotli_output_is_cut_at_the_cap_whatever_brotli_hands_back():
    from llm_assets.crawl.http_payload import decode_content

    body = brotli.compress(b"\0" * (1 << 20), quality=1)  # brotli returns 32 KiB for a 1001-byte buffer
    repairs: list[str] = []
    assert len(decode_content(body, "br", 1000, repairs)) == 1001 and repairs == []


def test_a_content_length_of_thousands_of_digits_is_a_wrong_one(tmp_path):
    """int() refuses over 4300 digits: the reader used to fail the whole file on such a header."""
    rec = warc_record("https://long.example/", http_block(b"<p>x</p>")).replace(
        b"Content-Length: ", b"Content-Length: " + b"9" * 5000, 1)
    for name, data in (("long.warc.gz", member(rec) + member(page(0))), ("long.warc", rec + page(0))):
        result = read(tmp_path, data, name)
        assert urls(result) == ["https://long.example/", "https://site0.example/page"], name
        assert result.repaired == {"content_length_mismatch": 1}, name


def test_a_warc_date_at_the_calendars_end_is_a_bad_date(tmp_path):
    """Moving 9999-12-31T23:59:59-05:00 to UTC overflows: the record is skipped, not the whole file."""
    rec = warc_record("https://late.example/", http_block(b"<p>x</p>")).replace(
        b"2024-03-01T12:00:00Z", b"9999-12-31T23:59:59-05:00")
    result = read(tmp_path, member(rec) + member(page(0)))
    assert result.skipped == {"bad_warc_date": 1} and urls(result) == ["https://site0.example/page"]
