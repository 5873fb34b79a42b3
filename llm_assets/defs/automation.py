"""Scheduled rematerialization: the crawl weekly, and whatever lies downstream once its inputs changed."""

from dagster import (
    AssetsDefinition,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from .partitions import warc_files

WEEKLY = "0 3 * * 1"  # Mondays 03:00 UTC


def make_weekly_crawl_schedule(job, running: bool = True):
    @schedule(
        cron_schedule=WEEKLY, job=job, execution_timezone="UTC",
        default_status=DefaultScheduleStatus.RUNNING if running else DefaultScheduleStatus.STOPPED,
        description="Re-reads every registered WARC file weekly; downstream assets follow through their "
        "eager automation conditions once their inputs changed.",
    )
    def weekly_crawl_refresh(context: ScheduleEvaluationContext):
        keys = context.instance.get_dynamic_partitions(warc_files.name)
        if not keys:
            return SkipReason("no crawl partitions registered yet (the new_warc_files sensor adds them)")
        tick = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M")
        return [RunRequest(partition_key=key, run_key=f"weekly:{tick}:{key}") for key in keys]

    return weekly_crawl_refresh


def downstream_eager(assets_def: AssetsDefinition) -> AssetsDefinition:
    """Materialize when an upstream asset was updated, once nothing upstream is in progress or missing."""
    return assets_def.map_asset_specs(
        lambda spec: spec.replace_attributes(automation_condition=AutomationCondition.eager())
    )


def make_automation_sensor() -> AutomationConditionSensorDefinition:
    """The sensor that evaluates the assets' automation conditions, running from the first start: Dagster's
    implicit one starts stopped, so "downstream follows" would wait for a user to find and switch it on."""
    return AutomationConditionSensorDefinition(
        "automation_conditions", target=AssetSelection.all(), default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Every 30 s, evaluates each asset's automation condition (eager): an asset runs once an "
        "input was updated and nothing upstream is missing or in progress; the Automation page shows why each "
        "asset ran or waited. Not defined with LLM_ASSETS_AUTOMATION=off.",
    )
