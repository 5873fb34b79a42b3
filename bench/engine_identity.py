"""Do the two engines decide alike? One crawl curated with `local` and with `ray`, every stage compared.

    python bench/engine_identity.py --work /tmp/identity --seeds 0 7      # default-profile synthetic crawls
    python bench/engine_identity.py --work /tmp/identity --warc 'DIR/*.warc.gz' --profile default

Each crawl is curated twice into two lakes (`curate(..., engine=...)`; the ray side is a local cluster of
2 workers); then, per stage, the kept and removed document ids (with reasons) and whole kept rows are
compared, a tokenizer is trained on each mixture and token shards are written with the stage's engine, and
every shard file's bytes are compared. Prints one table row per crawl with the wall time of each side.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _ids(lake: Path, stage: str, side: str):
    import polars as pl

    from llm_assets.lake import part_files

    frames = [pl.read_parquet(f).with_columns(pl.lit(f.stem).alias("_part")) for f in part_files(lake, stage, side)]
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame()
    columns = ["_part", "warc_record_id"] + (["reason"] if side == "removed" else [])
    return pl.concat(frames, how="diagonal_relaxed").select(columns).sort(columns)


def compare(local: Path, on_ray: Path) -> dict:
    """Per stage: kept count, removed count, and whether ids, reasons and kept rows are equal."""
    import polars as pl

    from llm_assets.curation.pipeline import STAGES
    from llm_assets.lake import part_files

    result = {}
    for stage in STAGES:
        if stage == "quality_classifier":
            continue
        kept, removed = _ids(local, stage, "kept"), _ids(local, stage, "removed")
        same = kept.equals(_ids(on_ray, stage, "kept")) and removed.equals(_ids(on_ray, stage, "removed"))
        rows = all(pl.read_parquet(a).equals(pl.read_parquet(b))
                   for a, b in zip(part_files(local, stage), part_files(on_ray, stage), strict=True))
        result[stage] = (kept.height, removed.height, same and rows)
    return result


def shards(lake: Path, engine: str, out: Path, profile: str) -> dict[str, str]:
    from llm_assets.engine import open_engine
    from llm_assets.lake import part_files
    from llm_assets.profiles import get_profile
    from llm_assets.tokens.shards import write_shards
    from llm_assets.tokens.tokenizer import mixture_texts, train_tokenizer

    size = get_profile(profile).tokenizer
    files = part_files(lake, "training_mixture")
    out.mkdir(parents=True, exist_ok=True)
    train_tokenizer(mixture_texts(files, "train", max_characters=size.train_characters), size.vocab_size,
                    out / "tokenizer.json")
    # the scratch folder (encoded parts, on the ray engine only) is not part of what is compared
    with open_engine(engine, workers=2) as running, tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        write_shards(files, out / "tokenizer.json", out / "shards", size.shard_tokens, size.batch_documents,
                     running, scratch)
    return {f.relative_to(out).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(out.rglob("*")) if f.is_file()}


def run(name: str, warcs: list[str], benchmarks: list[str], synthetic: bool, work: Path, profile: str) -> str:
    from llm_assets.curation.pipeline import curate

    lakes, seconds, digests = {}, {}, {}
    for engine in ("local", "ray"):
        lakes[engine] = work / name / engine
        started = time.perf_counter()
        curate(warcs, lakes[engine], profile, benchmarks, synthetic=synthetic, engine=engine)
        seconds[engine] = time.perf_counter() - started
        digests[engine] = shards(lakes[engine], engine, work / name / f"tokens-{engine}", profile)
    stages = compare(lakes["local"], lakes["ray"])
    cells = " | ".join(f"{kept:,} / {removed:,} {'=' if same else '≠'}" for kept, removed, same in stages.values())
    files = sum(name.endswith(".bin") for name in digests["local"])
    identical = "identical" if digests["local"] == digests["ray"] else "DIFFERENT"
    return (f"| {name} | {cells} | {files} shards, {identical} | {seconds['local']:.0f} / {seconds['ray']:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True)
    parser.add_argument("--seeds", type=int, nargs="*", default=[], help="default-profile synthetic crawls")
    parser.add_argument("--warc", nargs="*", default=[], help="other WARC files (one crawl)")
    parser.add_argument("--profile", default="default")
    args = parser.parse_args()
    from llm_assets.curation.pipeline import STAGES
    from llm_assets.profiles import get_profile
    from llm_assets.synthetic.crawl_folder import generate_crawl, is_synthetic_crawl

    work = Path(args.work)
    stages = [s for s in STAGES if s != "quality_classifier"]
    print("| crawl | " + " | ".join(f"{s} kept / removed" for s in stages) + " | token shards | wall s local / ray |")
    print("|---|" + "---|" * len(stages) + "---|---|")
    for seed in args.seeds:
        folder = work / "crawls" / f"seed{seed}"
        if not is_synthetic_crawl(folder):
            generate_crawl(folder, seed, get_profile(args.profile).synthetic, args.profile)
        warcs = sorted(str(p) for p in folder.glob("crawl-*.warc.gz"))
        print(run(f"synthetic seed {seed}", warcs, [str(folder / "benchmark.jsonl")], True, work, args.profile),
              flush=True)
    if args.warc:
        from llm_assets.crawl import resolve_sources

        warcs = list(resolve_sources(args.warc).values())
        print(run("given WARC files", warcs, [], False, work, args.profile), flush=True)
    print("\n= : the same ids (and reasons) kept and removed, and the same kept rows, on both engines")


if __name__ == "__main__":
    main()
