"""Dagster-facing code only: thin assets around the plain libraries, checks, schedules, sensors."""

import os

from dagster import Definitions, ExecutorDefinition, in_process_executor

from .automation import downstream_eager, make_automation_sensor, make_weekly_crawl_schedule
from .crawl import crawl_partition_job, make_crawl_sensor, raw_crawl
from .curation import GLOBAL as CURATION_GLOBAL
from .curation import PARTITIONED as CURATION_PARTITIONED
from .evaluation import benchmark_scores, benchmark_suite, model_card
from .resources import default_resources
from .run_health import orphaned_build_runs
from .tokens import token_shards, tokenizer
from .training import TrainerResource, TrainingLauncher, assistant_checkpoint, base_checkpoint, sft_examples

PARTITIONED_ASSETS = [raw_crawl, *CURATION_PARTITIONED]
GLOBAL_ASSETS = [*CURATION_GLOBAL, tokenizer, token_shards, base_checkpoint, sft_examples, assistant_checkpoint,
                 benchmark_suite, benchmark_scores, model_card]


def automation_enabled() -> bool:
    """`LLM_ASSETS_AUTOMATION=off` keeps the sensor, schedule and eager conditions from starting runs."""
    return os.environ.get("LLM_ASSETS_AUTOMATION", "on").lower() not in ("off", "0", "false")


def all_assets() -> list:
    downstream = PARTITIONED_ASSETS[1:] + GLOBAL_ASSETS
    if automation_enabled():
        downstream = [downstream_eager(a) for a in downstream]
    return [PARTITIONED_ASSETS[0], *downstream]


def all_resources() -> dict:
    """Every resource the assets use, configured from the environment."""
    return {**default_resources(), "trainer": TrainerResource(), "launcher": TrainingLauncher()}


def build_definitions(resources: dict | None = None, executor: ExecutorDefinition | None = None) -> Definitions:
    """The code location. Steps run in their run's process by default, as in `build`: a process per step
    would import the project (torch, polars, presidio) again for each of the graph's chained steps."""
    job = crawl_partition_job(PARTITIONED_ASSETS)
    automation = automation_enabled()
    return Definitions(
        assets=all_assets(),
        jobs=[job],
        sensors=[make_crawl_sensor(job, launch=automation), orphaned_build_runs,
                 *([make_automation_sensor()] if automation else [])],
        schedules=[make_weekly_crawl_schedule(job, running=automation)],
        resources={**all_resources(), **(resources or {})},
        executor=executor or in_process_executor,
    )
