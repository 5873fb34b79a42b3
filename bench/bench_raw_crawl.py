"""WARC reader throughput: ours against bare FastWARC and bare warcio on the same files, side by side.

    python bench/bench_raw_crawl.py [--profile default] [--crawl DIR] [--real DIR] [--repeat 5]

Three sets of files, each read by every reader in this one process:
- `synthetic`: the profile's synthetic crawl (or the WARC files of --crawl);
- `warcio capture`, `wget`: a documentation site served on 127.0.0.1 and recorded by real archiving clients
  (warcio's capture_http around requests, and GNU Wget's --warc-file; tests/realweb.py does both), or the
  WARC files of --real.

Readers, every one over every record of the file:
- `FastWARC`: ArchiveIterator(parse_http=True), reading every record's payload (no content decoding);
- `warcio`: ArchiveIterator, reading every record's content_stream() (it de-chunks and decodes gzip/br);
- `ours (reader)`: iter_warc_batches: FastWARC framing plus our held-record check, lenient HTTP decoding and
  the rows as Polars frames;
- `ours + Parquet`: crawl_to_parquet, the raw_crawl asset's work (the above plus zstd Parquet).
MB/s is of the files as stored (compressed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from fastwarc.warc import ArchiveIterator as FastIterator
from warcio.archiveiterator import ArchiveIterator as WarcioIterator

from llm_assets import profiles
from llm_assets.crawl import resolve_sources
from llm_assets.crawl.raw import crawl_to_parquet
from llm_assets.crawl.warc import Tally, iter_warc_batches

ROOT = Path(__file__).resolve().parents[1]


def bare_fastwarc(uris: list[str]) -> int:
    records = 0
    for uri in uris:
        for rec in FastIterator(uri, parse_http=True):
            rec.reader.read()
            records += 1
    return records


def bare_warcio(uris: list[str]) -> int:
    records = 0
    for uri in uris:
        with open(uri, "rb") as f:
            for rec in WarcioIterator(f):
                rec.content_stream().read()
                records += 1
    return records


def ours_reader(uris: list[str]) -> int:
    tally = Tally()
    for uri in uris:
        for _ in iter_warc_batches(uri, tally=tally):
            pass
    assert tally.balanced()
    return tally.records_seen


def ours_parquet(uris: list[str], out: Path) -> int:
    return sum(crawl_to_parquet(uri, out / f"{i}.parquet")["records_seen"] for i, uri in enumerate(uris))


def best_of(fn, repeat: int) -> tuple[float, int]:
    best, result = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def record_real_crawls(out: Path) -> dict[str, list[str]]:
    sys.path.insert(0, str(ROOT / "tests"))
    import realweb

    with realweb.serve_site() as base:
        sets = {"warcio capture": [str(realweb.record_with_warcio(base, out / "docs-warcio.warc.gz"))]}
        if realweb.wget_available():
            sets["wget"] = [str(realweb.record_with_wget(base, out / "docs-wget", out / ".wget-files"))]
    return sets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="default")
    ap.add_argument("--crawl", help="folder of WARC files (default: generate the profile's synthetic crawl)")
    ap.add_argument("--real", help="folder of real WARC files (default: record a local site with warcio and wget)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        crawl = args.crawl
        if not crawl:
            from llm_assets.synthetic import generate_crawl

            crawl = str(tmp / "crawl")
            prof = profiles.get_profile(args.profile)
            generate_crawl(crawl, 0, prof.synthetic, profile_name=prof.name)
        sets = {"synthetic": list(resolve_sources([crawl]).values())}
        if args.real:
            sets["real"] = list(resolve_sources([args.real]).values())
        else:
            sets.update(record_real_crawls(tmp / "real"))
        for name, uris in sets.items():
            size_mb = sum(Path(u).stat().st_size for u in uris) / 1e6
            readers = (("FastWARC (iterate + read payload)", lambda u=uris: bare_fastwarc(u)),
                       ("warcio (iterate + read content_stream)", lambda u=uris: bare_warcio(u)),
                       ("ours: iter_warc_batches", lambda u=uris: ours_reader(u)),
                       ("ours + Parquet: crawl_to_parquet", lambda u=uris: ours_parquet(u, tmp / "out")))
            for reader, fn in readers:
                seconds, records = best_of(fn, args.repeat)
                rows.append((name, len(uris), size_mb, reader, records, seconds))
    print(f"best of {args.repeat}; records = every WARC record of the files; MB = compressed file size\n")
    print("| files | reader | records | seconds | records/s | MB/s |")
    print("|---|---|---|---|---|---|")
    for name, n_files, size_mb, reader, records, seconds in rows:
        print(f"| {name} ({n_files} files, {size_mb:.2f} MB) | {reader} | {records} | {seconds:.4f} | "
              f"{records / seconds:,.0f} | {size_mb / seconds:.1f} |")


if __name__ == "__main__":
    main()
