"""Dagster-facing code only: thin assets around the plain libraries, checks, schedules, sensors."""


from dagster import Definitions

from .crawl import crawl_partition_job, make_crawl_sensor, raw_crawl
from .resources import default_resources

PARTITIONED_ASSETS = [raw_crawl]
GLOBAL_ASSETS: list = []


def all_assets() -> list:
    return PARTITIONED_ASSETS + GLOBAL_ASSETS


def build_definitions(resources: dict | None = None) -> Definitions:
    job = crawl_partition_job(PARTITIONED_ASSETS)
    return Definitions(
        assets=all_assets(),
        jobs=[job],
        sensors=[make_crawl_sensor(job)],
        resources=resources or default_resources(),
    )
