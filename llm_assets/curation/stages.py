"""The curation stages, one record each, in data-flow order.

`curate` runs them in this order and the Dagster curation assets take their inputs, kind (per WARC file or
global) and code version from them. A record names the stage, the stages it reads, whether it runs one
WARC file at a time, the library call (`run`), the settings section it reads, and the rules and modules whose
source and settings decide its output (its code version). Adding a stage: a library module, one record in
`STAGES`, and its test.

Every `run` takes a `StageRun` and writes the stage's parts (`<lake>/<stage>/kept|removed/<part>.parquet`,
one per WARC file) and returns its figures, with `parts`: per part `(kept, removed, reasons)`, and `input`:
the rows it read.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from llm_assets.curation import stage_checks as checks
from llm_assets.curation.stage_checks import StageCheck
from llm_assets.lake import kept_path, read_part, reason_counts, write_part
from llm_assets.profiles import CurationConfig, HeuristicThresholds


@contextlib.contextmanager
def local_scratch(lake: Path, stage: str) -> Iterator[str]:
    """A scratch folder for a stage's tasks beside its folder in the lake, removed afterwards."""
    Path(lake).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=lake, prefix=f".{stage}-") as scratch:
        yield scratch


@contextlib.contextmanager
def local_working(lake: Path, stage: str) -> Iterator[Path]:
    """The folder a stage that writes files (not parts) writes into: its folder in the lake."""
    folder = Path(lake) / stage
    folder.mkdir(parents=True, exist_ok=True)
    yield folder


def local_fetch(lake: Path, stage: str) -> Path:
    return Path(lake) / stage


@dataclass(frozen=True)
class StageRun:
    """What a stage's call gets: the lake, the parts it covers (one for a per-file stage), the settings, the
    engine (None: this process), the benchmark files, each part's WARC source (raw_crawl), the synthetic
    crawl's labels (None for a real crawl), and three places: `scratch(lake, stage)` for tasks' scratch files,
    `working(lake, stage)` for a stage that writes files (a local folder that becomes the stage's folder) and
    `fetch(lake, stage)` for reading one (a local copy). On a local lake all three are in the lake."""

    lake: Path
    parts: tuple[str, ...]
    cfg: CurationConfig
    engine: Any = None
    benchmark_files: tuple[Path, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)
    labels: Path | None = None
    scratch: Callable[[Path, str], contextlib.AbstractContextManager[str]] = local_scratch
    working: Callable[[Path, str], contextlib.AbstractContextManager[Path]] = local_working
    fetch: Callable[[Path, str], Path] = local_fetch

    def load(self, stage: str):
        return functools.partial(read_part, self.lake, stage)

    def write(self, stage: str):
        return functools.partial(write_part, self.lake, stage)


def _raw_crawl(run: StageRun) -> dict:
    from llm_assets.crawl.raw import crawl_to_parquet

    figures: dict = {"parts": {}, "input": 0, "bytes_read": 0, "skipped": {}, "repaired": {}}
    for part in run.parts:
        stats = crawl_to_parquet(run.sources[part], kept_path(run.lake, "raw_crawl", part),
                                 max_body_bytes=run.cfg.max_body_bytes)
        figures["parts"][part] = (stats["rows"], 0, {})
        figures["input"] += stats["records_seen"]
        figures["bytes_read"] += stats["bytes_read"]
        for side in ("skipped", "repaired"):  # repaired counts truncated_body: bodies cut at max_body_bytes
            for reason, count in stats[side].items():
                figures[side][reason] = figures[side].get(reason, 0) + count
    return figures


def _per_file(call: Callable, source: str, stage: str, run: StageRun) -> dict:
    """Each part's kept rows of `source` through `call(rows, cfg) -> (kept, removed)`, written as `stage`."""
    figures: dict = {"parts": {}, "input": 0}
    for part in run.parts:
        rows = read_part(run.lake, source, part)
        kept, removed = call(rows, run.cfg)
        write_part(run.lake, stage, part, kept, removed)
        figures["parts"][part] = (kept.height, removed.height, reason_counts(removed))
        figures["input"] += rows.height
    return figures


def _extract(run: StageRun) -> dict:
    from llm_assets.curation.extraction import extract_documents

    return _per_file(extract_documents, "raw_crawl", "extracted_documents", run)


def _filter(run: StageRun) -> dict:
    from llm_assets.curation.filtration import filter_documents

    return _per_file(filter_documents, "extracted_documents", "filtered_documents", run)


def _deduplicate(run: StageRun) -> dict:
    from llm_assets.curation import dedup

    with run.scratch(run.lake, "deduplicated_documents") as scratch:
        counts = dedup.deduplicate_parts(list(run.parts), run.load("filtered_documents"),
                                         run.write("deduplicated_documents"), run.cfg, run.engine, scratch)
    return {"parts": counts["parts"], "input_documents": counts["input"]}


def _train_classifier(run: StageRun) -> dict:
    from llm_assets.curation import quality
    from llm_assets.lake import scan_parts

    docs = scan_parts([kept_path(run.lake, "deduplicated_documents", p) for p in run.parts])
    with run.working(run.lake, "quality_classifier") as out:
        return quality.train_quality_classifier(docs, out, run.cfg)


def _filter_quality(run: StageRun) -> dict:
    from llm_assets.curation import quality

    model = quality.trained_model(run.fetch(run.lake, "quality_classifier"))
    with run.scratch(run.lake, "quality_documents") as scratch:
        result = quality.filter_quality_parts(list(run.parts), run.load("deduplicated_documents"),
                                              run.write("quality_documents"), model, run.cfg, scratch, run.engine)
    threshold = result["threshold"]
    return {"parts": result["parts"], "model_threshold": threshold if threshold is not None else "none",
            "quality_model": "used" if model is not None else "skipped (see quality_classifier)"}


def _mix(run: StageRun) -> dict:
    from llm_assets.curation import groundtruth, mixture

    figures = mixture.build_mixture_parts(list(run.parts), run.load("quality_documents"),
                                          run.write("training_mixture"), run.cfg, list(run.benchmark_files),
                                          engine=run.engine)
    figures["benchmark_files"] = [str(p) for p in run.benchmark_files]
    if run.labels is not None:  # the synthetic crawl: every page class's survival against its ground truth
        figures["ground_truth"] = groundtruth.score_against_labels(run.lake, run.labels)
    return figures


def _filters_of(stage: str, cfg: CurationConfig) -> list:
    """The rule objects whose class source and settings decide `stage`'s output, in its order."""
    from llm_assets.curation import filters

    if stage == "extracted_documents":
        return filters.extraction_filters(cfg)
    if stage == "filtered_documents":
        return filters.filtration_filters(cfg)
    if stage == "quality_documents":
        return [*filters.heuristic_filters(HeuristicThresholds.from_config(cfg)), filters.QualityModel(0.0)]
    return []


@dataclass(frozen=True)
class Stage:
    """One curation stage: see the module docstring."""

    name: str
    inputs: tuple[str, ...]
    per_file: bool
    run: Callable[[StageRun], dict]
    description: str
    # the library modules besides its rules whose source decides its output
    modules: tuple[str, ...]
    # the fields of its settings section (`curation`) that it reads
    fields: tuple[str, ...] = ()
    checks: tuple[StageCheck, ...] = ()
    # what the UI tags it with; whether it writes kept/removed parts (a model stage writes files)
    kinds: tuple[str, ...] = ("parquet",)
    writes_parts: bool = True
    # its work runs as tasks on the engine (local or ray), which the asset opens for it
    tasks: bool = False
    section: str = "curation"


STAGES: tuple[Stage, ...] = (
    Stage("raw_crawl", (), True, _raw_crawl, "WARC response records of one file, bodies cut at max_body_bytes.",
          ("llm_assets.crawl.raw", "llm_assets.crawl.warc", "llm_assets.crawl.warc_framing",
           "llm_assets.crawl.warc_records", "llm_assets.crawl.http_payload"), ("max_body_bytes",)),
    Stage("extracted_documents", ("raw_crawl",), True, _extract,
          "Main-content text and title of each HTML page, with language and score; non-HTML, error statuses, "
          "empty pages, extraction failures and other languages removed with reasons.",
          ("llm_assets.curation.extraction",),
          ("extractor", "extraction_timeout_s", "languages", "min_language_score", "off"),
          # a warning, not a gate: a real crawl has WARC files of only images, scripts and redirects
          (StageCheck("has_documents", "Some pages of this WARC file yielded text (a warning: a file of only "
                      "images, scripts or redirects is normal).", checks.has_extracted_text),
           StageCheck("no_empty_text", "No kept document has empty text.", checks.no_empty_text))),
    Stage("filtered_documents", ("extracted_documents",), True, _filter,
          "Documents after PII redaction (presidio, typed placeholders), the URL blocklist, NSFW words and the "
          "toxicity model.", ("llm_assets.curation.filtration", "llm_assets.curation.pii"),
          ("pii_action", "pii_score_threshold", "pii_spacy_model", "pii_ner_entities", "toxicity_threshold",
           "toxic_line_share", "nsfw_min_words", "nsfw_word_share", "off"),
          (StageCheck("no_residual_pii", "presidio finds no PII left in kept text (protects all training).",
                      checks.no_residual_pii, blocking=True),), ("parquet", "presidio")),
    Stage("deduplicated_documents", ("filtered_documents",), False, _deduplicate,
          "Global deduplication over every crawl partition: exact (normalized text hash), near (MinHash LSH "
          "over word n-grams, bands x rows), and lines repeated across a site's pages.",
          ("llm_assets.curation.dedup.rules", "llm_assets.curation.dedup.shuffle"),
          ("minhash_ngram", "minhash_bands", "minhash_rows", "minhash_chunk_words", "boilerplate_min_pages",
           "boilerplate_min_share", "off"),
          (StageCheck("no_exact_duplicates", "No two kept documents have the same normalized text.",
                      checks.no_exact_duplicates, blocking=True),), tasks=True),
    Stage("quality_classifier", ("deduplicated_documents",), False, _train_classifier,
          "A linear quality model on hashed word n-grams: reference pages (encyclopedia, 'similar to "
          "Wikipedia') against other crawl text; validation precision/recall in metadata.",
          ("llm_assets.curation.quality.classifier", "llm_assets.curation.quality.reference"),
          ("quality_max_train_docs", "quality_min_train_docs", "reference_hosts", "reference_files", "off"),
          (StageCheck("reference_text", "The crawl's reference hosts or the reference files gave enough text to "
                      "train the model; a warning when it was skipped.", checks.reference_text),
           StageCheck("validation_f1", "Validation F1 is at least 0.8.", checks.validation_f1)),
          ("scikitlearn",), writes_parts=False),
    Stage("quality_documents", ("deduplicated_documents", "quality_classifier"), False, _filter_quality,
          "Gopher quality and repetition, C4 and FineWeb heuristics, then the quality model's score against a "
          "threshold.", ("llm_assets.curation.quality.filtering",),
          ("heuristic_overrides", "quality_threshold", "quality_max_drop_share", "off"),
          # a warning: the gate before the tokenizer is training_mixture's splits_nonempty, which names the cause
          (StageCheck("has_documents", "Documents survive the quality filters.", checks.has_quality_documents),),
          tasks=True),
    Stage("training_mixture", ("quality_documents",), False, _mix,
          "Decontaminated (n-gram overlap with benchmarks), source-weighted, split into train and validation "
          "by document. With the synthetic crawl, scored against its ground truth.", ("llm_assets.curation.mixture",),
          ("source_weights", "validation_fraction", "decontamination_ngram", "host_sites"),
          (StageCheck("splits_nonempty", "Blocks when train has no text (the tokenizer trains on it); warns when "
                      "the validation split is empty.", checks.splits_nonempty, blocking=True),
           StageCheck("split_by_document", "No document is on both sides.", checks.split_by_document,
                      blocking=True),
           StageCheck("decontaminated", "No kept text shares an n-gram with a benchmark.", checks.decontaminated,
                      blocking=True)), tasks=True),
)
BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}


def stage(name: str) -> Stage:
    """The record of stage `name`; a ValueError naming the stages when there is none."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown curation stage {name!r}; stages are {', '.join(BY_NAME)}") from None


def code_version(name: str, cfg: CurationConfig) -> str:
    """`<stage>-<digest>` of what decides the stage's output: the source of its modules and of its rules'
    classes, the rules' own settings, and the settings fields it reads. Editing a rule, adding one, or
    changing one of its thresholds gives another version; nothing is bumped by hand."""
    import importlib

    record = stage(name)
    digest = hashlib.sha256()
    modules: list[ModuleType] = [importlib.import_module(m) for m in record.modules]
    for module in modules:
        digest.update(_source(module).encode())
    for rule in _filters_of(name, cfg):
        digest.update(inspect.getsource(type(rule)).encode())
        # a file's place is not a setting (the blocklist's entries are, in its pattern): the same version wherever
        # the project is installed
        settings = {k: v for k, v in vars(rule).items() if not isinstance(v, Path)}
        digest.update(json.dumps(settings, sort_keys=True, default=repr).encode())
    digest.update(json.dumps({k: getattr(cfg, k) for k in record.fields}, sort_keys=True, default=repr).encode())
    return f"{name}-{digest.hexdigest()[:12]}"


def _source(module: ModuleType) -> str:
    """A module's source, or a package's modules' sources in name order."""
    path = Path(inspect.getfile(module))
    if path.name != "__init__.py":
        return path.read_text(encoding="utf-8")
    return "".join(p.read_text(encoding="utf-8") for p in sorted(path.parent.rglob("*.py")))
