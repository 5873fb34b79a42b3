"""The quality stage: the heuristic families first, then the classifier's score against a threshold.

The threshold depends on every document's score (at most `cfg.quality_max_drop_share` may fall under it), so
over parts the stage scores every part before it splits any.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from llm_assets.curation.filters import C4Rules, QualityModel, heuristic_filters, judge, split
from llm_assets.engine import LocalEngine
from llm_assets.lake import (
    PartLoader,
    PartWriter,
    lake_path,
    reason_counts,
    uri,
    write_parquet,
)
from llm_assets.profiles import CurationConfig, HeuristicThresholds

from .classifier import quality_scores

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


_SCORE_BINS = np.linspace(0.0, 1.0, 2**16 + 1)  # the threshold search's histogram of model scores


@dataclass(frozen=True)
class _QualityJob:
    """What every quality task needs, as plain values (a task may run in another process or host)."""

    parts: tuple[str, ...]
    load: PartLoader
    write: PartWriter
    model_path: str | None
    cfg: CurationConfig
    scratch: str

    def file(self, number: int, side: str) -> Path:
        """A part's scratch file: a local path, or a URL when the scratch is in the object store."""
        return lake_path(self.scratch) / f"{number}.{side}.parquet"

    def read(self, number: int, side: str, columns: list[str] | None = None) -> pl.DataFrame:
        return pl.read_parquet(uri(self.file(number, side)), columns=columns)

    def scores(self, number: int) -> np.ndarray:
        return self.read(number, "passing", ["quality_score"])["quality_score"].to_numpy()


def _score_bin(scores: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(_SCORE_BINS, scores, side="right") - 1, 0, len(_SCORE_BINS) - 2)


def _score_task(number: int, job: _QualityJob) -> np.ndarray:
    """Pass 1 of a part: heuristics and model scores, kept in the scratch folder; returns the histogram of
    its scores (a few hundred KB whatever the part's size)."""
    passing, heuristic_removed = score_quality(job.load(job.parts[number]), job.model_path, job.cfg)
    write_parquet(passing, job.file(number, "passing"))
    write_parquet(heuristic_removed, job.file(number, "removed"))
    log.info("quality pass 1/2: part %d/%d (%s), %d past the heuristics", number + 1, len(job.parts),
             job.parts[number], passing.height)
    if job.model_path is None:
        return np.zeros(len(_SCORE_BINS) - 1, np.int64)
    return np.bincount(_score_bin(job.scores(number)), minlength=len(_SCORE_BINS) - 1)


def _scores_in_bin_task(number: int, job: _QualityJob, score_bin: int) -> np.ndarray:
    scores = job.scores(number)
    return scores[_score_bin(scores) == score_bin]


def _split_task(number: int, job: _QualityJob, threshold: float | None) -> tuple[int, int, dict]:
    """Pass 2 of a part: split by the threshold and write; returns (kept, removed, removed by reason)."""
    passing = job.read(number, "passing")
    kept, removed = split_by_score(passing, job.read(number, "removed"), threshold)
    job.write(job.parts[number], kept, removed)
    job.file(number, "passing").unlink()
    job.file(number, "removed").unlink()
    reasons = reason_counts(removed)
    return kept.height, removed.height, reasons


def _joined(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.concatenate([a, b])


def _lower_quantile(counts: np.ndarray | None, share: float, engine, job: _QualityJob) -> float | None:
    """`np.quantile(all scores, share, method="lower")` without gathering the scores: the histogram of all
    scores finds the bin of the wanted rank, and only that bin's scores are fetched. None when there are no
    scores."""
    total = int(counts.sum()) if counts is not None else 0
    if total == 0:
        return None
    rank = int(np.floor(np.float64(share) * (total - 1)))  # numpy's "lower" index
    cumulative = np.cumsum(counts)
    score_bin = int(np.searchsorted(cumulative, rank, side="right"))
    below = int(cumulative[score_bin - 1]) if score_bin else 0
    in_bin = np.sort(engine.fold(_scores_in_bin_task, list(range(len(job.parts))), _joined, "quality threshold",
                                 job=job, score_bin=score_bin))
    return float(in_bin[rank - below])


def filter_quality_parts(parts: list[str], load: PartLoader, write: PartWriter, model_path: str | Path | None,
                         cfg: CurationConfig, scratch: str | Path, engine=None) -> dict:
    """`filter_quality` over documents spread over `parts`, one part's text in memory at a time.

    `load(part)` returns a part's documents and `write(part, kept, removed)` takes its results (picklable
    for the ray engine). Each part is scored by a task on `engine` (default: in this process) into
    `scratch` (a folder this function may fill and empty, readable by every task). The model threshold
    depends on every score: the tasks return histograms of their scores, and the exact quantile is read
    from them. Returns `threshold` (None when `model_path` is None: the model was skipped and every
    document past the heuristics is kept) and per part `(kept, removed, reasons)`.
    """
    engine = engine or LocalEngine()
    job = _QualityJob(tuple(parts), load, write, None if model_path is None else str(model_path), cfg, str(scratch))
    numbers = list(range(len(parts)))
    # summed as the tasks finish: the driver holds one histogram, not one per part
    counts = engine.fold(_score_task, numbers, np.add, "quality pass 1/2 (heuristics, model)", job=job)
    threshold = None
    if model_path is not None:
        threshold = float(cfg.quality_threshold)
        share = float(cfg.quality_max_drop_share)
        if share < 1.0:
            quantile = _lower_quantile(counts, max(share, 0.0), engine, job)
            threshold = threshold if quantile is None else min(threshold, quantile)
        log.info("quality: model threshold %.4f", threshold)
    else:
        log.info("quality: no model (skipped); every document past the heuristics is kept")
    written = engine.map(_split_task, numbers, "quality pass 2/2 (split)", job=job, threshold=threshold)
    return {"threshold": threshold, "parts": dict(zip(parts, written, strict=True))}


def score_quality(docs: pl.DataFrame, model_path: str | Path | None, cfg: CurationConfig
                  ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`(passing, heuristic_removed)`: documents past the heuristic families, with `text` after C4's line
    clean-up and the model's `quality_score` (null when `model_path` is None: the model was skipped); and
    the removed rows of those the heuristics dropped."""
    families = heuristic_filters(HeuristicThresholds.from_config(cfg), cfg.off)
    passing, heuristic_removed = split(docs, judge(docs, families), STAGE)
    for c4 in (f for f in families if isinstance(f, C4Rules)):  # its line clean-up, unless it is off
        passing = passing.with_columns(c4.cleaned(passing))
    scores = quality_scores(passing["text"].to_list(), model_path) if model_path is not None else None
    return passing.with_columns(pl.Series("quality_score", scores, dtype=pl.Float64) if scores is not None
                                else pl.lit(None, pl.Float64).alias("quality_score")), heuristic_removed


def split_by_score(passing: pl.DataFrame, heuristic_removed: pl.DataFrame, threshold: float | None
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`(kept, removed)`: scored documents at or over `threshold` kept; the rest join the heuristic drops.
    With no threshold (the model was skipped) every scored document is kept."""
    if threshold is None:
        return passing, heuristic_removed
    kept, model_removed = split(passing, QualityModel(threshold).reasons(passing), STAGE)
    model_drops = passing.filter(pl.col("quality_score") < threshold)
    removed = pl.concat([heuristic_removed, model_removed.with_columns(model_drops["quality_score"])],
                        how="diagonal_relaxed")
    return kept, removed


def effective_threshold(scores: np.ndarray, cfg: CurationConfig) -> float:
    """`cfg.quality_threshold`, lowered so that at most `cfg.quality_max_drop_share` of `scores` fall
    under it (a model that is sure of itself would otherwise drop every non-reference page)."""
    threshold = float(cfg.quality_threshold)
    share = float(cfg.quality_max_drop_share)
    if len(scores) and share < 1.0:
        threshold = min(threshold, float(np.quantile(scores, max(share, 0.0), method="lower")))
    return threshold
