"""Curation throughput and memory: our chain beside datatrove's FineWeb-style chain on the same crawl.

    python bench/bench_curation.py                      # default-profile synthetic crawl, both chains
    python bench/bench_curation.py --repeat 3           # three alternating runs per chain, fastest kept
    python bench/bench_curation.py --seeds 10 --ours-only   # a crawl 10x the default: our peak RSS

Each chain runs in its own child process so its peak resident memory (RSS) is measured alone.
datatrove's chain: WarcReader -> Trafilatura -> Gopher repetition -> Gopher quality -> C4 -> FineWeb
quality -> MinHash dedup (signatures, buckets, clusters, filter), each step timed on the whole list.
Ours: `llm_assets.curation.pipeline.curate` (extraction, filtration with PII, dedup, quality model,
mixture). Heuristic agreement runs both filter sets on the same texts (our extracted documents).
Requires `pip install datatrove` for the reference side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def generate(work: Path, seeds: int, profile: str) -> tuple[list[str], list[str]]:
    """WARC paths and benchmark files of `seeds` default-size crawls (seed 0..seeds-1)."""
    from llm_assets.profiles import get_profile
    from llm_assets.synthetic.crawl_folder import generate_crawl, is_synthetic_crawl

    warcs, benches = [], []
    for seed in range(seeds):
        folder = work / f"crawl-seed{seed}"
        if not is_synthetic_crawl(folder):
            generate_crawl(folder, seed, get_profile(profile).synthetic, profile)
        warcs += sorted(str(p) for p in folder.glob("crawl-*.warc.gz"))
        benches.append(str(folder / "benchmark.jsonl"))
    return warcs, benches


def run_child(args: list[str]) -> tuple[dict, float]:
    """Run this script in a child with `args`; return its JSON result and peak RSS in MiB."""
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"child {args[0]} failed with status {status}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def child_ours(warcs: list[str], benches: list[str], lake: str, profile: str) -> dict:
    from llm_assets.curation.pipeline import curate

    return curate(warcs, lake, profile, benches, synthetic=True)  # the synthetic crawls generate() wrote


def child_datatrove(warcs: list[str], work: str) -> dict:
    import datatrove.utils.hashes.xxhash as dt_xxhash
    import xxhash
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.readers import WarcReader

    # xxhash 4 refuses str; datatrove 0.10 passes str, so encode first (same hash function, same speed)
    dt_xxhash.xxhash32 = lambda data: xxhash.xxh32_intdigest(data.encode() if isinstance(data, str) else data)
    dt_xxhash.xxhash64 = lambda data: xxhash.xxh64_intdigest(data.encode() if isinstance(data, str) else data)

    folders = sorted({str(Path(w).parent) for w in warcs})
    timings: dict[str, dict] = {}
    started = time.perf_counter()

    def timed(name: str, step, docs):
        t0 = time.perf_counter()
        out = list(step.run(iter(docs) if docs is not None else None, rank=0, world_size=1))
        timings[name] = {"input": len(docs) if docs is not None else 0, "kept": len(out),
                         "seconds": round(time.perf_counter() - t0, 3)}
        return out

    docs = []
    t0 = time.perf_counter()
    for folder in folders:
        docs += list(WarcReader(folder, glob_pattern="crawl-*.warc.gz").run(None, rank=0, world_size=1))
    records = len(docs)
    timings["read"] = {"input": records, "kept": records, "seconds": round(time.perf_counter() - t0, 3)}
    docs = timed("extract", Trafilatura(favour_precision=True, timeout=5.0), docs)
    docs = timed("gopher_repetition", GopherRepetitionFilter(), docs)
    docs = timed("gopher_quality", GopherQualityFilter(), docs)
    docs = timed("c4", C4QualityFilter(filter_no_terminal_punct=False), docs)
    docs = timed("fineweb", FineWebQualityFilter(), docs)
    config = MinhashConfig()
    base = Path(work)
    t0 = time.perf_counter()
    # the first three steps write files and return None (or a generator to drain)
    drain = lambda result: list(result or [])  # noqa: E731
    drain(MinhashDedupSignature(str(base / "sigs"), config=config).run(iter(docs), 0, 1))
    for bucket in range(config.num_buckets):
        drain(MinhashDedupBuckets(str(base / "sigs"), str(base / "buckets"), config=config).run(
            None, bucket, config.num_buckets))
    drain(MinhashDedupCluster(str(base / "buckets"), str(base / "remove"), config=config).run(None, 0, 1))
    kept = list(MinhashDedupFilter(str(base / "remove")).run(iter(docs), 0, 1))
    timings["minhash"] = {"input": len(docs), "kept": len(kept), "seconds": round(time.perf_counter() - t0, 3)}
    total = time.perf_counter() - started
    return {"stages": timings, "records": records, "seconds": round(total, 3), "kept": len(kept)}


def heuristic_agreement(lake: Path, profile) -> dict:
    """Keep/drop agreement of our heuristics and datatrove's on our extracted, filtered texts."""
    import polars as pl
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    from llm_assets.curation.filters import heuristic_filters, judge
    from llm_assets.profiles import HeuristicThresholds, curation_for

    frame = pl.read_parquet(lake / "filtered_documents" / "kept" / "*.parquet")
    texts = frame["text"].to_list()
    reference = [GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(filter_no_terminal_punct=False),
                 FineWebQualityFilter()]
    theirs = []
    for i, text in enumerate(texts):
        doc = Document(text=text, id=str(i))
        keep = True
        for step in reference:
            verdict = step.filter(doc)
            if not (verdict if isinstance(verdict, bool) else verdict[0]):
                keep = False
                break
        theirs.append(keep)
    published = HeuristicThresholds(c4_drop_lines_without_terminal_punct=False)
    ours_published = judge(frame, heuristic_filters(published)).is_null().to_list()
    tuned = HeuristicThresholds.from_config(curation_for(profile, True))
    ours_default = judge(frame, heuristic_filters(tuned)).is_null().to_list()

    def agree(a, b):
        return round(sum(x == y for x, y in zip(a, b, strict=True)) / max(len(a), 1), 4)

    return {"documents": len(texts), "datatrove_kept": sum(theirs), "ours_published_kept": sum(ours_published),
            "ours_default_kept": sum(ours_default), "agreement_published_thresholds": agree(theirs, ours_published),
            "agreement_our_defaults": agree(theirs, ours_default)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="default")
    parser.add_argument("--seeds", type=int, default=1, help="crawls of the profile's size to combine")
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--ours-only", action="store_true", help="skip the datatrove side")
    parser.add_argument("--repeat", type=int, default=1, help="runs per chain, alternating; the fastest counts")
    parser.add_argument("--child", choices=("ours", "datatrove"), help=argparse.SUPPRESS)
    parser.add_argument("--payload", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        import logging

        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        payload = json.loads(args.payload)
        result = (child_ours(**payload) if args.child == "ours" else child_datatrove(**payload))
        print(json.dumps(result, default=str))
        return

    work = Path(args.work or tempfile.mkdtemp(prefix="bench_curation_"))
    work.mkdir(parents=True, exist_ok=True)
    warcs, benches = generate(work, args.seeds, args.profile)
    print(f"crawl: {len(warcs)} WARC files from {args.seeds} seed(s), profile {args.profile}, in {work}")
    lake = work / f"lake-{args.seeds}"
    ours_args = ["--child", "ours", "--payload", json.dumps(
        {"warcs": warcs, "benches": benches, "lake": str(lake), "profile": args.profile})]
    dt_work = work / f"datatrove-{args.seeds}"
    theirs_args = ["--child", "datatrove", "--payload", json.dumps({"warcs": warcs, "work": str(dt_work)})]
    # alternate the two chains so drifting machine load hits both alike; keep each side's fastest run
    runs: dict[str, list] = {"ours": [], "datatrove": []}
    for round_number in range(args.repeat):
        runs["ours"].append(run_child(ours_args))
        if not args.ours_only:
            shutil.rmtree(dt_work, ignore_errors=True)
            runs["datatrove"].append(run_child(theirs_args))
        print(f"round {round_number + 1}/{args.repeat}: ours {runs['ours'][-1][0]['total']['seconds']:.1f}s"
              + (f", datatrove {runs['datatrove'][-1][0]['seconds']:.1f}s" if runs["datatrove"] else ""))
    ours, ours_rss = min(runs["ours"], key=lambda r: r[0]["total"]["seconds"])
    from llm_assets.curation.pipeline import STAGES

    records = ours["raw_crawl"]["kept"]
    print(f"\nours: {records} records in {ours['total']['seconds']:.1f}s = "
          f"{ours['total']['documents_per_s']:.1f} docs/s end to end; peak RSS {ours_rss:.0f} MiB")
    print(f"{'stage':<24}{'input':>8}{'kept':>8}{'seconds':>10}{'docs/s':>10}")
    for stage in STAGES:
        s = ours[stage]
        rate = s["input"] / s["seconds"] if s.get("seconds") else float("nan")
        print(f"{stage:<24}{s['input']:>8}{s.get('kept', 0):>8}{s['seconds']:>10.2f}{rate:>10.1f}")
    if args.ours_only:
        return

    theirs, theirs_rss = min(runs["datatrove"], key=lambda r: r[0]["seconds"])
    dt_rate = theirs["records"] / theirs["seconds"]
    print(f"\ndatatrove: {theirs['records']} records in {theirs['seconds']:.1f}s = {dt_rate:.1f} docs/s "
          f"end to end; peak RSS {theirs_rss:.0f} MiB")
    print(f"{'stage':<24}{'input':>8}{'kept':>8}{'seconds':>10}{'docs/s':>10}")
    for stage, s in theirs["stages"].items():
        rate = s["input"] / s["seconds"] if s["seconds"] else float("nan")
        print(f"{stage:<24}{s['input']:>8}{s['kept']:>8}{s['seconds']:>10.2f}{rate:>10.1f}")
    print(f"\nend to end: ours / datatrove = {ours['total']['documents_per_s'] / dt_rate:.2f}x "
          "(ours also runs language ID, NSFW/toxicity, PII, quality model and mixture)")
    ours_post = sum(ours[k]["seconds"] for k in ("deduplicated_documents", "quality_classifier",
                                                  "quality_documents"))
    theirs_post = sum(theirs["stages"][k]["seconds"] for k in ("gopher_repetition", "gopher_quality", "c4",
                                                               "fineweb", "minhash"))
    print(f"heuristics + dedup only (ours: dedup, quality model, heuristics; datatrove: Gopher, C4, FineWeb, "
          f"MinHash): {ours['deduplicated_documents']['input'] / ours_post:.0f} vs "
          f"{theirs['stages']['gopher_repetition']['input'] / theirs_post:.0f} docs/s = "
          f"{(ours['deduplicated_documents']['input'] / ours_post) / (theirs['stages']['gopher_repetition']['input'] / theirs_post):.1f}x")
    print("\nheuristic keep/drop agreement on our extracted texts:")
    from llm_assets.profiles import get_profile

    print(json.dumps(heuristic_agreement(lake, get_profile(args.profile)), indent=1))


if __name__ == "__main__":
    main()
