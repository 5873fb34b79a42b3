"""JSON-able metadata shared by every curation stage: what was kept, what was removed and why; the same
counts over a whole lake for the model card."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from llm_assets.crawl import redact_url
from llm_assets.lake import kept_path, removed_path, scan_parts


def summarize(stage: str, kept: pl.DataFrame | pl.LazyFrame, removed: pl.DataFrame | pl.LazyFrame,
              samples: int = 3, top_hosts: int = 20) -> dict:
    """Counts kept/removed, removed per reason with a few samples each, language mix, pages per host.

    Lazy frames (say over a stage's part files) are aggregated without loading their text.
    """
    kept, removed = kept.lazy(), removed.lazy()
    kept_columns = set(kept.collect_schema().names())
    removed_columns = removed.collect_schema().names()
    n_kept = kept.select(pl.len()).collect().item() if kept_columns else 0
    per_reason = (removed.group_by("reason").len().sort(["len", "reason"], descending=[True, False]).collect()
                  if "reason" in removed_columns else pl.DataFrame(schema={"reason": pl.Utf8, "len": pl.UInt32}))
    n_removed = int(per_reason["len"].sum())
    total = n_kept + n_removed
    summary: dict = {
        "stage": stage,
        "kept": n_kept,
        "removed": n_removed,
        "kept_fraction": round(n_kept / total, 4) if total else None,
        "removed_by_reason": {r: int(n) for r, n in per_reason.iter_rows()},
        "removed_samples": {},
    }
    columns = [c for c in ("warc_record_id", "url", "sample") if c in removed_columns]
    for reason in per_reason["reason"]:
        rows = removed.filter(pl.col("reason") == reason).head(samples).select(columns).collect()
        summary["removed_samples"][reason] = rows.to_dicts()
    if not n_kept:
        return summary
    if "language" in kept_columns:
        mix = kept.group_by("language").len().sort(["len", "language"], descending=[True, False]).collect()
        summary["languages"] = {lang: int(n) for lang, n in mix.iter_rows()}
    if "host" in kept_columns:
        hosts = kept.group_by("host").len().sort(["len", "host"], descending=[True, False]).collect()
        summary["hosts"] = {h: int(n) for h, n in hosts.head(top_hosts).iter_rows()}
        summary["distinct_hosts"] = hosts.height
    if "text" in kept_columns:
        summary["kept_characters"] = int(kept.select(pl.col("text").str.len_chars().sum()).collect().item())
    return summary


def stage_counts(root: str | os.PathLike, stages: list[str], parts: list[str]) -> list[dict]:
    """Kept and removed rows per stage over `parts` of the lake at `root`, with drop reasons; a stage with no
    kept part (not materialized, or one that writes a model rather than parts) is left out."""
    rows = []
    for stage in stages:
        # every curation stage, the global ones too, writes one part per crawl partition
        kept = [f for f in (kept_path(root, stage, p) for p in parts) if f.exists()]
        removed = [f for f in (removed_path(root, stage, p) for p in parts) if f.exists()]
        if not kept:
            continue
        reasons = (scan_parts(removed).group_by("reason").len().collect() if removed
                   else pl.DataFrame(schema={"reason": pl.Utf8, "len": pl.UInt32}))
        rows.append({"stage": stage, "kept": scan_parts(kept).select(pl.len()).collect().item(),
                     "removed": int(reasons["len"].sum()) if removed else None,
                     "reasons": dict(reasons.iter_rows())})
    return rows


def source_counts(root: str | os.PathLike, sources: dict[str, str]) -> list[dict]:
    """Per crawl source (`{partition: uri}`): its redacted URI, the records raw_crawl kept, and its size when
    it is a local file."""
    rows = []
    for key, uri in sources.items():
        raw = kept_path(root, "raw_crawl", key)
        records = scan_parts([raw]).select(pl.len()).collect().item() if raw.exists() else None
        local = Path(uri)
        rows.append({"uri": redact_url(uri), "records": records, "bytes": local.stat().st_size if local.exists() else None})
    return rows


def split_documents(files: list[Path]) -> dict[str, int]:
    """Documents per split of the training mixture in `files`, and `on_both_sides`: documents with rows in
    more than one split (a leak of validation text into training)."""
    rows = scan_parts(files).select("warc_record_id", "split").collect()
    docs = dict(rows.unique(["warc_record_id", "split"]).group_by("split").len().iter_rows())
    both = rows.group_by("warc_record_id").agg(pl.col("split").n_unique().alias("n")).filter(pl.col("n") > 1)
    return {"train": docs.get("train", 0), "validation": docs.get("validation", 0), "on_both_sides": both.height}
