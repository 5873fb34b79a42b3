"""Score a curated lake against the synthetic crawl's labels (labels.parquet, one row per response).

For each filter family: precision and recall of the pages removed *for that reason* against the label,
and `excluded`, the share of labeled pages that did not reach the training mixture for any reason.
PII: every labeled PII string still present in any kept text after filtration (the goal is 0).
Survival: the share of each site's text pages (not images, PDFs, redirects, 404s) in the mixture.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from llm_assets.lake import part_files, scan_parts, uri

REMOVING_STAGES = ("extracted_documents", "filtered_documents", "deduplicated_documents",
                   "quality_documents", "training_mixture")
KEPT_TEXT_STAGES = ("filtered_documents", "deduplicated_documents", "quality_documents", "training_mixture")
NON_TEXT_CATEGORIES = ("image", "pdf", "redirect", "not_found")
# which removal reasons count as each filter's verdict (case-insensitive regular expressions)
FAMILY_REASONS = {
    "nsfw": r"(?i)nsfw|adult|porn|sexual|url_blocklist",
    "toxic": r"(?i)toxic",
    "junk": r"(?i)junk|gibberish|gopher|c4:|fineweb|quality_model",
    "non_english": r"(?i)lang",
    "exact_duplicate": r"^exact_duplicate$",
    "near_duplicate": r"^near_duplicate$",
    "duplicate": r"^(exact|near)_duplicate$",
    "contaminated": r"^contaminated$",
}
SURVIVAL_GOALS = {"encyclopedia": (">=", 0.90), "spam": ("<=", 0.02), "junk": ("<=", 0.02),
                  "adult": ("<=", 0.02)}


def _precision_recall(predicted: set[str], truth: set[str], universe: set[str] | None = None) -> dict:
    if universe is not None:
        predicted, truth = predicted & universe, truth & universe
    hits = len(predicted & truth)
    return {"labeled": len(truth), "flagged": len(predicted), "correct": hits,
            "precision": round(hits / len(predicted), 4) if predicted else None,
            "recall": round(hits / len(truth), 4) if truth else None}


def _ids(frame: pl.DataFrame) -> set[str]:
    return set(frame["warc_record_id"].to_list()) if frame.height else set()


def _kept_ids(root: Path, stage: str) -> set[str]:
    files = part_files(root, stage)
    return _ids(scan_parts(files).select("warc_record_id").collect()) if files else set()


def score_against_labels(out_dir: str | os.PathLike, labels_path: str | os.PathLike) -> dict:
    """Precision/recall per filter, PII leaks and per-site survival of the lake at `out_dir`."""
    root = out_dir
    labels_path = Path(labels_path)
    if not labels_path.exists():
        raise FileNotFoundError(f"labels file {labels_path} not found (the synthetic crawl writes labels.parquet)")
    labels = pl.read_parquet(labels_path)
    frames = [scan_parts(files).select("warc_record_id", "stage", "reason").collect()
              for files in (part_files(root, stage, "removed") for stage in REMOVING_STAGES) if files]
    removed = pl.concat([f for f in frames if f.height],
                        how="vertical_relaxed") if any(f.height for f in frames) else pl.DataFrame(
        schema={"warc_record_id": pl.Utf8, "stage": pl.Utf8, "reason": pl.Utf8})
    in_mixture = _kept_ids(root, "training_mixture")
    dedup_input = _kept_ids(root, "filtered_documents")
    mixture_input = _kept_ids(root, "quality_documents")

    text_pages = labels.filter(~pl.col("category").is_in(NON_TEXT_CATEGORIES))
    truth = {
        "nsfw": _ids(text_pages.filter(pl.col("nsfw"))),
        "toxic": _ids(text_pages.filter(pl.col("toxic"))),
        "junk": _ids(text_pages.filter(pl.col("junk"))),
        "non_english": _ids(text_pages.filter(pl.col("language").is_not_null() & (pl.col("language") != "en"))),
        "exact_duplicate": _ids(labels.filter(pl.col("duplicate_of").is_not_null() & ~pl.col("near_duplicate"))),
        "near_duplicate": _ids(labels.filter(pl.col("duplicate_of").is_not_null() & pl.col("near_duplicate"))),
        "duplicate": _ids(labels.filter(pl.col("duplicate_of").is_not_null())),
        "contaminated": _ids(labels.filter(pl.col("contaminated"))),
    }
    # a copy is only findable when it and its original both reached deduplication
    originals = dict(zip(labels["warc_record_id"], labels["duplicate_of"], strict=True))
    dup_universe = {i for i in dedup_input if originals.get(i) is None or originals[i] in dedup_input}
    universes = {"exact_duplicate": dup_universe, "near_duplicate": dup_universe, "duplicate": dup_universe,
                 "contaminated": mixture_input}

    filters = {}
    for family, pattern in FAMILY_REASONS.items():
        predicted = _ids(removed.filter(pl.col("reason").str.contains(pattern)))
        scores = _precision_recall(predicted, truth[family], universes.get(family))
        scores["excluded"] = (round(len(truth[family] - in_mixture) / len(truth[family]), 4)
                              if truth[family] else None)
        filters[family] = scores

    return {"filters": filters, "pii": _pii_leaks(root, labels), "survival": _survival(text_pages, in_mixture),
            "removed_by_stage": dict(removed.group_by("stage").len().iter_rows()) if removed.height else {}}


def _pii_leaks(root: Path, labels: pl.DataFrame) -> dict:
    strings = sorted({s for row in labels["pii"].to_list() if row for s in row if s})
    found: set[str] = set()
    for path in (f for stage in KEPT_TEXT_STAGES for f in part_files(root, stage)) if strings else ():
        kept = pl.read_parquet(uri(path), columns=["text"])
        matches = kept.select(pl.col("text").str.extract_many(strings, overlapping=True).alias("m"))
        found.update(matches.explode("m")["m"].drop_nulls().unique().to_list())
    return {"labeled_strings": len(strings), "leaked_strings": len(found),
            "recall": round(1 - len(found) / len(strings), 4) if strings else None,
            "leaked_examples": sorted(found)[:5]}


def _survival(text_pages: pl.DataFrame, in_mixture: set[str]) -> dict:
    per_site = (
        text_pages.with_columns(pl.col("warc_record_id").is_in(list(in_mixture)).alias("survived"))
        .group_by("site").agg(pl.len().alias("pages"), pl.col("survived").sum().alias("survived"))
        .with_columns((pl.col("survived") / pl.col("pages")).round(4).alias("share"))
        .sort("site")
    )
    sites = {r["site"]: {"pages": r["pages"], "survived": r["survived"], "share": r["share"]}
             for r in per_site.iter_rows(named=True)}
    goals = {}
    for site, (op, target) in SURVIVAL_GOALS.items():
        if site in sites:
            share = sites[site]["share"]
            goals[site] = {"share": share, "goal": f"{op} {target}",
                           "met": share >= target if op == ">=" else share <= target}
    return {"sites": sites, "goals": goals, "all_goals_met": all(g["met"] for g in goals.values())}
