"""Peak memory of one huge English page: the dedup stage alone, each per-file stage, and `curate` end to end.

    python bench/bench_huge_page.py                       # 20 MB and 200 MB pages, before and after
    python bench/bench_huge_page.py --before 60513e2      # the commit measured as "before"
    python bench/bench_huge_page.py --sizes 20 --skip-curate

Every measurement runs in its own child process. Stage rows reset the child's peak (VmHWM, through
/proc/self/clear_refs) after loading the input, so they show what the call itself added on top of holding
its input (`added`) and the process peak (`peak`). `curate` rows are the child's whole peak, its own and
its extraction workers' (ru_maxrss of the child and of its children). "before" is the dedup module of an
earlier commit (read with `git show`, imported as a temporary module) and, for `curate`, that commit
checked out as a `git worktree` under the work folder. A "before" run that would need more memory than
`--before-limit-mb` (extrapolated linearly from the smaller page) is not started and says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MB = 1_000_000
# common English words: the page must read as English to the language detector
_VOCAB_TEXT = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there been one all we their has would when if so no will more can who some them "
    "its what only about other time into than then also could after these two may first any new most over "
    "people years before made between many where under while through well city river school market family "
    "village garden winter summer music history north south early later known large small during against "
    "both each house water great public several local found since built around state still long own way "
    "country world three work part place year life children began became city council road station church"
)
VOCAB = _VOCAB_TEXT.split()


def english_paragraphs(total_bytes: int, seed: int):
    """Paragraphs (str, about 80 words each) of random English words in sentences, `total_bytes` in all."""
    import numpy as np

    rng = np.random.default_rng(seed)
    tokens = VOCAB + [w + "." for w in VOCAB[:40]]
    p_end = np.r_[np.full(len(VOCAB), 11 / 12 / len(VOCAB)), np.full(40, 1 / 12 / 40)]
    made = 0
    while made < total_bytes:
        words = [tokens[i] for i in rng.choice(len(tokens), size=80 * 2000, p=p_end).tolist()]
        for lo in range(0, len(words), 80):
            paragraph = " ".join(words[lo:lo + 80]).capitalize() + "."
            made += len(paragraph) + 8
            yield paragraph
            if made >= total_bytes:
                return


def write_html(path: Path, total_bytes: int, seed: int) -> None:
    with path.open("w") as f:
        f.write(f"<!doctype html><html><head><title>A long page {seed}</title></head><body>\n")
        for paragraph in english_paragraphs(total_bytes, seed):
            f.write(f"<p>{paragraph}</p>\n")
        f.write("</body></html>\n")


def write_text_parquet(path: Path, sizes_mb: list[float]) -> None:
    """A documents frame: one huge page of each size plus 40 ordinary pages of another host."""
    import polars as pl

    texts = ["\n".join(english_paragraphs(int(s * MB), seed)) for seed, s in enumerate(sizes_mb)]
    small = ["\n".join(english_paragraphs(2500, 1000 + i)) for i in range(40)]
    n = len(texts) + len(small)
    start = datetime(2024, 5, 1, tzinfo=UTC)
    pl.DataFrame({
        "warc_record_id": [f"<urn:uuid:{i:08d}>" for i in range(n)],
        "url": [f"https://big.example/{i}" for i in range(len(texts))] +
               [f"https://small.example/{i}" for i in range(len(small))],
        "host": ["big.example"] * len(texts) + ["small.example"] * len(small),
        "warc_file": ["crawl-0.warc.gz"] * n,
        "fetch_time": [start] * n,
        "title": ["page"] * n,
        "text": texts + small,
        "language": ["en"] * n,
        "language_score": [0.99] * n,
    }).write_parquet(path)


def write_warc(path: Path, work: Path, sizes_mb: list[float]) -> None:
    """A WARC file: one HTML page of each size and 40 ordinary pages, as a crawler would have fetched them."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with path.open("wb") as out:
        writer = WARCWriter(out, gzip=True)
        pages = [(f"https://big.example/{i}", int(s * MB), i) for i, s in enumerate(sizes_mb)]
        pages += [(f"https://small.example/{i}", 2500, 1000 + i) for i in range(40)]
        for url, size, seed in pages:
            html = work / f"page-{seed}.html"
            write_html(html, size, seed)
            headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                                  ("Content-Length", str(html.stat().st_size))],
                                       protocol="HTTP/1.1")
            with html.open("rb") as body:
                writer.write_record(writer.create_warc_record(url, "response", payload=body, http_headers=headers))
            html.unlink()


# ----------------------------------------------------------------------------- child side

def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _measure(call) -> dict:
    """Run `call()` with the process peak reset first; its seconds, the RSS before and the peak during it."""
    import gc

    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = _status_mib("VmRSS")
    t0 = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - t0
    peak = _status_mib("VmHWM")
    return {"seconds": round(seconds, 2), "rss_before_mib": round(before), "peak_mib": round(peak),
            "added_mib": round(peak - before), "result": result}


def _module_from_commit(rev: str, path: str, work: Path):
    """The file `path` as it was at `rev`, imported as a module of its own."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{path}"], check=True,
                            capture_output=True, text=True).stdout
    file = work / f"before_{rev}_{Path(path).stem}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(file.stem, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def child(args: argparse.Namespace) -> dict:
    import polars as pl

    from llm_assets.profiles import CurationConfig

    cfg = CurationConfig()
    if args.child == "curate":
        from llm_assets.curation.pipeline import curate

        t0 = time.perf_counter()
        summary = curate([args.input], args.lake, "smoke")
        self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        return {"seconds": round(time.perf_counter() - t0, 1), "peak_mib": round(max(self_peak, children_peak)),
                "result": {s: summary[s]["kept"] for s in ("raw_crawl", "extracted_documents", "filtered_documents",
                                                           "deduplicated_documents", "training_mixture")}
                | {"skipped": summary["raw_crawl"].get("skipped")}}
    docs = pl.read_parquet(args.input)
    if args.page is not None:  # one huge page alone
        docs = docs.slice(args.page, 1)
    if args.cut_mb:
        docs = docs.with_columns(pl.col("text").str.slice(0, int(args.cut_mb * MB)))
    if args.child in ("dedup-before", "dedup-after"):
        if args.child == "dedup-before":
            module = _module_from_commit(args.before, "llm_assets/curation/dedup.py", Path(args.work))
        else:
            from llm_assets.curation import dedup as module
        if args.page is not None:  # with the ordinary pages, so boilerplate and clusters have work
            docs = pl.concat([docs, pl.read_parquet(args.input).filter(pl.col("host") == "small.example")])
        out = _measure(lambda: [f.height for f in module.deduplicate(docs, cfg)])
    elif args.child == "extraction":
        from llm_assets.curation.extraction import extract_page

        body = "".join(f"<p>{p}</p>\n" for p in docs["text"][0].split("\n")).encode()
        input_mb = round(len(body) / MB, 1)
        del docs
        return {**_measure(lambda: len(extract_page(body, "utf-8", cfg.extractor)[1])), "input_mb": input_mb}
    elif args.child == "language":
        from llm_assets.curation.extraction import detect_languages

        texts = docs["text"].to_list()
        out = _measure(lambda: detect_languages(texts, cfg.languages))
    elif args.child == "filtration":
        from llm_assets.curation.filtration import filter_documents

        out = _measure(lambda: [f.height for f in filter_documents(docs, cfg)])
    elif args.child == "heuristics":
        from llm_assets.curation.filters import heuristic_filters, judge
        from llm_assets.profiles import HeuristicThresholds

        out = _measure(lambda: judge(docs, heuristic_filters(HeuristicThresholds())).to_list())
    else:
        raise SystemExit(f"unknown child {args.child}")
    out["input_mb"] = round(docs["text"].str.len_bytes().sum() / MB, 1) if docs.height else None
    return out


# ----------------------------------------------------------------------------- parent side

def run_child(argv: list[str], timeout: float, pythonpath: Path = REPO) -> dict:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "POLARS_MAX_THREADS": "2"}
    try:
        proc = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, env=env,
                              timeout=timeout, cwd=pythonpath)
    except subprocess.TimeoutExpired:
        return {"error": f"not finished in {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:160]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20,200", help="page sizes in MB (HTML body), comma-separated")
    parser.add_argument("--before", default="60513e2", help="commit measured as 'before'")
    parser.add_argument("--before-limit-mb", type=float, default=8000,
                        help="do not start a 'before' run expected to need more than this")
    parser.add_argument("--skip-curate", action="store_true")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per child")
    parser.add_argument("--work", help="work folder (default: a temporary one)")
    parser.add_argument("--results", default=str(REPO / "bench" / "RESULTS.md"), help="table appended here; '' = none")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    parser.add_argument("--page", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cut-mb", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return

    sizes = [float(s) for s in args.sizes.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="huge-page-"))
    work.mkdir(parents=True, exist_ok=True)
    before = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", args.before], check=True,
                            capture_output=True, text=True).stdout.strip()
    after = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=True,
                           capture_output=True, text=True).stdout.strip()
    docs = work / "docs.parquet"
    if not docs.exists():
        print(f"writing page texts of {sizes} MB", flush=True)
        write_text_parquet(docs, sizes)
    common = ["--input", str(docs), "--work", str(work), "--before", before]
    cap_mb = (10 << 20) / MB
    rows: list[tuple[str, str, str, dict]] = []

    def record(what: str, page: str, code: str, result: dict) -> None:
        rows.append((what, page, code, result))
        print(f"{what:<28} {page:<34} {code:<22} {json.dumps({k: v for k, v in result.items() if k != 'result'})}",
              flush=True)

    # the dedup stage alone: each page's whole text (max_body_bytes null), and cut where the default cap cuts
    per_mb: float | None = None
    for index, size in enumerate(sizes):
        for label, cut in ((f"{size:g} MB page, no cap", None), (f"{size:g} MB page, cut at the 10 MiB cap", cap_mb)):
            if cut is not None and cut >= size:
                continue
            extra = ["--page", str(index)] + (["--cut-mb", str(cut)] if cut else [])
            text_mb = min(size, cut or size)
            if per_mb is not None and per_mb * text_mb > args.before_limit_mb:
                record("dedup", label, f"before ({before})",
                       {"error": f"not run: about {per_mb * text_mb / 1000:.0f} GB expected "
                                 f"({per_mb:.0f} MiB per MB of text measured)"})
            else:
                result = run_child(["--child", "dedup-before", *common, *extra], args.timeout)
                if "added_mib" in result and result.get("input_mb"):
                    per_mb = max(per_mb or 0.0, result["added_mib"] / result["input_mb"])
                record("dedup", label, f"before ({before})", result)
            record("dedup", label, f"after ({after})", run_child(["--child", "dedup-after", *common, *extra],
                                                                 args.timeout))
    # the other stages that hold a page whole, on the first (20 MB) page
    for stage in ("extraction", "language", "filtration", "heuristics"):
        record(stage, f"{sizes[0]:g} MB page, no cap", f"after ({after})",
               run_child(["--child", stage, *common, "--page", "0"], args.timeout))

    if not args.skip_curate:
        warc = work / "huge.warc.gz"
        if not warc.exists():
            print("writing the WARC file", flush=True)
            write_warc(warc, work, sizes)
        tree = work / f"worktree-{before}"
        if not tree.exists():
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), before], check=True,
                           capture_output=True)
        try:
            for code, path in ((f"before ({before})", tree), (f"after ({after})", REPO)):
                lake = work / f"lake-{code.split()[0]}"
                record("curate (default cap)", " + ".join(f"{s:g} MB" for s in sizes) + " pages + 40 small",
                       code, run_child(["--child", "curate", "--input", str(warc), "--lake", str(lake)],
                                       args.timeout, pythonpath=path))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)

    lines = ["| measured | input | code | seconds | peak RSS MiB | added by the call MiB | note |",
             "|---|---|---|---|---|---|---|"]
    for what, page, code, r in rows:
        note = r.get("error") or (json.dumps(r["result"]) if what.startswith("curate") else "")
        lines.append(f"| {what} | {page} | {code} | {r.get('seconds', '')} | {r.get('peak_mib', '')} | "
                     f"{r.get('added_mib', '')} | {note} |")
    table = "\n".join(lines)
    print(table)
    if args.results:
        with open(args.results, "a") as f:
            f.write(f"\n## One huge page: peak memory — `python bench/bench_huge_page.py --sizes {args.sizes}`\n\n"
                    f"Measured on {datetime.now(UTC):%Y-%m-%d} on a 2-core machine shared with other runs.\n\n"
                    f"{table}\n")


if __name__ == "__main__":
    main()
