"""The global curation stages on the ray engine as the crawl grows: peak memory of the driver and the tasks.

    python bench/bench_scale.py --work /tmp/scale                 # 1x, 10x, 50x the default crawl
    python bench/bench_scale.py --work /tmp/scale --sizes 1 10    # a quicker pair

The crawl of size N is the default-profile synthetic crawls of seeds 0..N-1 (8 WARC files each). Their
per-file stages (raw_crawl -> filtered_documents) run once, in 2 local processes, into one lake; each size
then runs the global stages (deduplicated_documents -> training_mixture) over its files in a child process
on a local Ray cluster. Reported per size: documents, wall seconds per stage, the driver's peak RSS and
the largest peak RSS of a Ray worker process (workers are reused, so it is the largest over the tasks each
ran). Then the 10x crawl (or the largest size) runs on a cluster of 1 and of 2 workers for throughput.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def prepare(work: Path, seeds: int) -> dict[str, list[str]]:
    """Per seed, the part names whose filtered_documents are in `work/lake` (generated and curated once)."""
    import pyarrow.parquet as pq

    from llm_assets.curation.pipeline import curate_file
    from llm_assets.lake import kept_path
    from llm_assets.profiles import curation_for, get_profile
    from llm_assets.synthetic.crawl_folder import generate_crawl, is_synthetic_crawl

    profile = get_profile("default")
    cfg = curation_for(profile, True)
    lake = work / "lake"
    todo, parts = [], {}
    for seed in range(seeds):
        folder = work / "crawls" / f"seed{seed}"
        if not is_synthetic_crawl(folder):
            generate_crawl(folder, seed, profile.synthetic, "default")
        parts[seed] = []
        for warc in sorted(folder.glob("crawl-*.warc.gz")):
            part = f"s{seed:02d}-{warc.name.removesuffix('.warc.gz')}"
            parts[seed].append(part)
            if not kept_path(lake, "filtered_documents", part).exists():
                todo.append((part, str(warc)))
    if todo:
        started = time.perf_counter()
        with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(curate_file, *zip(*todo, strict=True), [str(lake)] * len(todo), [cfg] * len(todo)))
        seconds = time.perf_counter() - started
        size = sum(Path(warc).stat().st_size for _, warc in todo)
        responses = sum(pq.read_metadata(kept_path(lake, "raw_crawl", part)).num_rows for part, _ in todo)
        print(f"per-file stages of {len(todo)} files ({size / 1e6:.1f} MB of compressed WARC, {responses:,} "
              f"responses) on 2 processes: {seconds:.1f} s; per core-second {size / 1e6 / seconds / 2:.2f} MB, "
              f"{responses / seconds / 2:.0f} responses", flush=True)
    return parts


def child(payload: dict) -> dict:
    """The global stages over `parts` into a fresh lake that links the shared filtered_documents."""
    import logging

    from llm_assets.curation.pipeline import GLOBAL_STAGES
    from llm_assets.curation.stages import StageRun, stage
    from llm_assets.engine import open_engine
    from llm_assets.lake import kept_path, removed_path
    from llm_assets.profiles import curation_for, get_profile

    logging.basicConfig(level=logging.WARNING)
    source, out = Path(payload["source"]), Path(payload["out"])
    for part in payload["parts"]:
        for path in (kept_path, removed_path):
            link = path(out, "filtered_documents", part)
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(path(source, "filtered_documents", part))
    cfg = curation_for(get_profile("default"), True)
    seconds, driver_after = {}, {}
    with open_engine("ray", workers=payload["workers"]) as engine:
        driver_after["ray started"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        run = StageRun(out, tuple(payload["parts"]), cfg, engine)
        written = {}
        for name in GLOBAL_STAGES:
            started = time.perf_counter()
            written[name] = stage(name).run(run).get("parts", {})
            seconds[name] = round(time.perf_counter() - started, 2)
            driver_after[name] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        task_peak = engine.task_peak_rss
    documents = sum(kept + removed for kept, removed, _ in written["deduplicated_documents"].values())
    return {"documents": documents, "seconds": seconds, "driver_peak_mib_after": driver_after,
            "driver_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "task_peak_mib": task_peak / 2**20}


def run_child(payload: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(payload)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if proc.returncode != 0:
        raise RuntimeError(f"child failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", help="working folder (crawls and per-file stages are reused)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50], help="crawl sizes in default crawls")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    if not args.work:
        parser.error("--work is required")
    work = Path(args.work)
    parts = prepare(work, max(args.sizes))
    rows = []
    for size in args.sizes:
        chosen = [p for seed in range(size) for p in parts[seed]]
        result = run_child({"source": str(work / "lake"), "out": str(work / f"global-{size}x"), "parts": chosen,
                            "workers": 2})
        rows.append((size, len(chosen), result))
        print(f"{size}x: {json.dumps(result)}", flush=True)
    throughput = []
    timed = 10 if 10 in args.sizes else max(args.sizes)
    chosen = [p for seed in range(timed) for p in parts[seed]]
    for workers in (1, 2):
        result = run_child({"source": str(work / "lake"), "out": str(work / f"global-{timed}x-w{workers}"),
                            "parts": chosen, "workers": workers})
        throughput.append((workers, result))
        print(f"{timed}x on {workers} worker(s): {json.dumps(result)}", flush=True)

    base = rows[0][2]
    print("\n| crawl | WARC files | documents | dedup s | quality model s | quality s | mixture s | driver peak "
          "RSS MiB | largest task peak RSS MiB | task peak vs 1x |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, files, r in rows:
        s = r["seconds"]
        print(f"| {size}x | {files} | {r['documents']:,} | {s['deduplicated_documents']} | {s['quality_classifier']} "
              f"| {s['quality_documents']} | {s['training_mixture']} | {r['driver_peak_mib']:.0f} | "
              f"{r['task_peak_mib']:.0f} | {r['task_peak_mib'] / base['task_peak_mib']:.2f}x |")
    print(f"\n| {timed}x crawl | workers | global stages s | documents/s |")
    print("|---|---:|---:|---:|")
    for workers, r in throughput:
        total = sum(r["seconds"].values())
        print(f"| | {workers} | {total:.1f} | {r['documents'] / total:,.0f} |")
    ratio = sum(throughput[0][1]["seconds"].values()) / sum(throughput[1][1]["seconds"].values())
    print(f"\n2 workers / 1 worker speed-up: {ratio:.2f}x (this machine has {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
