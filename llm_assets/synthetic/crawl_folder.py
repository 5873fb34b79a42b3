"""Generate the synthetic crawl: world, WARC files, labels, SFT set and benchmark, all from one seed."""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections import Counter
from pathlib import Path

import polars as pl

from llm_assets.lake import write_parquet
from llm_assets.profiles import SyntheticSize
from llm_assets.synthetic.pages import plan_crawl
from llm_assets.synthetic.questions import benchmark_items, cloze_items, open_questions, sft_examples
from llm_assets.synthetic.warc_writer import crawl_start, write_warc_files
from llm_assets.synthetic.world import build_world

log = logging.getLogger(__name__)

GENERATOR_VERSION = 3  # 2: fine-tuning questions with who-clauses and short answers; 3: reading questions, shared answers
MARKER_FILE = "synthetic.json"
LABELS_FILE = "labels.parquet"
WORLD_FILE = "world.json"
SFT_FILE = "sft.jsonl"
BENCHMARK_FILE = "benchmark.jsonl"
CLOZE_FILE = "cloze.jsonl"  # the benchmark's questions as statements to complete, same choices
OPEN_QUESTIONS_FILE = "open_questions.jsonl"  # the benchmark's questions without choices

LABEL_SCHEMA = {
    "warc_record_id": pl.Utf8, "url": pl.Utf8, "warc_file": pl.Utf8, "site": pl.Utf8, "category": pl.Utf8,
    "language": pl.Utf8, "duplicate_of": pl.Utf8, "near_duplicate": pl.Boolean, "pii": pl.List(pl.Utf8),
    "nsfw": pl.Boolean, "toxic": pl.Boolean, "junk": pl.Boolean, "contaminated": pl.Boolean,
    "quality": pl.Utf8, "http_status": pl.Int32, "content_type": pl.Utf8, "charset": pl.Utf8,
    "fetch_time": pl.Datetime("us", "UTC"),
}


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)


def is_synthetic_crawl(directory: str | os.PathLike) -> bool:
    """True when `directory` holds a complete synthetic crawl (the marker is written last)."""
    return (Path(directory) / MARKER_FILE).is_file()


def is_current_synthetic_crawl(directory: str | os.PathLike) -> bool:
    """True when `directory` holds a complete synthetic crawl written by this generator version."""
    if not is_synthetic_crawl(directory):
        return False
    try:
        return json.loads((Path(directory) / MARKER_FILE).read_text()).get("generator_version") == GENERATOR_VERSION
    except (OSError, ValueError):
        return False


def generate_crawl(out_dir: str | os.PathLike, seed: int, size: SyntheticSize, profile_name: str = "") -> dict:
    """Write the synthetic world and its web crawl into `out_dir`; returns a summary of what was written.

    Files: crawl-NNNNN.warc.gz, labels.parquet, world.json, sft.jsonl, benchmark.jsonl, cloze.jsonl,
    open_questions.jsonl, synthetic.json.
    The same seed and size give byte-identical files.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # the marker goes first and comes back last, so a crash never leaves a crawl that looks complete
    (out / MARKER_FILE).unlink(missing_ok=True)
    for stale in out.glob("crawl-*.warc.gz"):
        stale.unlink()

    # one generator per component, so changing one part does not reshuffle the others
    world = build_world(random.Random(f"{seed}:world"), size)
    benchmark = benchmark_items(random.Random(f"{seed}:benchmark"), world)
    pages = plan_crawl(random.Random(f"{seed}:pages"), world, size, benchmark)
    sft = sft_examples(random.Random(f"{seed}:sft"), world)
    log.info("planned %d pages about %d people; writing %d WARC files", len(pages), len(world.people),
             size.warc_files)

    rows = write_warc_files(out, pages, size.warc_files, random.Random(f"{seed}:warc"), crawl_start(seed),
                            f"synthetic crawl, seed {seed}, profile {profile_name or 'custom'}")
    labels = pl.DataFrame(rows, schema=LABEL_SCHEMA)
    write_parquet(labels, out / LABELS_FILE)
    _write_text(out / WORLD_FILE, json.dumps(world.to_json(), ensure_ascii=False, indent=1, sort_keys=True))
    _write_text(out / SFT_FILE, _jsonl(sft))
    _write_text(out / BENCHMARK_FILE, _jsonl(benchmark))
    _write_text(out / CLOZE_FILE, _jsonl(cloze_items(benchmark)))
    _write_text(out / OPEN_QUESTIONS_FILE, _jsonl(open_questions(benchmark)))

    warc_names = [f"crawl-{i:05d}.warc.gz" for i in range(size.warc_files)]
    summary = {
        "seed": seed,
        "profile": profile_name,
        "generator_version": GENERATOR_VERSION,
        "size": {k: getattr(size, k) for k in size.__dataclass_fields__},
        "pages": len(pages),
        "people": len(world.people),
        "sft_people": sum(p.sft for p in world.people),
        "sites": dict(sorted(Counter(p.site for p in pages).items())),
        "categories": dict(sorted(Counter(p.category for p in pages).items())),
        "languages": dict(sorted(Counter(p.language or "none" for p in pages).items())),
        "pii_strings": sum(len(p.pii) for p in pages),
        "duplicates": sum(p.duplicate_of is not None for p in pages),
        "benchmark_items": len(benchmark),
        "contaminated_items": sum(item["contaminated"] for item in benchmark),
        "sft_examples": len(sft),
        "bytes": sum((out / name).stat().st_size for name in warc_names),
        "files": [*warc_names, LABELS_FILE, WORLD_FILE, SFT_FILE, BENCHMARK_FILE, CLOZE_FILE, OPEN_QUESTIONS_FILE,
                  MARKER_FILE],
    }
    _write_text(out / MARKER_FILE, json.dumps(summary, indent=1, sort_keys=True))
    log.info("synthetic crawl in %s: %d pages, %d bytes of WARC, %.1fs", out, len(pages), summary["bytes"],
             time.perf_counter() - started)
    return summary
