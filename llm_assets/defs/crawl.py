"""raw_crawl: WARC response records to Parquet, one partition per WARC file; the sensor for new files."""


import json

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSelection,
    DefaultSensorStatus,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    TableColumn,
    TableSchema,
    asset,
    define_asset_job,
    sensor,
)

from llm_assets.crawl import RAW_SCHEMA
from llm_assets.crawl.raw import crawl_to_parquet
from llm_assets.curation import stages
from llm_assets.lake import kept_path
from llm_assets.profiles import get_profile

from .common import counts_table, metadata_value
from .partitions import warc_files
from .resources import CrawlSource, LakeResource

MAX_UNREADABLE_SHARE = 0.05


@asset(
    partitions_def=warc_files,
    group_name="crawl",
    kinds={"parquet", "warc"},
    owners=["team:data"],
    # follows the WARC readers' source and max_body_bytes (the stage table), never bumped by hand
    code_version=stages.code_version("raw_crawl", get_profile().curation),
    description="Response records of one WARC file (url, record id, fetch time, status, type, charset, "
    "body, host). Damaged records are skipped and counted by reason; the good ones are kept.",
    check_specs=[
        AssetCheckSpec("has_records", asset="raw_crawl", blocking=True,
                       description="At least one response record was read."),
        AssetCheckSpec("unreadable_share", asset="raw_crawl",
                       description=f"Under {MAX_UNREADABLE_SHARE:.0%} of records were unreadable."),
    ],
)
def raw_crawl(context: AssetExecutionContext, lake: LakeResource, crawl: CrawlSource):
    key = context.partition_key
    sources = crawl.resolve()
    if key not in sources:
        raise KeyError(f"partition {key!r} is not among the configured crawl sources "
                       f"({len(sources)} files, e.g. {sorted(sources)[:3]})")
    out = kept_path(lake.path, "raw_crawl", key)
    stats = crawl_to_parquet(sources[key], out)
    # stats["uri"] is redacted: a presigned URL's signature or a URL's password never reaches the instance
    context.log.info("read %s: %d records in %.1fs, skipped %s", stats["uri"], stats["rows"],
                     stats["seconds"], stats["skipped"])
    yield MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(out)),
            "source": stats["uri"],
            "dagster/row_count": stats["rows"],
            "bytes_read": stats["bytes_read"],
            "body_bytes": stats["body_bytes"],
            "records_per_s": stats["rows"] / max(stats["seconds"], 1e-9),
            "dagster/column_schema": TableSchema(
                columns=[TableColumn(name, str(dtype)) for name, dtype in RAW_SCHEMA.items()]),
            "http_status": counts_table(stats["http_status"], "status"),
            "content_type": counts_table(stats["content_type"], "content_type"),
            "skipped": counts_table(stats["skipped"], "reason"),
            "repaired": counts_table(stats["repaired"], "repair"),
            "non_response_records": counts_table(stats["non_response"], "record_type"),
        }
    )
    # numbers of one partition as text: the UI would plot them over time, zigzagging between partitions
    yield AssetCheckResult(check_name="has_records", passed=stats["rows"] > 0,
                           metadata={"rows": metadata_value(stats["rows"], as_text=True)})
    yield AssetCheckResult(
        check_name="unreadable_share",
        passed=stats["unreadable_share"] < MAX_UNREADABLE_SHARE,
        severity=AssetCheckSeverity.WARN,
        metadata={"unreadable_share": metadata_value(stats["unreadable_share"], as_text=True),
                  "skipped": counts_table(stats["skipped"], "reason")},
    )


def make_crawl_sensor(job, launch: bool = True):
    """Registering files is always on; with `launch` (automation on) files that appear after the first
    registration also get their crawl-side runs, and the downstream assets follow through automation."""

    @sensor(
        job=job,
        minimum_interval_seconds=300,
        default_status=DefaultSensorStatus.RUNNING,
        description="Registers the WARC files of the configured sources as partitions. On a fresh instance it "
        "only registers them: the first build is yours (Materialize all), so nothing is built twice. Files that "
        "appear later also get their crawl-side runs (not with LLM_ASSETS_AUTOMATION=off).",
    )
    def new_warc_files(context: SensorEvaluationContext, crawl: CrawlSource):
        sources = crawl.resolve()
        known = set(context.instance.get_dynamic_partitions(warc_files.name))
        new = sorted(set(sources) - known)
        if not new:
            return SensorResult(skip_reason=f"no new WARC files among {len(sources)}")
        context.log.info("new WARC files: %s", json.dumps(new[:20]))
        register = [warc_files.build_add_request(new)]
        if not known or not launch:
            why = (f"registered {len(new)} WARC file(s) on a fresh instance; build them with Materialize all"
                   if not known else f"registered {len(new)} WARC file(s); not run: LLM_ASSETS_AUTOMATION=off")
            return SensorResult(skip_reason=why, dynamic_partitions_requests=register)
        return SensorResult(
            run_requests=[RunRequest(partition_key=key, run_key=f"warc:{key}") for key in new],
            dynamic_partitions_requests=register,
        )

    return new_warc_files


def crawl_partition_job(partitioned_assets):
    return define_asset_job(
        "crawl_partition_job",
        selection=AssetSelection.assets(*partitioned_assets),
        description="The per-WARC-file stages for one partition.",
    )
