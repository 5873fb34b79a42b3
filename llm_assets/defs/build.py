"""`python -m llm_assets build`: materialize the graph in the Dagster instance at $DAGSTER_HOME.

Each crawl partition is one run (the same runs the web UI launches); the global stages follow in one run
once every partition succeeded. Partition runs go in parallel worker processes.
"""

import logging
import multiprocessing
import os
import sys
import threading
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    colored_console_logger,
    define_asset_job,
    logger,
)
from dagster._utils.interrupts import check_captured_interrupt
from dagster._utils.log import create_console_logger

from llm_assets import profiles
from llm_assets.training.lifeline import die_with_parent

from . import all_assets, all_resources, build_definitions
from .common import GPU_POOL
from .partitions import warc_files
from .resources import CRAWL_ENV, SEED_ENV, default_resources
from .run_health import PID_TAG, RUN_TAGS, fail_orphaned_runs, process_tags

JOB_NAME = "__ephemeral_asset_job__"  # what dagster.materialize names its runs
DEBUG_ENV = "LLM_ASSETS_DEBUG"


class _WithoutStack(logging.Filter):
    """Cut a failure event's message before its stack trace: the summary prints the cause, the instance
    keeps the whole error for the web UI, and --debug prints it here too."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Stack Trace:" in message:
            record.msg = message.split("\n\n", 1)[0] + " (the cause is in the summary below)"
            record.args = ()
        return True


def _holders(instance: DagsterInstance, pool: str) -> str:
    slots = instance.event_log_storage.get_concurrency_info(pool).claimed_slots
    described = []
    for slot in slots:
        run = instance.get_run_by_id(slot.run_id)
        pid = run.tags.get(PID_TAG) if run else None
        described.append(f"run {slot.run_id[:8]} step {slot.step_key}" + (f", process {pid}" if pid else ""))
    return "; ".join(described) or "no run (the slot is being handed over)"


class PoolWait(threading.Thread):
    """Watches a run whose step waits for a pool slot. Dagster's in-process executor waits in a loop that
    never looks at Ctrl-C/SIGTERM (it only records them), so this thread does: it marks the run failed,
    frees its claims and exits. While waiting it also fails runs whose build process is gone, so a slot
    held by a killed build is handed to this one."""

    poll_seconds = 0.5
    reap_every_seconds = 10.0

    def __init__(self, run_id: str, step_key: str, pool: str):
        super().__init__(name=f"pool-wait-{step_key}", daemon=True)
        self.run_id, self.step_key, self.pool = run_id, step_key, pool

    def run(self) -> None:
        instance = DagsterInstance.get()
        storage = instance.event_log_storage
        last_reap = time.monotonic()
        while True:
            time.sleep(self.poll_seconds)
            claimed = storage.get_concurrency_info(self.pool).claimed_slots
            if any(s.run_id == self.run_id and s.step_key == self.step_key for s in claimed):
                print(f"{self.step_key} got a slot of pool {self.pool!r}", flush=True)
                return
            if check_captured_interrupt():
                run = instance.get_run_by_id(self.run_id)
                if run is not None and not run.is_finished:
                    instance.report_run_failed(run, message=f"interrupted while {self.step_key} waited for "
                                               f"pool {self.pool!r}")
                # last, as close to the exit as can be: the executor's loop may claim again until then (a claim
                # left behind belongs to a failed run, which the next build or the daemon clears)
                storage.free_concurrency_slots_for_run(self.run_id)
                print(f"interrupted while {self.step_key} waited for pool {self.pool!r}: run "
                      f"{self.run_id[:8]} marked failed", file=sys.stderr, flush=True)
                os._exit(130)
            if time.monotonic() - last_reap > self.reap_every_seconds:
                last_reap = time.monotonic()
                fail_orphaned_runs(instance)


_watched: set[tuple[str, str]] = set()


class _ConsoleLevel(logging.Filter):
    """The console's level, except that a step waiting for a pool slot is told at WARNING: Dagster logs it
    at DEBUG only ("Step blocked by limit for pool gpu"), and a build that waits in silence looks hung."""

    def __init__(self, threshold: int):
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.threshold:
            return True
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if event is None or "blocked by limit for pool" not in (event.message or ""):
            return False
        pool = event.message.rsplit(" ", 1)[-1]
        step, run_id = meta.get("step_key") or "a step", meta.get("run_id") or ""
        try:
            holders = _holders(DagsterInstance.get(), pool)
        except Exception as err:  # a message for the console must not fail the run
            holders = f"unknown ({err})"
        record.msg = (record.getMessage().replace(event.message, "") + f"{step} waits for a slot of pool {pool!r}, "
                      f"held by {holders}; Ctrl-C stops waiting")
        record.args = ()
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        if (run_id, step) not in _watched and threading.current_thread() is threading.main_thread():
            _watched.add((run_id, step))
            PoolWait(run_id, step, pool).start()
        return True


@logger(colored_console_logger.config_schema, description="The colored console logger, without stack traces "
        "unless LLM_ASSETS_DEBUG is set, and with a line when a step waits for a pool slot.")
def concise_console_logger(init_context):
    config = init_context.logger_config
    threshold = logging.getLevelName(config["log_level"].upper())
    log = create_console_logger(name=config["name"], level=logging.DEBUG)
    log.addFilter(_ConsoleLevel(threshold if isinstance(threshold, int) else logging.INFO))
    if os.environ.get(DEBUG_ENV, "").lower() not in ("1", "true", "yes", "on"):
        log.addFilter(_WithoutStack())
    return log


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


def user_error(error) -> str:
    """The message a user needs from a step failure: the innermost cause of Dagster's wrapper errors
    (`DagsterExecutionStepExecutionError: Error occurred while executing op ...`), without the exception
    type, on one line."""
    if error is None:
        return "failed"
    while error.cause is not None:
        error = error.cause
    message = error.message.strip()
    if error.cls_name and message.split(": ", 1)[0].rsplit(".", 1)[-1] == error.cls_name and ": " in message:
        message = message.split(": ", 1)[1]
    return " ".join(message.split()) or error.cls_name or "failed"


def _new_entry() -> dict:
    return {"rows": None, "bytes": 0, "seconds": 0.0, "materialized": 0, "checks": {}, "errors": [], "notes": []}


def _summarize_run(result, instance: DagsterInstance) -> dict:
    """Per asset: rows, size, duration, check outcomes, notes (why a stage was skipped) and errors of one
    in-process run."""
    out: dict = defaultdict(_new_entry)
    durations = {s.step_key: (s.end_time or 0) - (s.start_time or 0)
                 for s in instance.get_run_step_stats(result.run_id)}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        entry = out[mat.asset_key.to_user_string()]
        entry["materialized"] += 1
        meta = mat.metadata
        if "dagster/row_count" in meta:
            entry["rows"] = (entry["rows"] or 0) + int(meta["dagster/row_count"].value)
        if "path" in meta:
            entry["bytes"] += _size(Path(str(meta["path"].value)))
        if "skipped" in meta and isinstance(meta["skipped"].value, str):  # raw_crawl's is a count per reason
            entry["notes"].append(meta["skipped"].value)
        entry["seconds"] += durations.get(event.step_key, 0.0)
    for check in result.get_asset_check_evaluations():
        entry = out[check.asset_key.to_user_string()]
        name = check.check_name
        prev = entry["checks"].get(name, True)
        entry["checks"][name] = prev and check.passed
    for failure in result.get_step_failure_events():
        message = user_error(failure.step_failure_data.error)
        for key in _step_assets(failure.step_key):
            out[key]["errors"].append(message)
    return {k: dict(v) for k, v in out.items()}


def _step_assets(step_key: str) -> list[str]:
    """The asset keys an op step materializes (an op may produce several assets)."""
    op_name = step_key.split("[")[0]
    for assets_def in all_assets():
        if assets_def.op.name == op_name:
            return [k.to_user_string() for k in assets_def.keys]
    return [op_name]


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


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
    summary = _summarize_run(result, instance)
    return {"run_id": result.run_id, "success": result.success, "partition": partition_key,
            "assets": summary}


def _merge(total: dict, run: dict) -> None:
    for key, entry in run["assets"].items():
        agg = total.setdefault(key, _new_entry())
        for field in ("bytes", "seconds", "materialized"):
            agg[field] += entry[field]
        if entry["rows"] is not None:
            agg["rows"] = (agg["rows"] or 0) + entry["rows"]
        for name, passed in entry["checks"].items():
            agg["checks"][name] = agg["checks"].get(name, True) and passed
        agg["errors"].extend(entry["errors"])
        agg["notes"].extend(entry["notes"])


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def print_summary(order: list[str], totals: dict, skipped: set[str], stream=sys.stdout) -> None:
    header = f"{'asset':<24} {'status':<10} {'parts':>5} {'rows':>9} {'size':>10} {'time':>8}  checks"
    print("\n" + header + "\n" + "-" * len(header), file=stream)
    for key in order:
        entry = totals.get(key)
        if key in skipped or entry is None:
            print(f"{key:<24} {'skipped':<10}", file=stream)
            continue
        passed = sum(entry["checks"].values())
        failed = [n for n, ok in entry["checks"].items() if not ok]
        status = "FAILED" if entry["errors"] else "ok"
        checks = f"{passed} passed" + (f", failed: {', '.join(failed)}" if failed else "")
        rows = "-" if entry["rows"] is None else entry["rows"]
        print(f"{key:<24} {status:<10} {entry['materialized']:>5} {rows:>9} "
              f"{_fmt_bytes(entry['bytes']):>10} {entry['seconds']:>7.1f}s  {checks}", file=stream)
        for note in dict.fromkeys(entry.get("notes", [])):
            print(f"    note: {note}", file=stream)
        for err in dict.fromkeys(entry["errors"]):
            print(f"    error: {err}", file=stream)


def build(profile: str | None, select: str | None, crawl: list[str] | None, seed: int | None,
          workers: int) -> int:
    if profile:
        os.environ[profiles.PROFILE_ENV] = profiles.get_profile(profile).name
    if crawl:
        os.environ[CRAWL_ENV] = " ".join(crawl)
    if seed is not None:
        os.environ[SEED_ENV] = str(seed)
    os.environ.setdefault("DAGSTER_HOME", str(Path("dagster_home").resolve()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
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

    totals: dict = {}
    failed_runs = 0
    if partitioned:
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
                runs = list(pool.map(_run, [partitioned] * len(sources), list(sources)))
        else:
            runs = [_run(partitioned, key) for key in sources]
        for run in runs:
            _merge(totals, run)
            failed_runs += not run["success"]
            print(f"  partition {run['partition']}: {'ok' if run['success'] else 'FAILED'} "
                  f"(run {run['run_id'][:8]})", flush=True)
    skipped: set[str] = set()
    if unpartitioned and failed_runs:
        skipped = set(unpartitioned)
        print(f"{failed_runs} partition run(s) failed: not running {unpartitioned}", flush=True)
    elif unpartitioned:
        run = _run(unpartitioned, None)
        _merge(totals, run)
        failed_runs += not run["success"]
        print(f"  global stages: {'ok' if run['success'] else 'FAILED'} (run {run['run_id'][:8]})",
              flush=True)
    print_summary(order, totals, skipped)
    print(f"\nbuild {'FAILED' if failed_runs else 'succeeded'} in {time.perf_counter() - started:.1f}s; "
          f"open the UI with: DAGSTER_HOME={os.environ['DAGSTER_HOME']} dagster dev "
          f"-w workspace.yaml -h 127.0.0.1 -p 3000", flush=True)
    return 1 if failed_runs or skipped else 0
