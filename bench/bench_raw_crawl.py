"""raw_crawl throughput against bare warcio iteration over the same WARC files, side by side.

    python bench/bench_raw_crawl.py [--profile default] [--crawl DIR] [--repeat 3]

warcio is the reference: it only iterates records and reads their payloads; ours also parses the HTTP
response, decodes transfer/content encodings and writes Parquet. Prints a table and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from llm_assets import profiles
from llm_assets.crawl import resolve_sources
from llm_assets.crawl.raw import crawl_to_parquet


def bare_warcio(uris: list[str]) -> tuple[int, int]:
    records = payload = 0
    for uri in uris:
        with open(uri, "rb") as f:
            for rec in ArchiveIterator(f):
                if rec.rec_type == "response":
                    payload += len(rec.content_stream().read())
                    records += 1
    return records, payload


def ours(uris: list[str], out: Path) -> tuple[int, int]:
    records = payload = 0
    for i, uri in enumerate(uris):
        stats = crawl_to_parquet(uri, out / f"{i}.parquet")
        records += stats["rows"]
        payload += stats["body_bytes"]
    return records, payload


def best_of(fn, repeat: int) -> tuple[float, tuple[int, int]]:
    best = float("inf")
    result = (0, 0)
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--profile", default="default")
    ap.add_argument("--crawl", help="folder of WARC files (default: generate the profile's synthetic crawl)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        crawl = args.crawl
        if not crawl:
            from llm_assets.synthetic import generate_crawl

            crawl = str(Path(tmp) / "crawl")
            prof = profiles.get_profile(args.profile)
            generate_crawl(crawl, 0, prof.synthetic, profile_name=prof.name)
        uris = list(resolve_sources([crawl]).values())
        size_mb = sum(Path(u).stat().st_size for u in uris) / 1e6
        t_ref, (n_ref, _) = best_of(lambda: bare_warcio(uris), args.repeat)
        t_ours, (n_ours, _) = best_of(lambda: ours(uris, Path(tmp) / "out"), args.repeat)
    print(f"{len(uris)} WARC files, {size_mb:.1f} MB compressed, best of {args.repeat}\n")
    print("| reader | response records | seconds | records/s | MB/s (compressed) |")
    print("|---|---|---|---|---|")
    for name, n, t in (("warcio (iterate + read payload)", n_ref, t_ref),
                       ("llm_assets raw_crawl (parse + Parquet)", n_ours, t_ours)):
        print(f"| {name} | {n} | {t:.3f} | {n / t:,.0f} | {size_mb / t:.1f} |")
    print(f"\nratio ours/warcio throughput: {t_ref / t_ours:.2f}x")


if __name__ == "__main__":
    main()
