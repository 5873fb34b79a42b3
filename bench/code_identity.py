"""Does a refactor change behaviour? One crawl curated and tokenized by two versions of the code, compared.

    python bench/code_identity.py --before b8f1bba --work /tmp/code-identity --seeds 0 7
    python bench/code_identity.py --before b8f1bba --work /tmp/code-identity --warc 'DIR/*.warc.gz'

`--before` is a commit, checked out into a temporary worktree; the other side is this working tree. Each
side runs in its own process with its own code first on the path: `curate` into a lake, then a tokenizer
trained on the mixture and token shards written. Per stage, the kept rows (whole rows, in order) and the
removed ids with their reasons are compared, then every byte of the tokenizer, shards and manifest. Prints
one table row per crawl with the wall time of each side.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("raw_crawl", "extracted_documents", "filtered_documents", "deduplicated_documents",
          "quality_documents", "training_mixture")


def child(tree: str, lake: str, tokens: str, warcs: list[str], benchmarks: list[str], profile: str,
          synthetic: bool) -> None:
    """One side's work, with `tree`'s code first on the path (imports only names both versions have)."""
    sys.path.insert(0, tree)
    from llm_assets.curation.pipeline import curate
    from llm_assets.lake import part_files
    from llm_assets.profiles import get_profile
    from llm_assets.tokens.shards import write_shards
    from llm_assets.tokens.tokenizer import mixture_texts, train_tokenizer

    curate(warcs, lake, profile, benchmarks, synthetic=synthetic)
    size = get_profile(profile).tokenizer
    files = part_files(Path(lake), "training_mixture")
    out = Path(tokens)
    out.mkdir(parents=True, exist_ok=True)
    train_tokenizer(mixture_texts(files, "train", max_characters=size.train_characters), size.vocab_size,
                    out / "tokenizer.json")
    write_shards(files, out / "tokenizer.json", out / "shards", size.shard_tokens, size.batch_documents)


def _frames(lake: Path, stage: str, side: str) -> dict:
    import polars as pl

    return {f.name: pl.read_parquet(f) for f in sorted((lake / stage / side).glob("*.parquet"))}


def compare(before: Path, after: Path) -> dict[str, tuple[int, int, str]]:
    """Per stage: kept and removed counts, and `=` (whole kept rows in order, removed ids and reasons),
    `= ids` (the same ids and reasons, rows in another order) or `≠`."""
    import polars as pl

    result = {}
    for stage in STAGES:
        kept_a, kept_b = _frames(before, stage, "kept"), _frames(after, stage, "kept")
        removed_a, removed_b = _frames(before, stage, "removed"), _frames(after, stage, "removed")
        keys = ["warc_record_id", "reason"]

        def ids(frames: dict, columns: list[str]) -> pl.DataFrame:
            rows = [f.select(columns).with_columns(pl.lit(name).alias("_part")) for name, f in frames.items()
                    if f.height]
            return pl.concat(rows).sort(["_part", *columns]) if rows else pl.DataFrame()

        same_ids = (ids(kept_a, ["warc_record_id"]).equals(ids(kept_b, ["warc_record_id"]))
                    and ids(removed_a, keys).equals(ids(removed_b, keys)))
        same_rows = (kept_a.keys() == kept_b.keys() and all(kept_a[k].equals(kept_b[k]) for k in kept_a)
                     and removed_a.keys() == removed_b.keys()
                     and all(removed_a[k].equals(removed_b[k]) for k in removed_a))
        kept, removed = sum(f.height for f in kept_a.values()), sum(f.height for f in removed_a.values())
        result[stage] = (kept, removed, "=" if same_rows else "= ids" if same_ids else "≠")
    return result


def digests(folder: Path) -> dict[str, str]:
    return {f.relative_to(folder).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(folder.rglob("*")) if f.is_file()}


def run(name: str, trees: dict[str, Path], warcs: list[str], benchmarks: list[str], synthetic: bool,
        work: Path, profile: str) -> str:
    seconds = {}
    for side, tree in trees.items():
        started = time.perf_counter()
        spec = json.dumps({"tree": str(tree), "lake": str(work / name / side / "lake"),
                           "tokens": str(work / name / side / "tokens"), "warcs": warcs, "benchmarks": benchmarks,
                           "profile": profile, "synthetic": synthetic})
        subprocess.run([sys.executable, __file__, "--child", spec], check=True, cwd=tree)
        seconds[side] = time.perf_counter() - started
    stages = compare(work / name / "before" / "lake", work / name / "after" / "lake")
    cells = " | ".join(f"{kept:,} / {removed:,} {same}" for kept, removed, same in stages.values())
    tokens = [digests(work / name / side / "tokens") for side in trees]
    files = sum(key.endswith(".bin") for key in tokens[0])
    identical = "byte-identical" if tokens[0] == tokens[1] else "DIFFERENT"
    return f"| {name} | {cells} | {files} shards, {identical} | {seconds['before']:.0f} / {seconds['after']:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="the commit to compare this working tree with")
    parser.add_argument("--work")
    parser.add_argument("--seeds", type=int, nargs="*", default=[], help="synthetic crawls of these seeds")
    parser.add_argument("--warc", nargs="*", default=[], help="other WARC files (one crawl)")
    parser.add_argument("--profile", default="default")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(**json.loads(args.child))
        return
    if not (args.before and args.work):
        parser.error("--before and --work are required")
    sys.path.insert(0, str(REPO))
    from llm_assets.profiles import get_profile
    from llm_assets.synthetic.crawl_folder import generate_crawl, is_synthetic_crawl

    work = Path(args.work)
    with tempfile.TemporaryDirectory(prefix="before-") as before:
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", before, args.before], check=True,
                       capture_output=True)
        try:
            trees = {"before": Path(before), "after": REPO}
            print("| crawl | " + " | ".join(f"{s} kept / removed" for s in STAGES) + " | token shards "
                  "| wall s before / after |")
            print("|---|" + "---|" * len(STAGES) + "---|---|")
            for seed in args.seeds:
                folder = work / "crawls" / f"seed{seed}"
                if not is_synthetic_crawl(folder):
                    generate_crawl(folder, seed, get_profile(args.profile).synthetic, args.profile)
                warcs = sorted(str(p) for p in folder.glob("crawl-*.warc.gz"))
                print(run(f"seed{seed}", trees, warcs, [str(folder / "benchmark.jsonl")], True, work,
                          args.profile), flush=True)
            if args.warc:
                from llm_assets.crawl import resolve_sources

                warcs = list(resolve_sources(args.warc).values())
                print(run("warc", trees, warcs, [], False, work, args.profile), flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", before], check=False)
    print("\n= : the same kept and removed rows in the same order; = ids : the same ids and reasons, rows in "
          "another order; ≠ : different decisions")


if __name__ == "__main__":
    main()
