"""The whole curation chain without Dagster: WARC files in, a training mixture out, every stage in the lake.

Per WARC file: raw_crawl -> extracted_documents -> filtered_documents. Then the global stages
(deduplicated_documents -> quality_classifier -> quality_documents -> training_mixture), whose decisions
span every file but which read one file's documents at a time and hold only hashes, signatures and
scores across files, so memory is bounded by a shard, not by the crawl. Every stage writes
`out_dir/<asset_key>/kept/<part>.parquet` and `.../removed/<part>.parquet`, one part per WARC file.
The Dagster assets call the same library functions one by one.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import polars as pl

from llm_assets.crawl import redact_url, resolve_sources
from llm_assets.curation import mixture, quality
from llm_assets.curation.stages import STAGES as RECORDS
from llm_assets.curation.stages import StageRun
from llm_assets.curation.stages import stage as stage_record
from llm_assets.engine import open_engine
from llm_assets.lake import (
    kept_path,
    lake_lock,
    prune_parts,
    reason_counts,
    scan_parts,
)
from llm_assets.profiles import CurationConfig, Profile, curation_for, get_profile

log = logging.getLogger(__name__)

# every curation stage and the stages it reads, in data-flow order (the records are in `stages`)
STAGE_INPUTS: dict[str, tuple[str, ...]] = {record.name: record.inputs for record in RECORDS}
STAGES = tuple(STAGE_INPUTS)
PER_FILE_STAGES = tuple(record.name for record in RECORDS if record.per_file)  # a Dagster partition each
GLOBAL_STAGES = tuple(record.name for record in RECORDS if not record.per_file)  # decisions over every file


class _StageTally:
    """Counts, reasons and seconds of one stage, summed over its parts."""

    def __init__(self) -> None:
        self.input = self.kept = self.removed = 0
        self.seconds = 0.0
        self.reasons: Counter = Counter()

    def add(self, rows_in: int, kept: pl.DataFrame, removed: pl.DataFrame, seconds: float) -> None:
        reasons = reason_counts(removed)
        self.add_counts(rows_in, kept.height, removed.height, reasons, seconds)

    def add_counts(self, rows_in: int, kept: int, removed: int, reasons: dict, seconds: float) -> None:
        self.input += rows_in
        self.kept += kept
        self.removed += removed
        self.seconds += seconds
        self.reasons.update(reasons)

    def counts(self) -> tuple:
        return self.input, self.kept, self.removed, dict(self.reasons), self.seconds

    def summary(self) -> dict:
        return {"input": self.input, "kept": self.kept, "removed": self.removed,
                "removed_by_reason": dict(self.reasons.most_common()), "seconds": round(self.seconds, 3),
                "documents_per_s": round(self.input / self.seconds, 1) if self.seconds else None}


def curate_file(part: str, uri: str, out_dir: str | os.PathLike, cfg: CurationConfig) -> dict:
    """The per-file stages (raw_crawl -> extracted_documents -> filtered_documents) for one WARC file;
    returns stage counts. Runs in a worker process when `cfg.workers > 1`, so it takes and returns only
    plain values."""
    run = StageRun(Path(out_dir), (part,), cfg, sources={part: uri})
    tallies = {stage: _StageTally() for stage in PER_FILE_STAGES}
    raw: dict = {}
    for stage in PER_FILE_STAGES:
        t0 = time.perf_counter()
        figures = stage_record(stage).run(run)
        raw = raw or figures
        tallies[stage].add_counts(figures["input"], *figures["parts"][part], time.perf_counter() - t0)
    return {"stages": {k: v.counts() for k, v in tallies.items()}, "bytes_read": raw["bytes_read"],
            "skipped": dict(raw["skipped"]), "repaired": dict(raw["repaired"])}


def _finish(tally: _StageTally, rows_in: int, started: float, written: dict | None = None) -> None:
    """Set a global stage's counts from its parts' `written` counts (the last write of each part counts),
    its input count and its wall time, once all its parts are written."""
    for kept, removed, reasons in (written or {}).values():
        tally.add_counts(0, kept, removed, reasons, 0.0)
    tally.input = rows_in
    tally.seconds = time.perf_counter() - started


def check_inputs(benchmark_files: list[str | os.PathLike] | tuple, cfg: CurationConfig) -> dict:
    """Read every benchmark and reference file once before any curation runs, so a missing, unreadable or
    malformed one fails in seconds, naming the file, instead of after the whole crawl was curated.
    Returns `{"benchmark_items": n, "reference_texts": n}`."""
    items = 0
    for path in benchmark_files:
        try:
            items += len(mixture.read_benchmark_items([path]))
        except UnicodeDecodeError as exc:
            raise ValueError(f"benchmark file {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                             "give JSONL or MMLU-style CSV") from None
    references = 0
    if cfg.reference_files:
        try:
            references = quality.read_reference_texts(cfg.reference_files).height
        except UnicodeDecodeError as exc:
            raise ValueError(f"a reference file of {list(cfg.reference_files)} is not UTF-8 text "
                             f"({exc.reason} at byte {exc.start})") from None
    return {"benchmark_items": items, "reference_texts": references}


def curate(warc_paths: list[str], out_dir: str | os.PathLike, profile: str | Profile | None = None,
           benchmark_files: list[str | os.PathLike] | tuple = (), workers: int = 1,
           reference_files: list[str | os.PathLike] | tuple = (), synthetic: bool = False,
           engine: str | None = None) -> dict:
    """Run every curation stage over `warc_paths` into the lake at `out_dir`; return per-stage summaries.

    `profile` is a profile name or object (default: `$LLM_ASSETS_PROFILE`, else `default`);
    `benchmark_files` are JSONL files (`query`, `choices`) to decontaminate against; `reference_files`
    add to `CurationConfig.reference_files` (the quality model's reference text). `synthetic` says
    whether the crawl is the synthetic one (its tuned settings then apply, see `profiles.SYNTHETIC_WEB`);
    the caller knows, this package does not look into crawls for it. `workers` > 1 runs the per-file stages
    in that many spawned processes (each loads its own models, so it only pays off with many files and
    free cores; callers need an `if __name__ == "__main__":` guard). `engine` (`local`, `ray`; default
`$LLM_ASSETS_ENGINE`, else `local`) says where the work runs: with `ray` every file's stages and every
global stage's tasks are Ray tasks (see `llm_assets.engine`), and `workers` is the cluster's.

    The run holds `lake_lock(out_dir)`: a second run into the same folder is refused (`LakeBusyError`)
    instead of overwriting and pruning this one's parts. Benchmark and reference files are read first
    (`check_inputs`). No source URL's credentials reach the log or the summary.
    """
    with lake_lock(out_dir, "curate"), open_engine(engine) as running:
        return _curate(warc_paths, out_dir, profile, benchmark_files, workers, reference_files, synthetic,
                       running)


def _curation_config(profile: str | Profile | None, synthetic: bool, reference_files) -> CurationConfig:
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    cfg = curation_for(prof, synthetic)
    if reference_files:
        cfg = dataclasses.replace(cfg, reference_files=(*cfg.reference_files, *map(str, reference_files)))
    return cfg


def _curate_file_task(source: tuple[str, str], out: str, cfg: CurationConfig) -> dict:
    return curate_file(*source, out, cfg)


def _curate_files(sources: dict[str, str], out: Path, cfg: CurationConfig, workers: int,
                  tallies: dict[str, _StageTally], engine) -> dict:
    """The per-file stages of every source, as tasks of the ray engine or in `workers` local processes;
    adds to `tallies`, returns the raw_crawl figures."""
    raw_stats: dict = {"files": len(sources), "bytes_read": 0, "skipped": Counter(), "repaired": Counter()}

    def collect(result: dict) -> None:
        for stage, counts in result["stages"].items():
            tallies[stage].add_counts(*counts)
        raw_stats["bytes_read"] += result["bytes_read"]
        raw_stats["skipped"].update(result["skipped"])
        raw_stats["repaired"].update(result["repaired"])

    if engine.name == "ray":
        for result in engine.map(_curate_file_task, list(sources.items()), "curate: files", out=str(out), cfg=cfg):
            collect(result)
        return raw_stats
    if workers == 1:
        for number, (part, uri) in enumerate(sources.items(), 1):
            log.info("curate: file %d/%d %s", number, len(sources), redact_url(uri))
            collect(curate_file(part, uri, out, cfg))
        return raw_stats
    # spawn, not fork: the parent holds polars and model threads that a fork would copy half-locked
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(curate_file, part, uri, str(out), cfg): uri for part, uri in sources.items()}
        for number, future in enumerate(as_completed(futures), 1):
            collect(future.result())
            log.info("curate: file %d/%d done %s", number, len(sources), redact_url(futures[future]))
    return raw_stats


def _curate(warc_paths, out_dir, profile, benchmark_files, workers, reference_files, synthetic, engine) -> dict:
    cfg = _curation_config(profile, synthetic, reference_files)
    log.info("curate: %s curation settings", cfg.settings)
    out = Path(out_dir)
    sources = resolve_sources(list(warc_paths))
    inputs = check_inputs(benchmark_files, cfg)
    tallies = {stage: _StageTally() for stage in STAGES}
    started = time.perf_counter()
    workers = engine.workers if engine.name == "ray" else max(1, min(workers, len(sources)))
    raw_stats = _curate_files(sources, out, cfg, workers, tallies, engine)
    # the per-file stages ran in parallel: their summed seconds overstate the wall time they took
    files_wall = time.perf_counter() - started

    parts = list(sources)
    run = StageRun(out, tuple(parts), cfg, engine, tuple(Path(p) for p in benchmark_files))
    figures = {}
    for stage in GLOBAL_STAGES:
        t0 = time.perf_counter()
        figures[stage] = stage_record(stage).run(run)
        # a stage's input count is what its first input stage kept
        _finish(tallies[stage], tallies[STAGE_INPUTS[stage][0]].kept, t0, figures[stage].pop("parts", None))
    for stage in GLOBAL_STAGES:
        prune_parts(out, stage, parts)

    summaries: dict = {"curation_settings": cfg.settings, "inputs": inputs, "engine": engine.name}
    summaries.update({stage: tally.summary() for stage, tally in tallies.items()})
    summaries["raw_crawl"].update(files=raw_stats["files"], bytes_read=raw_stats["bytes_read"],
                                  skipped=dict(raw_stats["skipped"]), repaired=dict(raw_stats["repaired"]))
    summaries["per_file_stages"] = {"workers": workers, "wall_seconds": round(files_wall, 3)}
    summaries["quality_classifier"] = {**summaries["quality_classifier"], **figures["quality_classifier"]}
    return _add_mixture_and_totals(summaries, out, parts, figures["training_mixture"], started)


def _add_mixture_and_totals(summaries: dict, out: Path, parts: list[str], split_counts: dict, started: float) -> dict:
    """Add the mixture's splits and sites and the whole run's time to `summaries`."""
    mixed = scan_parts([kept_path(out, "training_mixture", p) for p in parts]).select("split", "site").collect()
    splits = dict(mixed.group_by("split").len().iter_rows()) if mixed.height else {}
    summaries["training_mixture"].update(**split_counts, splits=splits, sites=dict(
        mixed.group_by("site").len().sort("len", descending=True).iter_rows()) if mixed.height else {})
    total = time.perf_counter() - started
    summaries["total"] = {"seconds": round(total, 3), "documents": summaries["raw_crawl"]["kept"],
                          "documents_per_s": round(summaries["raw_crawl"]["kept"] / total, 1)}
    log.info("curate: %d records -> %d mixture rows in %.1fs", summaries["raw_crawl"]["kept"],
             mixed.height, total)
    return summaries
