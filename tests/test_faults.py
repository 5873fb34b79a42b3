"""Fault injection: processes killed with SIGKILL leave nothing running, nothing blocked and nothing lost.

- the training program (and a build's worker) dies with the process that launched it;
- a build killed while holding the `gpu` pool slot does not block the next build: its run is marked failed
  and the slot freed, before the next run starts or while a step waits for it;
- a step waiting for a pool says so on the console, naming the pool and the run holding it, and
  SIGTERM/Ctrl-C ends the wait;
- `kill -9` of a smoke build at five points (a partition stage, a global stage, tokenization, training, and
  training again after it resumed), each on the rerun of the previous one: every rerun continues, training
  resumes from last.ckpt, and the final outputs equal an uninterrupted build's (bench/faults.py prints the
  same table with wall times and peak memory).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO, make_dagster_home

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; SIGKILL semantics")

sys.path.insert(0, str(REPO / "bench"))
import faults  # noqa: E402

HOLDER = """
import sys, time
import dagster
from llm_assets.defs.run_health import RUN_TAGS, process_tags

@dagster.asset(pool="gpu")
def base_checkpoint(context):
    print("holding", context.run_id, flush=True)
    time.sleep(600)

instance = dagster.DagsterInstance.get()
instance.event_log_storage.set_concurrency_slots("gpu", 1)
dagster.materialize([base_checkpoint], instance=instance, tags={**RUN_TAGS, **process_tags()})
"""


def _env(home: Path, data: Path) -> dict[str, str]:
    return faults.build_env(home, data)


class Output:
    """The lines a process prints, read by a thread, so a test can wait for one while the process runs."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines = proc, []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        checked = 0
        while time.monotonic() < deadline:
            for line in self.lines[checked:]:
                if needle in line:
                    return line
            checked = len(self.lines)
            if self.proc.poll() is not None and not self._thread.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"no line with {needle!r} in {timeout:.0f}s (exit {self.proc.poll()}):\n"
                             + "\n".join(self.lines[-40:]))

    def rest(self, timeout: float) -> str:
        """Wait for the process to end; all it printed."""
        self.proc.wait(timeout=timeout)
        self._thread.join(timeout=30)
        return "\n".join(self.lines)


def _holder(home: Path, data: Path) -> tuple[subprocess.Popen, str]:
    """A build-like process (the project's run tags) whose run holds the `gpu` slot until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], cwd=REPO, env=_env(home, data), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    line = Output(proc).wait_for("holding", timeout=180)
    return proc, line.split()[-1]


def _build(home: Path, data: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "llm_assets", "build", "--profile", "smoke", *args], cwd=REPO,
                            env=_env(home, data), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _run_status(home: Path, run_id: str) -> str:
    return faults.open_instance(home).get_run_by_id(run_id).status.value


def _other_run(home: Path, run_id: str) -> str:
    """The one run of the instance that is not `run_id`."""
    (other,) = [r.run_id for r in faults.open_instance(home).get_runs() if r.run_id != run_id]
    return other


def _gpu_claims(home: Path) -> tuple[list[str], list[str]]:
    info = faults.open_instance(home).event_log_storage.get_concurrency_info("gpu")
    return [s.run_id for s in info.claimed_slots], [s.run_id for s in info.pending_steps]


def test_child_dies_with_its_parent():
    """A child that called die_with_parent does not outlive a parent killed with SIGKILL."""
    child_code = ("import time; from llm_assets.training.lifeline import die_with_parent; die_with_parent(); "
                  "print('ready', flush=True); time.sleep(120)")
    parent_code = ("import os, subprocess, sys, time; from llm_assets.training.lifeline import launcher_env; "
                   f"p = subprocess.Popen([sys.executable, '-c', {child_code!r}], env={{**os.environ, **launcher_env()}},"
                   " stdout=subprocess.PIPE, text=True); p.stdout.readline(); print(p.pid, flush=True); "
                   "time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c", parent_code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert faults.alive(child)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while faults.alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not faults.alive(child), "the child outlived its killed parent"


def test_child_started_after_its_parent_died_exits(tmp_path):
    """The start-up race: a launcher that died before its child ran die_with_parent leaves no orphan."""
    from llm_assets.training.lifeline import ORPHAN_EXIT_CODE, PARENT_ENV

    proc = subprocess.run([sys.executable, "-c", "from llm_assets.training.lifeline import die_with_parent; "
                           "die_with_parent(); print('still here')"],
                          cwd=REPO, env={**os.environ, PARENT_ENV: "1"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == ORPHAN_EXIT_CODE and "still here" not in proc.stdout
    assert "parent process 1 is gone" in proc.stderr


def test_killed_build_holding_the_pool_does_not_block_the_next(tmp_path):
    home, data = make_dagster_home(tmp_path / "home"), tmp_path / "data"
    holder, held_by = _holder(home, data)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert _run_status(home, held_by) == "STARTED" and _gpu_claims(home)[0] == [held_by]

    out = Output(_build(home, data, "--select", "base_checkpoint")).rest(timeout=300)
    assert f"run {held_by[:8]} (STARTED) lost its build process {holder.pid}" in out, out
    assert "waits for a slot" not in out
    # past the pool, the step itself runs (and fails: this lake has no token shards)
    assert "materialize token_shards first" in out, out
    assert _run_status(home, held_by) == "FAILURE"
    assert _gpu_claims(home) == ([], [])


def test_waiting_for_a_pool_is_said_and_sigterm_ends_it(tmp_path):
    home, data = make_dagster_home(tmp_path / "home"), tmp_path / "data"
    holder, held_by = _holder(home, data)
    try:
        build = _build(home, data, "--select", "base_checkpoint")
        output = Output(build)
        line = output.wait_for("waits for a slot of pool 'gpu'", timeout=300)
        assert "base_checkpoint waits" in line and f"run {held_by[:8]} step base_checkpoint" in line, line
        build.send_signal(signal.SIGTERM)
        rest = output.rest(timeout=60)
        assert build.returncode != 0
        assert "interrupted while base_checkpoint waited for pool 'gpu'" in rest, rest
        waiter = _other_run(home, held_by)
        assert _run_status(home, waiter) == "FAILURE"
        claimed, pending = _gpu_claims(home)
        assert claimed == [held_by]  # the holder keeps its slot
        # a claim the executor made in its last milliseconds belongs to a failed run: the next build clears it
        assert set(pending) <= {held_by, waiter}

        # a waiting build takes the slot over once its holder is killed
        output = Output(_build(home, data, "--select", "base_checkpoint"))
        output.wait_for("waits for a slot of pool 'gpu'", timeout=300)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        out = output.rest(timeout=300)
        assert f"run {held_by[:8]} (STARTED) lost its build process {holder.pid}" in out, out
        assert "materialize token_shards first" in out, out  # the step ran
        assert _gpu_claims(home) == ([], [])
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


@pytest.mark.slow  # six builds on one lake: 5.5 minutes on 2 lightly loaded cores, 17 under heavy load
def test_kill_9_at_five_points_then_rerun_resumes_and_equals_an_uninterrupted_build(tmp_path, smoke_build):
    assert smoke_build.proc.returncode == 0, smoke_build.proc.stdout[-3000:]
    outcomes = faults.run_fault_table(tmp_path, faults.TEST_FAULTS, timeout=900)
    table = "\n".join([""] + [f"{o.fault}: killed={o.killed} rc={o.returncode} resumed={o.resumed_at} "
                              f"survivors={o.survivors}" for o in outcomes])
    *killed, final = outcomes
    assert all(o.killed and not o.survivors for o in killed), table
    assert final.returncode == 0, table + "\n" + final.output[-4000:]
    by_name = {o.fault: o for o in outcomes}
    # training resumed where the previous build was killed: at step 10, then (killed again) at step 20
    assert by_name["pretraining, resumed"].resumed_at and by_name["pretraining, resumed"].resumed_at[0] > 0, table
    assert final.resumed_at and final.resumed_at[0] > by_name["pretraining, resumed"].resumed_at[0], table
    assert "starting fresh" not in final.output and "inputs changed since last.ckpt" not in final.output
    diff = faults.differences(faults.lake_outputs(smoke_build.lake), faults.lake_outputs(tmp_path / "data" / "smoke"))
    assert not diff, f"outputs differ from the uninterrupted build's: {diff}"


def test_daemon_sensor_fails_runs_whose_build_process_is_gone(tmp_path):
    """Under `dagster dev` the `orphaned_build_runs` sensor does what the next build would do."""
    from dagster import build_sensor_context

    from llm_assets.defs import build_definitions

    home, data = make_dagster_home(tmp_path / "home"), tmp_path / "data"
    holder, held_by = _holder(home, data)
    instance = faults.open_instance(home)
    sensor = build_definitions().resolve_sensor_def("orphaned_build_runs")
    alive_result = sensor(build_sensor_context(instance=instance))
    assert "live process" in alive_result.skip_message and _run_status(home, held_by) == "STARTED"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    result = sensor(build_sensor_context(instance=instance))
    assert held_by in result.skip_message
    assert _run_status(home, held_by) == "FAILURE" and _gpu_claims(home) == ([], [])
