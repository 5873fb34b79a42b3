"""Curation assets, made from the stage table (`curation.stages`): one asset per record, which runs the
record's library call on the lake and reports its figures and its checks. Only what is Dagster's is here:
partitions, resources, metadata shapes and check results."""

import contextlib

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from llm_assets.curation import report, stages
from llm_assets.curation.stage_checks import skipped_sentence
from llm_assets.lake import kept_path, prune_parts, removed_path, scan_parts
from llm_assets.profiles import get_profile
from llm_assets.synthetic.crawl_folder import LABELS_FILE

from .common import check, counts_table, kept_files, metadata_value, scratch_dir, spec, stage_parts, table
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
        return counts_table(value, name)  # the summaries are largest first already: the same order
    return metadata_value(value)


def stage_metadata(lake: LakeResource, stage: str, parts: list[str], extra: dict) -> dict:
    """Counts, reasons and samples of a stage's parts, plus `extra` (its figures, the settings that ran)."""
    summary = report.summarize(stage, scan_parts([kept_path(lake.path, stage, p) for p in parts]),
                               scan_parts([removed_path(lake.path, stage, p) for p in parts]))
    meta = {
        "path": MetadataValue.path(lake.url(stage)),
        "dagster/row_count": summary["kept"],
        "removed": summary["removed"],
        "removed_by_reason": reason_table(summary["removed_by_reason"]),
    }
    meta.update({f"summary/{k}": summary_value(k, v) for k, v in summary.items()
                 if k not in ("kept", "removed", "removed_by_reason")})
    meta.update({k: metadata_value(v) for k, v in extra.items()})
    return meta


def from_table(stage: str) -> dict:
    """The asset arguments that the stage table gives: inputs, description, and a code version that follows
    the stage's source, rules and the settings it reads (LLM_ASSETS_CONFIG included)."""
    record = stages.stage(stage)
    return {"deps": record.inputs, "description": record.description,
            "code_version": stages.code_version(stage, get_profile().curation)}


def _parts(record: stages.Stage, context: AssetExecutionContext, lake: LakeResource, crawl: CrawlSource) -> list[str]:
    """The crawl partitions a run covers: its own (per-file stage), the crawl's (first global stage, each
    materialized upstream), or those its input stage wrote."""
    if record.per_file:
        return [context.partition_key]
    if stages.stage(record.inputs[0]).per_file:
        parts = list(crawl.resolve())
        kept_files(lake, record.inputs[0], parts)
        return parts
    return stage_parts(lake, record.inputs[0])


def _stage_run(record: stages.Stage, parts: list[str], lake: LakeResource, crawl: CrawlSource, running):
    synthetic = crawl.synthetic_folder()
    return stages.StageRun(
        lake.path, tuple(parts), crawl.curation(), running, tuple(crawl.benchmarks()),
        labels=synthetic / LABELS_FILE if synthetic is not None else None,
        scratch=lambda _, stage: scratch_dir(lake, stage, running),
        working=lambda _, stage: lake.working(stage), fetch=lambda _, stage: lake.fetch(stage))


def _metadata(record: stages.Stage, lake: LakeResource, run: stages.StageRun, figures: dict) -> dict:
    extra = {"curation_settings": run.cfg.settings} | ({"engine": run.engine.name} if record.tasks else {})
    shown = {k: v for k, v in figures.items() if k not in ("parts", "input", "skipped", "skip_reason")
             and v is not None}
    if figures.get("skipped"):  # the sentence a user reads (the build summary prints it)
        shown["skipped"] = skipped_sentence(figures)
    if record.writes_parts:
        return stage_metadata(lake, record.name, list(run.parts), extra | shown)
    return {"path": MetadataValue.path(lake.url(record.name))} | {k: metadata_value(v) for k, v in
                                                                   (extra | shown).items()}


def curation_asset(record: stages.Stage):
    """The Dagster asset of one curation stage: partitioned by WARC file or global, as its record says."""

    @asset(name=record.name, partitions_def=warc_files if record.per_file else None, group_name=GROUP,
           owners=OWNERS, kinds=set(record.kinds), **from_table(record.name),
           check_specs=[spec(record.name, c.name, c.description, blocking=c.blocking) for c in record.checks])
    def _asset(context: AssetExecutionContext, lake: LakeResource, crawl: CrawlSource, engine: EngineResource):
        parts = _parts(record, context, lake, crawl)
        with engine.open() if record.tasks else contextlib.nullcontext() as running:
            run = _stage_run(record, parts, lake, crawl, running)
            figures = record.run(run)
        if not record.per_file and record.writes_parts:  # part files of an earlier crawl's partitions go
            prune_parts(lake.path, record.name, parts)
        yield MaterializeResult(metadata=_metadata(record, lake, run, figures))
        for item in record.checks:
            outcome = item.evaluate(run, figures)
            yield check(item.name, outcome.passed, blocking_severity=outcome.blocks, description=outcome.description,
                        per_partition=record.per_file, **outcome.figures)

    return _asset


# raw_crawl reads the WARC sources and has its sensor and schedule: its asset is in `crawl.py`
ASSETS = {record.name: curation_asset(record) for record in stages.STAGES if record.name != "raw_crawl"}
PARTITIONED = [a for name, a in ASSETS.items() if stages.stage(name).per_file]
GLOBAL = [a for name, a in ASSETS.items() if not stages.stage(name).per_file]
