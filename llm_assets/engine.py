"""Where the heavy work of the global stages runs: in this process (`local`) or as Ray tasks (`ray`).

A stage is written as tasks over parts (or over hash buckets of a shuffle) that read and write the lake
and return small values; `Engine.map(fn, items)` runs `fn(item, **shared)` for every item and returns the
results in item order (`Engine.fold` combines them as they come instead, holding one at a time). `local` runs them one after the other here; `ray` submits each as a Ray task
(`ray.remote`, one CPU each) to the cluster at `LLM_ASSETS_RAY_ADDRESS` (`auto`, `ray://host:10001`), or
to a local cluster started for the run, listening on 127.0.0.1 only, when it is unset. The tasks and
their results are the same either way, so both engines make the same decisions.
"""

from __future__ import annotations

import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

ENGINE_ENV = "LLM_ASSETS_ENGINE"
RAY_ADDRESS_ENV = "LLM_ASSETS_RAY_ADDRESS"
RAY_WORKERS_ENV = "LLM_ASSETS_RAY_WORKERS"  # CPUs of a local cluster started for the run
ENGINES = ("local", "ray")
NO_RAY = "the ray engine needs Ray: pip install -e '.[ray]'"
LOOPBACK = "127.0.0.1"  # the one address a cluster started for a run listens on
LOOPBACK_ADDRESSES = (LOOPBACK, "::1")


class LocalEngine:
    """Tasks run in this process, one after the other."""

    name = "local"
    workers = 1

    def fold(self, fn: Callable, items: Sequence, combine: Callable, label: str = "tasks", **shared: Any):
        """`combine` over the results (no initial value), as `map` would return them but never all held."""
        total = None
        for number, item in enumerate(items):
            value = fn(item, **shared)
            total = value if number == 0 else combine(total, value)
        return total

    def map(self, fn: Callable, items: Sequence, label: str = "tasks", **shared: Any) -> list:
        results = []
        for number, item in enumerate(items, 1):
            results.append(fn(item, **shared))
            log.debug("%s: %d/%d done", label, number, len(items))
        return results


def _peak_rss_bytes() -> int:
    """This process's peak resident memory so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _measured(fn: Callable, item, **shared):
    """`fn(item, **shared)` and the peak RSS of the worker process that ran it (workers are reused, so it
    is the largest of the tasks that worker ran so far)."""
    return fn(item, **shared), _peak_rss_bytes()


class RayEngine:
    """Tasks run as Ray tasks, one CPU each; `shared` values are put in the object store once.
    `task_peak_rss` is the largest peak RSS of a worker process seen by any task so far (bytes)."""

    name = "ray"

    def __init__(self, ray_module, workers: int) -> None:
        self._ray = ray_module
        self.workers = workers
        self.task_peak_rss = 0

    def map(self, fn: Callable, items: Sequence, label: str = "tasks", **shared: Any) -> list:
        results: list = [None] * len(items)
        for position, value in self._completed(fn, items, label, shared):
            results[position] = value
        return results

    def fold(self, fn: Callable, items: Sequence, combine: Callable, label: str = "tasks", **shared: Any):
        """`combine` over the results in the order tasks finish (so `combine` must be associative and
        commutative); the driver holds one result at a time."""
        total, first = None, True
        for _, value in self._completed(fn, items, label, shared):
            total, first = (value if first else combine(total, value)), False
        return total

    def _completed(self, fn: Callable, items: Sequence, label: str, shared: dict):
        """`(position, result)` of each task as it finishes."""
        ray = self._ray
        if not items:
            return
        refs = {name: ray.put(value) for name, value in shared.items()}
        # a lost worker is retried; an exception of our own code is not (it would fail again the same way)
        task = ray.remote(num_cpus=1, max_retries=2, retry_exceptions=False)(_measured)
        waiting = [task.remote(fn, item, **refs) for item in items]
        position = {ref: i for i, ref in enumerate(waiting)}
        started = time.perf_counter()
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            for ref in done:
                value, peak = _result(ray, ref)
                self.task_peak_rss = max(self.task_peak_rss, peak)
                # no reference to a finished task stays here, so Ray frees its result once the caller has it
                yield position.pop(ref), value
            finished = len(items) - len(waiting)
            if finished == len(items) or finished % max(1, len(items) // 10) == 0:
                log.info("%s: %d/%d done on ray (%.1fs, worker peak RSS %d MiB)", label, finished, len(items),
                         time.perf_counter() - started, self.task_peak_rss >> 20)


def _result(ray, ref):
    """A task's value; a failed task raises the task's own exception (not Ray's wrapper), so error messages
    name the file and record as they do on the local engine."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        cause = err.cause if isinstance(err.cause, BaseException) else None
        if cause is not None:
            raise cause from None
        raise


def engine_name(name: str | None = None) -> str:
    """`name`, else `$LLM_ASSETS_ENGINE`, else `local`; refused unless it is one of `ENGINES`."""
    chosen = (name or os.environ.get(ENGINE_ENV) or "local").strip().lower()
    if chosen not in ENGINES:
        raise ValueError(f"engine {chosen!r} is not one of {', '.join(ENGINES)} (set by --engine or ${ENGINE_ENV})")
    return chosen


def start_local_ray(ray, **options: Any) -> None:
    """Start a new Ray cluster on this machine, reachable from this machine only; `options` go to `ray.init`.

    Ray binds its servers (GCS, raylet, object manager, workers, agents) to 127.0.0.1 only when the node's
    address is loopback, and on Linux it replaces a loopback `_node_ip_address` by the machine's network
    address unless its single-machine switch (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`, read when Ray is
    imported) is off; so the switch is off while this cluster starts, and a cluster joined later in this
    process is reached as before. A Ray that still chose another address is stopped and refused.
    """
    from ray._private import ray_constants

    switch = getattr(ray_constants, "ENABLE_RAY_CLUSTER", True)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        # address="local": a new cluster even where `ray start` runs one (joining it takes the address);
        # no dashboard for a cluster of one run
        ray.init(address="local", _node_ip_address=LOOPBACK, include_dashboard=False, dashboard_host=LOOPBACK,
                 **options)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = switch
    node = ray.util.get_node_ip_address()
    if node not in LOOPBACK_ADDRESSES:
        ray.shutdown()
        raise RuntimeError(f"the local Ray cluster took address {node}, not {LOOPBACK}, so it would listen on "
                           f"the network (Ray {ray.__version__}); join a cluster of your own with "
                           f"${RAY_ADDRESS_ENV} instead")


@contextmanager
def open_engine(name: str | None = None, address: str | None = None,
                workers: int | None = None) -> Iterator[LocalEngine | RayEngine]:
    """The engine named (see `engine_name`) for the length of the block.

    For `ray`: `address` (else `$LLM_ASSETS_RAY_ADDRESS`) is a running cluster to join; with neither, a
    local cluster of `workers` CPUs (else `$LLM_ASSETS_RAY_WORKERS`, else every core, at least 2) is
    started and stopped with the block, listening on 127.0.0.1 only (`start_local_ray`). A Ray session that is already open in this process is reused.
    """
    if engine_name(name) == "local":
        yield LocalEngine()
        return
    try:
        import ray
    except ImportError:
        raise RuntimeError(NO_RAY) from None
    address = address or os.environ.get(RAY_ADDRESS_ENV) or None
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            cpus = workers or int(os.environ.get(RAY_WORKERS_ENV) or 0) or max(2, os.cpu_count() or 1)
            # the workers import this package as the driver does
            start_local_ray(ray, num_cpus=cpus, log_to_driver=False)
        started = True
    cpus = int(ray.cluster_resources().get("CPU", 1))
    log.info("engine: ray at %s, %d CPUs", address or "a local cluster", cpus)
    try:
        yield RayEngine(ray, cpus)
    finally:
        if started:
            ray.shutdown()
