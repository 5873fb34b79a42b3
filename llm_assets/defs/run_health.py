"""Runs whose process is gone: a `build` killed with SIGKILL leaves its run STARTED and, if it was training,
holding the `gpu` pool slot. Each run of `build` names its process in tags; a later build, and the
`orphaned_build_runs` sensor under the daemon, mark such runs failed and free their slots."""

import os
import socket
import sys

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from llm_assets.training.lifeline import process_alive, process_start_time

LAUNCHED_BY_TAG = "llm_assets/launched_by"
RUN_TAGS = {LAUNCHED_BY_TAG: "cli-build"}
# the process that executes a run, so a later build can tell a run whose process was killed from a live one
PID_TAG, HOST_TAG, PROCESS_START_TAG = "llm_assets/pid", "llm_assets/host", "llm_assets/process_start"
UNFINISHED = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
              DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def process_tags() -> dict[str, str]:
    """Tags naming this process: a run whose process is gone can be told from one still running."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname(),
            PROCESS_START_TAG: process_start_time(os.getpid()) or ""}


def run_process_gone(run) -> bool:
    """A run of `build` on this host whose process no longer exists (killed with SIGKILL, machine crash)."""
    tags = run.tags
    pid = tags.get(PID_TAG, "")
    if tags.get(LAUNCHED_BY_TAG) != RUN_TAGS[LAUNCHED_BY_TAG] or not pid.isdigit():
        return False
    if tags.get(HOST_TAG) != socket.gethostname():
        return False  # another machine's process: only that machine (or the daemon's run monitoring) can tell
    return not process_alive(int(pid), tags.get(PROCESS_START_TAG) or None)


def fail_orphaned_runs(instance: DagsterInstance, stream=sys.stdout) -> list[str]:
    """Mark failed the unfinished runs of `build` whose process is gone, and free their pool slots (a run
    killed while training would otherwise hold the `gpu` slot forever and block every later build); also
    free the slots and pending claims still held by finished runs. Returns the run ids marked failed."""
    failed = []
    for record in instance.get_run_records(RunsFilter(tags=RUN_TAGS, statuses=UNFINISHED)):
        run = record.dagster_run
        if not run_process_gone(run):
            continue
        instance.report_run_failed(run, message=f"the build process {run.tags[PID_TAG]} that ran this run is "
                                   "gone (killed?); marked failed by a later build")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        failed.append(run.run_id)
        print(f"run {run.run_id[:8]} ({run.status.value}) lost its build process {run.tags[PID_TAG]}: "
              "marked it failed and freed its pool slots", file=stream, flush=True)
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        infos = [storage.get_concurrency_info(pool) for pool in storage.get_concurrency_keys()]
        # a finished run may still hold a slot, or wait for one (and be handed the next free slot)
        holders = {slot.run_id for info in infos for slot in info.claimed_slots} | {
            step.run_id for info in infos for step in info.pending_steps}
        for run_id in holders:
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
    return failed


@sensor(minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
        description="Marks failed the runs of `python -m llm_assets build` whose process is gone (killed), and "
        "frees the pool slots they hold, so the next training run does not wait forever. Launches nothing.")
def orphaned_build_runs(context: SensorEvaluationContext):
    failed = fail_orphaned_runs(context.instance, stream=sys.stderr)
    return SkipReason(f"marked failed {len(failed)} run(s) whose build process is gone: {failed}" if failed
                      else "every unfinished build run on this host has a live process")
