"""Curation assets: thin wrappers that read the lake, call one library function, write, and report."""

import functools
from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from llm_assets.curation import (
    dedup,
    extraction,
    filtration,
    groundtruth,
    mixture,
    pii,
    quality,
    report,
    stages,
)
from llm_assets.lake import (
    kept_path,
    part_files,
    prune_parts,
    read_part,
    reason_counts,
    scan_parts,
    uri,
    write_part,
)
from llm_assets.profiles import get_profile
from llm_assets.synthetic.crawl_folder import LABELS_FILE
from llm_assets.text import normalized_text

from .common import check, kept_files, metadata_value, scratch_dir, spec, stage_parts, table
from .partitions import warc_files
from .resources import CrawlSource, EngineResource, LakeResource

GROUP = "curation"
OWNERS = ["team:data"]


def reason_table(removed_by_reason: dict[str, int]) -> MetadataValue:
    rows = [{"reason": r, "removed": n} for r, n in removed_by_reason.items()]
    return table(rows, {"reason": "string", "removed": "int"})


def summary_value(name: str, value):
    """A summary figure as metadata: a `{value: count}` dict (languages, hosts) as a table."""
    if isinstance(value, dict) and value and all(isinstance(v, int) for v in value.values()):
        return table([{name: str(k), "count": v} for k, v in value.items()], {name: "string", "count": "int"})
    return metadata_value(value)


def write_stage(lake: LakeResource, stage: str, part: str, kept: pl.DataFrame, removed: pl.DataFrame,
                extra: dict | None = None) -> dict:
    """Write kept and removed rows of one stage (and part) to the lake; return its metadata."""
    write_part(lake.path, stage, part, kept, removed)
    return stage_metadata(lake, stage, kept, removed, extra)


def stage_metadata(lake: LakeResource, stage: str, kept: pl.DataFrame | pl.LazyFrame,
                   removed: pl.DataFrame | pl.LazyFrame, extra: dict | None = None) -> dict:
    """Counts, reasons and samples of a stage; `extra` should name the `curation_settings` that ran."""
    summary = report.summarize(stage, kept, removed)
    meta = {
        "path": MetadataValue.path(lake.url(stage)),
        "dagster/row_count": summary["kept"],
        "removed": summary["removed"],
        "removed_by_reason": reason_table(summary["removed_by_reason"]),
    }
    meta.update({f"summary/{k}": summary_value(k, v) for k, v in summary.items()
                 if k not in ("kept", "removed", "removed_by_reason")})
    meta.update({k: metadata_value(v) for k, v in (extra or {}).items()})
    return meta


def read_kept(lake: LakeResource, stage: str, parts: list[str]) -> pl.DataFrame:
    return pl.read_parquet([uri(f) for f in kept_files(lake, stage, parts)])


def run_global_stage(lake: LakeResource, stage: str, parts: list[str], step) -> dict:
    """Call `step(write)` with a writer of this stage's parts, drop part files of earlier runs that
    `parts` does not name, and return the stage metadata (plus the dict `step` may return)."""
    extra = step(functools.partial(write_part, lake.path, stage)) or {}
    prune_parts(lake.path, stage, parts)
    return stage_metadata(lake, stage, scan_parts(part_files(lake.path, stage)),
                          scan_parts(part_files(lake.path, stage, "removed")), extra)


def loader(lake: LakeResource, stage: str):
    return functools.partial(read_part, lake.path, stage)


def from_table(stage: str) -> dict:
    """The asset arguments that the stage table gives: inputs, description, and a code version that follows
    the stage's source, rules and the settings it reads (LLM_ASSETS_CONFIG included)."""
    record = stages.stage(stage)
    return {"deps": record.inputs, "description": record.description,
            "code_version": stages.code_version(stage, get_profile().curation)}


def settings(cfg) -> dict:
    """Metadata naming the set of curation values a stage ran with ("published", "synthetic-web", ...)."""
    return {"curation_settings": cfg.settings}


@asset(
    partitions_def=warc_files, group_name=GROUP, owners=OWNERS, kinds={"parquet"}, **from_table("extracted_documents"),
    # a warning, not a gate: a real crawl has WARC files of only images, scripts and redirects; the crawl-wide
    # gate is training_mixture's train_nonempty
    check_specs=[spec("extracted_documents", "has_documents", "Some pages of this WARC file yielded text "
                      "(a warning: a file of only images, scripts or redirects is normal)."),
                 spec("extracted_documents", "no_empty_text", "No kept document has empty text.")],
)
def extracted_documents(context: AssetExecutionContext, lake: LakeResource, crawl: CrawlSource):
    part = context.partition_key
    raw = pl.read_parquet(uri(kept_path(lake.path, "raw_crawl", part)))
    cfg = crawl.curation()
    kept, removed = extraction.extract_documents(raw, cfg)
    yield MaterializeResult(metadata=write_stage(lake, "extracted_documents", part, kept, removed, settings(cfg)))
    reasons = reason_counts(removed)
    yield check("has_documents", kept.height > 0, blocking_severity=False, per_partition=True,
                documents=kept.height, records=raw.height, removed_by_reason=reasons,
                description=None if kept.height else f"extracted_documents of {part} has no text page: "
                f"its {raw.height} records are {', '.join(reasons) or 'none'}")
    empty = kept.filter(pl.col("text").str.strip_chars().str.len_chars() == 0).height
    yield check("no_empty_text", empty == 0, blocking_severity=False, per_partition=True, empty=empty)


@asset(
    partitions_def=warc_files, group_name=GROUP, owners=OWNERS, kinds={"parquet", "presidio"},
    **from_table("filtered_documents"),
    check_specs=[spec("filtered_documents", "no_residual_pii",
                      "presidio finds no PII left in kept text (protects all training).", blocking=True)],
)
def filtered_documents(context: AssetExecutionContext, lake: LakeResource, crawl: CrawlSource):
    part = context.partition_key
    docs = read_kept(lake, "extracted_documents", [part])
    cfg = crawl.curation()
    kept, removed = filtration.filter_documents(docs, cfg)
    yield MaterializeResult(metadata=write_stage(lake, "filtered_documents", part, kept, removed, settings(cfg)))
    texts = kept["text"].to_list()
    pii_settings = filtration.pii_settings(cfg)  # what redaction used
    residual = [text[f.start:f.end] for text, found in zip(texts, pii.find_pii(texts, **pii_settings), strict=True)
                for f in found]
    yield check("no_residual_pii", not residual, per_partition=True, findings=len(residual), examples=residual[:5])


@asset(
    group_name=GROUP, owners=OWNERS, kinds={"parquet"}, **from_table("deduplicated_documents"),
    check_specs=[spec("deduplicated_documents", "no_exact_duplicates",
                      "No two kept documents have the same normalized text.", blocking=True)],
)
def deduplicated_documents(lake: LakeResource, crawl: CrawlSource, engine: EngineResource):
    parts = list(crawl.resolve())
    kept_files(lake, "filtered_documents", parts)
    cfg = crawl.curation()

    def step(write):
        with engine.open() as running, scratch_dir(lake, "deduplicated_documents", running) as scratch:
            counts = dedup.deduplicate_parts(parts, loader(lake, "filtered_documents"), write, cfg, running, scratch)
        return {"input_documents": counts["input"], "engine": running.name, **settings(cfg)}

    meta = run_global_stage(lake, "deduplicated_documents", parts, step)
    yield MaterializeResult(metadata=meta)
    hashes = scan_parts(part_files(lake.path, "deduplicated_documents")).select(
        normalized_text(pl.col("text")).hash().alias("h")).collect()["h"]
    dupes = len(hashes) - hashes.n_unique()
    yield check("no_exact_duplicates", dupes == 0, duplicates=dupes)


@asset(
    group_name=GROUP, owners=OWNERS, kinds={"scikitlearn"}, **from_table("quality_classifier"),
    check_specs=[spec("quality_classifier", "reference_text", "The crawl's reference hosts or the reference "
                      "files gave enough text to train the model; a warning when it was skipped."),
                 spec("quality_classifier", "validation_f1", "Validation F1 is at least 0.8.")],
)
def quality_classifier(lake: LakeResource, crawl: CrawlSource):
    docs = scan_parts(kept_files(lake, "deduplicated_documents", stage_parts(lake, "deduplicated_documents")))
    cfg = crawl.curation()
    with lake.working("quality_classifier") as out:
        metrics = quality.train_quality_classifier(docs, out, cfg)
    shown = {k: metadata_value(v) for k, v in metrics.items() if v is not None and k not in ("skipped", "skip_reason")}
    if metrics["skipped"]:  # `skipped` holds the sentence a user reads (the build summary prints it)
        shown["skipped"] = (f"quality model skipped: {metrics['skip_reason']}; quality_documents keeps what the "
                            "heuristics pass")
    yield MaterializeResult(metadata={"path": MetadataValue.path(lake.url("quality_classifier")), **settings(cfg),
                                      **shown})
    if metrics["skipped"]:
        yield check("reference_text", False, blocking_severity=False, description=shown["skipped"],
                    skipped=metrics["skip_reason"])
        yield check("validation_f1", True, blocking_severity=False, skipped="no model was trained")
        return
    yield check("reference_text", True, blocking_severity=False, reference_documents=metrics["reference_documents"],
                reference_from_files=metrics["reference_from_files"])
    f1 = metrics.get("f1")
    yield check("validation_f1", f1 is not None and f1 >= 0.8, blocking_severity=False, f1=f1,
                description=None if f1 is not None else "quality_classifier has no validation documents to "
                "measure F1 on")


@asset(
    group_name=GROUP, owners=OWNERS, kinds={"parquet"}, **from_table("quality_documents"),
    # a warning: the gate before the tokenizer is training_mixture's train_nonempty, which names the cause
    check_specs=[spec("quality_documents", "has_documents", "Documents survive the quality filters.")],
)
def quality_documents(lake: LakeResource, crawl: CrawlSource, engine: EngineResource):
    parts = stage_parts(lake, "deduplicated_documents")
    model = quality.trained_model(lake.fetch("quality_classifier"))
    cfg = crawl.curation()

    def step(write):
        with engine.open() as running, scratch_dir(lake, "quality_documents", running) as scratch:
            threshold = quality.filter_quality_parts(parts, loader(lake, "deduplicated_documents"), write,
                                                     model, cfg, scratch, running)["threshold"]
        return {"model_threshold": threshold if threshold is not None else "none", "engine": running.name,
                "quality_model": "used" if model is not None else "skipped (see quality_classifier)",
                **settings(cfg)}

    meta = run_global_stage(lake, "quality_documents", parts, step)
    yield MaterializeResult(metadata=meta)
    kept = meta["dagster/row_count"]
    yield check("has_documents", kept > 0, blocking_severity=False, documents=kept,
                description=None if kept else "quality_documents kept 0 documents: every one was removed "
                "before or by the quality filters (see removed_by_reason)")


@asset(
    group_name=GROUP, owners=OWNERS, kinds={"parquet"}, **from_table("training_mixture"),
    check_specs=[
        spec("training_mixture", "splits_nonempty", "Blocks when train has no text (the tokenizer trains on "
             "it); warns when the validation split is empty.", blocking=True),
        spec("training_mixture", "split_by_document", "No document is on both sides.", blocking=True),
        spec("training_mixture", "decontaminated", "No kept text shares an n-gram with a benchmark.",
             blocking=True),
    ],
)
def training_mixture(lake: LakeResource, crawl: CrawlSource, engine: EngineResource):
    parts = stage_parts(lake, "quality_documents")
    cfg = crawl.curation()
    benchmarks = crawl.benchmarks()

    def step(write):
        with engine.open() as running:
            counts = mixture.build_mixture_parts(parts, loader(lake, "quality_documents"), write, cfg, benchmarks,
                                                 engine=running)
        return {**{k: v for k, v in counts.items() if k != "parts"}, "engine": running.name, **settings(cfg)}

    meta = run_global_stage(lake, "training_mixture", parts, step)
    meta["benchmark_files"] = metadata_value([str(p) for p in benchmarks])
    synthetic = crawl.synthetic_folder()
    if synthetic is not None:
        scores = groundtruth.score_against_labels(lake.path, Path(synthetic) / LABELS_FILE)
        meta["ground_truth"] = metadata_value(scores)
    yield MaterializeResult(metadata=meta)
    files = part_files(lake.path, "training_mixture")
    documents = report.split_documents(files)
    train, validation = documents["train"], documents["validation"]
    if not train:
        yield check("splits_nonempty", False, train_documents=train, validation_documents=validation,
                    description=f"training_mixture has 0 train documents: nothing to train the tokenizer on "
                    f"({validation} validation; see the removed_by_reason of the curation stages)")
    else:
        yield check("splits_nonempty", validation > 0, blocking_severity=False, train_documents=train,
                    validation_documents=validation, description=None if validation else
                    f"training_mixture has {train} train documents and 0 validation documents: validation loss "
                    "cannot be measured")
    yield check("split_by_document", documents["on_both_sides"] == 0, documents_on_both_sides=documents["on_both_sides"])
    leaked = mixture.contaminated_rows(files, benchmarks, cfg.decontamination_ngram)
    yield check("decontaminated", leaked == 0, contaminated_rows=leaked)


PARTITIONED = [extracted_documents, filtered_documents]
GLOBAL = [deduplicated_documents, quality_classifier, quality_documents, training_mixture]
