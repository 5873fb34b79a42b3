"""What the phone replay buys: `find_pii` with and without it, on real crawls and on the synthetic forum.

    python bench/bench_pii_replay.py [--doc-root /usr/share/doc] [--limit N] [--repeat 5] [--no-synthetic]

Records the real crawls of bench/real_crawls.py (Debian's HTML documentation by wget, the tests'
documentation site by warcio, the same site fetched like a browser), extracts their documents the way the
pipeline does (`extract_documents`, default profile), adds the default profile's synthetic crawl, then times
the PII step (`find_pii`, pre-scan on in both) with `replay_phones=True` and `False` over the same texts in
this process, alternating, the fastest of `--repeat` runs kept for each; checks the findings are identical.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))

from bench_pii import crawl_texts  # noqa: E402
from real_crawls import record_crawls  # noqa: E402

from llm_assets.crawl import read_warc  # noqa: E402
from llm_assets.curation import pii  # noqa: E402
from llm_assets.curation.extraction import extract_documents  # noqa: E402
from llm_assets.profiles import get_profile  # noqa: E402


def real_texts(doc_root: Path, limit: int | None) -> dict[str, list[str]]:
    """Per recorded crawl, the text of its extracted documents."""
    cfg = get_profile("default").curation
    out = {}
    with tempfile.TemporaryDirectory(prefix="pii-replay-") as tmp:
        for name, source in record_crawls(Path(tmp), doc_root, limit).items():
            warcs = sorted(source.glob("*.warc.gz")) if source.is_dir() else [source]
            raw = pl.concat([read_warc(str(p)).records for p in warcs], how="diagonal_relaxed")
            docs, _ = extract_documents(raw, cfg)
            out[name] = docs["text"].to_list()
    return out


def timed(texts: list[str], threshold: float, repeat: int) -> tuple[float, float, bool]:
    """(best seconds with the replay, without it, identical findings), the runs alternating."""
    best = {True: float("inf"), False: float("inf")}
    found = {}
    for _ in range(repeat):
        for replay in (True, False):
            start = time.perf_counter()
            found[replay] = pii.find_pii(texts, score_threshold=threshold, replay_phones=replay)
            best[replay] = min(best[replay], time.perf_counter() - start)
    return best[True], best[False], found[True] == found[False]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc-root", default="/usr/share/doc")
    parser.add_argument("--limit", type=int, help="at most this many files of --doc-root")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-synthetic", action="store_true", help="real crawls only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    threshold = get_profile("default").curation.pii_score_threshold

    corpora = real_texts(Path(args.doc_root), args.limit)
    if not args.no_synthetic:
        corpora["synthetic forum (default)"] = crawl_texts("default", 0)
    for replay in (True, False):  # presidio start-up, metadata, the replay's self-check: not timed
        pii.find_pii(["warm up a@b.com +1 212 734 5521"], replay_phones=replay)
    print(f"threshold={threshold} repeat={args.repeat}")
    print("| text | documents | MB | findings | with replay s | without s | ratio | identical |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    failures = 0
    for name, texts in corpora.items():
        with_s, without_s, identical = timed(texts, threshold, args.repeat)
        failures += not identical
        mb = sum(len(t.encode()) for t in texts) / 1e6
        findings = sum(map(len, pii.find_pii(texts, score_threshold=threshold)))
        print(f"| {name} | {len(texts)} | {mb:.2f} | {findings} | {with_s:.3f} | {without_s:.3f} "
              f"| {without_s / with_s:.2f}x | {'yes' if identical else 'NO'} |", flush=True)
    if failures:
        raise SystemExit("findings differ with and without the replay")


if __name__ == "__main__":
    main()
