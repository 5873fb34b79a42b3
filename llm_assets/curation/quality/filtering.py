"""The quality stage: the heuristic families first, then the classifier's score against a threshold.

The threshold depends on every document's score (at most `cfg.quality_max_drop_share` may fall under it), so
over parts the stage scores every part before it splits any.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl

from llm_assets.lake import PartLoader, PartWriter, removed_frame
from llm_assets.profiles import CurationConfig

from .classifier import quality_scores
from .heuristics import HeuristicThresholds, apply_heuristics

log = logging.getLogger(__name__)

STAGE = "quality_documents"


def filter_quality(docs: pl.DataFrame, model_path: str | Path | None, cfg: CurationConfig
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Heuristic families first, then the model's `quality_score` against `effective_threshold`.

    Kept rows: the input columns with `text` after C4's line clean-up, plus `quality_score` (null when
    `model_path` is None: the model was skipped and only the heuristics remove documents).
    Removed rows: `warc_record_id, url, stage, reason, sample` (+ `quality_score` for model drops).
    """
    passing, heuristic_removed = score_quality(docs, model_path, cfg)
    threshold = (effective_threshold(passing["quality_score"].to_numpy(), cfg) if model_path is not None
                 else None)
    kept, removed = split_by_score(passing, heuristic_removed, threshold)
    log.info("quality: kept %d, removed %d by heuristics and %d by the model (score < %s)", kept.height,
             heuristic_removed.height, removed.height - heuristic_removed.height,
             "no model" if threshold is None else f"{threshold:.4f}")
    return kept, removed


def filter_quality_parts(parts: list[str], load: PartLoader, write: PartWriter, model_path: str | Path | None,
                         cfg: CurationConfig, scratch: str | Path) -> float | None:
    """`filter_quality` over documents spread over `parts`, one part's text in memory at a time.

    `load(part)` returns a part's documents and `write(part, kept, removed)` takes its results. The model
    threshold depends on every score, so scored parts wait in `scratch` (a folder this function may fill
    and empty) until all are scored. Returns the threshold used (None when `model_path` is None: the model
    was skipped and every document past the heuristics is kept).
    """
    scratch = Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    scores = []
    for number, part in enumerate(parts, 1):
        passing, heuristic_removed = score_quality(load(part), model_path, cfg)
        passing.write_parquet(scratch / f"{number}.passing.parquet")
        heuristic_removed.write_parquet(scratch / f"{number}.removed.parquet")
        scores.append(passing["quality_score"].to_numpy())
        log.info("quality pass 1/2: part %d/%d (%s), %d past the heuristics", number, len(parts), part,
                 passing.height)
    threshold = None
    if model_path is not None:
        threshold = effective_threshold(np.concatenate(scores) if scores else np.zeros(0), cfg)
        log.info("quality: model threshold %.4f", threshold)
    else:
        log.info("quality: no model (skipped); every document past the heuristics is kept")
    for number, part in enumerate(parts, 1):
        passing = pl.read_parquet(scratch / f"{number}.passing.parquet")
        heuristic_removed = pl.read_parquet(scratch / f"{number}.removed.parquet")
        write(part, *split_by_score(passing, heuristic_removed, threshold))
        (scratch / f"{number}.passing.parquet").unlink()
        (scratch / f"{number}.removed.parquet").unlink()
    return threshold


def score_quality(docs: pl.DataFrame, model_path: str | Path | None, cfg: CurationConfig
                  ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`(passing, heuristic_removed)`: documents past the heuristic families, with `text` after C4's line
    clean-up and the model's `quality_score` (null when `model_path` is None: the model was skipped); and
    the removed rows of those the heuristics dropped."""
    thresholds = HeuristicThresholds.from_config(cfg)
    reasons, cleaned = apply_heuristics(docs["text"].fill_null("").to_list(), thresholds)
    docs = docs.with_columns(pl.Series("_reason", reasons, dtype=pl.Utf8),
                             pl.Series("_cleaned", cleaned, dtype=pl.Utf8))
    heuristic_drops = docs.filter(pl.col("_reason").is_not_null())
    passing = docs.filter(pl.col("_reason").is_null()).with_columns(pl.col("_cleaned").alias("text"))
    scores = quality_scores(passing["text"].to_list(), model_path) if model_path is not None else None
    passing = passing.drop("_reason", "_cleaned").with_columns(pl.Series("quality_score", scores, dtype=pl.Float64)
                                                               if scores is not None
                                                               else pl.lit(None, pl.Float64).alias("quality_score"))
    return passing, removed_frame(heuristic_drops, STAGE, pl.col("_reason"))


def split_by_score(passing: pl.DataFrame, heuristic_removed: pl.DataFrame, threshold: float | None
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`(kept, removed)`: scored documents at or over `threshold` kept; the rest join the heuristic drops.
    With no threshold (the model was skipped) every scored document is kept."""
    if threshold is None:
        return passing, heuristic_removed
    model_drops = passing.filter(pl.col("quality_score") < threshold)
    removed = pl.concat([heuristic_removed, removed_frame(model_drops, STAGE, "quality_model").with_columns(
        model_drops["quality_score"])], how="diagonal_relaxed")
    return passing.filter(pl.col("quality_score") >= threshold), removed


def effective_threshold(scores: np.ndarray, cfg: CurationConfig) -> float:
    """`cfg.quality_threshold`, lowered so that at most `cfg.quality_max_drop_share` of `scores` fall
    under it (a model that is sure of itself would otherwise drop every non-reference page)."""
    threshold = float(cfg.quality_threshold)
    share = float(getattr(cfg, "quality_max_drop_share", 1.0))
    if len(scores) and share < 1.0:
        threshold = min(threshold, float(np.quantile(scores, max(share, 0.0), method="lower")))
    return threshold
