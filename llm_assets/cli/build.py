"""`python -m llm_assets build`: materialize the graph in the Dagster instance at $DAGSTER_HOME.

Each crawl partition is one run (the same runs the web UI launches); the global stages follow in one run
once every partition succeeded. Partition runs go in parallel worker processes.
"""

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from dagster import AssetKey, AssetSelection, DagsterInstance, Definitions, define_asset_job

from llm_assets import profiles
from llm_assets.defs import all_assets, all_resources, build_definitions
from llm_assets.defs.common import GPU_POOL
from llm_assets.defs.partitions import warc_files
from llm_assets.defs.resources import CRAWL_ENV, SEED_ENV, default_resources
from llm_assets.defs.run_health import RUN_TAGS, fail_orphaned_runs, process_tags
from llm_assets.engine import ENGINE_ENV, engine_name
from llm_assets.training.lifeline import die_with_parent

from .console import concise_console_logger
from .summary import merge, print_summary, summarize_run

JOB_NAME = "__ephemeral_asset_job__"  # what dagster.materialize names its runs


def _selected_keys(graph, select: str | None) -> set[AssetKey]:
    if not select:
        return set(graph.get_all_asset_keys())
    try:
        selection = AssetSelection.from_string(select)
    except Exception as exc:  # the selection grammar raises its own parse errors
        raise SystemExit(f"--select {select!r} is not a valid asset selection: {exc}") from exc
    keys = selection.resolve(graph)
    if not keys:
        raise SystemExit(f"--select {select!r} matches no asset; assets are: "
                         f"{', '.join(sorted(k.to_user_string() for k in graph.get_all_asset_keys()))}")
    return keys


def _run(selection_keys: list[str], partition_key: str | None) -> dict:
    """One run in the instance; used in the parent and in worker processes (it re-reads the env)."""
    instance = DagsterInstance.get()
    keys = [AssetKey.from_user_string(k) for k in selection_keys]
    # what dagster.materialize does, with a console logger that leaves stack traces to the UI
    defs = Definitions(jobs=[define_asset_job(JOB_NAME, selection=keys)], assets=all_assets(),
                       resources=all_resources(), loggers={"console": concise_console_logger})
    result = defs.resolve_job_def(JOB_NAME).execute_in_process(
        instance=instance,
        partition_key=partition_key,
        raise_on_error=False,
        tags={**RUN_TAGS, **process_tags()},
        # the terminal shows progress at INFO; every DEBUG event is still stored in the instance for the UI
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    )
    summary = summarize_run(result, instance)
    return {"run_id": result.run_id, "success": result.success, "partition": partition_key,
            "assets": summary}


def _set_environment(profile: str | None, crawl: list[str] | None, seed: int | None,
                     engine: str | None = None) -> None:
    """Put the command's options where the resources read them (worker processes inherit them), and make
    the instance folder."""
    if engine:
        os.environ[ENGINE_ENV] = engine_name(engine)
    if profile:
        os.environ[profiles.PROFILE_ENV] = profiles.get_profile(profile).name
    if crawl:
        os.environ[CRAWL_ENV] = " ".join(crawl)
    if seed is not None:
        os.environ[SEED_ENV] = str(seed)
    os.environ.setdefault("DAGSTER_HOME", str(Path("dagster_home").resolve()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)


def _run_partitions(instance: DagsterInstance, partitioned: list[str], workers: int) -> list[dict]:
    """One run of the `partitioned` assets per crawl partition (registered first), in up to `workers`
    processes."""
    sources = default_resources()["crawl"].resolve()
    known = set(instance.get_dynamic_partitions(warc_files.name))
    new = [k for k in sources if k not in known]
    if new:
        instance.add_dynamic_partitions(warc_files.name, new)
    print(f"{len(sources)} crawl partitions; running {partitioned} for each "
          f"with {workers} worker(s)", flush=True)
    if workers > 1 and len(sources) > 1:
        ctx = multiprocessing.get_context("spawn")
        # workers die with this process: a killed build leaves no worker running a partition
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=die_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            return list(pool.map(_run, [partitioned] * len(sources), list(sources)))
    return [_run(partitioned, key) for key in sources]


def _run_all(instance: DagsterInstance, partitioned: list[str], unpartitioned: list[str],
             workers: int) -> tuple[dict, int, set[str]]:
    """The partition runs, then the global run once they all succeeded; returns the summed summary, the
    number of failed runs, and the assets not run."""
    totals: dict = {}
    failed_runs = 0
    for run in _run_partitions(instance, partitioned, workers) if partitioned else []:
        merge(totals, run)
        failed_runs += not run["success"]
        print(f"  partition {run['partition']}: {'ok' if run['success'] else 'FAILED'} "
              f"(run {run['run_id'][:8]})", flush=True)
    if unpartitioned and failed_runs:
        print(f"{failed_runs} partition run(s) failed: not running {unpartitioned}", flush=True)
        return totals, failed_runs, set(unpartitioned)
    if unpartitioned:
        run = _run(unpartitioned, None)
        merge(totals, run)
        failed_runs += not run["success"]
        print(f"  global stages: {'ok' if run['success'] else 'FAILED'} (run {run['run_id'][:8]})",
              flush=True)
    return totals, failed_runs, set()


def build(profile: str | None, select: str | None, crawl: list[str] | None, seed: int | None,
          workers: int, engine: str | None = None) -> int:
    """Materialize the selected assets (all by default); print a summary; 0 when every run succeeded.
    `engine` (`local`, `ray`) is where the global curation stages run (default: $LLM_ASSETS_ENGINE)."""
    _set_environment(profile, crawl, seed, engine)
    profile_name = profiles.get_profile().name
    print(f"profile {profile_name}; lake {profiles.data_dir()}/{profile_name}; "
          f"instance {os.environ['DAGSTER_HOME']}", flush=True)

    started = time.perf_counter()
    instance = DagsterInstance.get()
    instance.event_log_storage.set_concurrency_slots(GPU_POOL, 1)
    fail_orphaned_runs(instance)
    graph = build_definitions().resolve_asset_graph()
    wanted = _selected_keys(graph, select)
    order = [k.to_user_string() for k in graph.toposorted_asset_keys if k in wanted]
    partitioned = [k for k in order if graph.get(AssetKey.from_user_string(k)).partitions_def]
    unpartitioned = [k for k in order if k not in partitioned]

    totals, failed_runs, skipped = _run_all(instance, partitioned, unpartitioned, workers)
    print_summary(order, totals, skipped)
    print(f"\nbuild {'FAILED' if failed_runs else 'succeeded'} in {time.perf_counter() - started:.1f}s; "
          f"open the UI with: DAGSTER_HOME={os.environ['DAGSTER_HOME']} dagster dev "
          f"-w workspace.yaml -h 127.0.0.1 -p 3000", flush=True)
    return 1 if failed_runs or skipped else 0
