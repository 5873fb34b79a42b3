"""`build`'s console: Dagster's colored logger without stack traces (the summary prints the cause) and with
a line, and an interrupt watcher, when a step waits for a slot of a concurrency pool."""

import logging
import os
import sys
import threading
import time

from dagster import DagsterInstance, colored_console_logger, logger
from dagster._utils.interrupts import check_captured_interrupt
from dagster._utils.log import create_console_logger

from llm_assets.defs.run_health import PID_TAG, fail_orphaned_runs

from . import debug_requested


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
    if not debug_requested():
        log.addFilter(_WithoutStack())
    return log
