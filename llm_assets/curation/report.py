"""JSON-able metadata shared by every curation stage: what was kept, what was removed and why."""

from __future__ import annotations

import polars as pl


def summarize(stage: str, kept: pl.DataFrame, removed: pl.DataFrame, samples: int = 3,
              top_hosts: int = 20) -> dict:
    """Counts kept/removed, removed per reason with a few samples each, language mix, pages per host."""
    total = kept.height + removed.height
    summary: dict = {
        "stage": stage,
        "kept": kept.height,
        "removed": removed.height,
        "kept_fraction": round(kept.height / total, 4) if total else None,
        "removed_by_reason": {},
        "removed_samples": {},
    }
    if removed.height:
        per_reason = removed.group_by("reason").len().sort(["len", "reason"], descending=[True, False])
        summary["removed_by_reason"] = {r: int(n) for r, n in per_reason.iter_rows()}
        columns = [c for c in ("warc_record_id", "url", "sample") if c in removed.columns]
        for reason in per_reason["reason"]:
            rows = removed.filter(pl.col("reason") == reason).head(samples).select(columns)
            summary["removed_samples"][reason] = rows.to_dicts()
    if "language" in kept.columns and kept.height:
        mix = kept.group_by("language").len().sort(["len", "language"], descending=[True, False])
        summary["languages"] = {lang: int(n) for lang, n in mix.iter_rows()}
    if "host" in kept.columns and kept.height:
        hosts = kept.group_by("host").len().sort(["len", "host"], descending=[True, False])
        summary["hosts"] = {h: int(n) for h, n in hosts.head(top_hosts).iter_rows()}
        summary["distinct_hosts"] = hosts.height
    if "text" in kept.columns and kept.height:
        summary["kept_characters"] = int(kept["text"].str.len_chars().sum())
    return summary
