"""Fault injection: `kill -9` a smoke build at chosen points, rerun it, and compare with an uninterrupted build.

    python bench/faults.py [--faults all|test] [--work DIR] [--reference LAKE]

Each fault starts `python -m llm_assets build --profile smoke` on one Dagster instance and lake, waits for its
point (a step start in the instance's event log, or a checkpoint written in the lake; never a blind sleep),
sends SIGKILL to the build process only, and checks that none of its processes (partition workers, the
training program) outlive it. The next fault is the rerun of the previous one; after the last, one more
rerun must finish. The table prints per fault: the outcome, the wall time to the kill, the peak memory of the
build's process tree, and what the rerun found (resumed training step). Then the final outputs are compared
with an uninterrupted build's: the document ids of every curation stage, the token shard bytes, the
tokenizer, and the model weights.

tests/test_faults.py runs the same table (the `TEST_FAULTS` points) and asserts on it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from llm_assets.training.resume import json_content_digest

REPO = Path(__file__).resolve().parents[1]
PROFILE = "smoke"
CURATION_STAGES = ("raw_crawl", "extracted_documents", "filtered_documents", "deduplicated_documents",
                   "quality_documents", "training_mixture")
RESUMED = re.compile(r"resumed from last\.ckpt at step (\d+)/(\d+)")


# ------------------------------------------------------------------------------------------------ processes


def _proc_stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def descendants(root: int) -> set[int]:
    """Every live process below `root` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) and stat[0] not in ("Z", "X"):
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def tree_rss(root: int) -> int:
    """Resident bytes of `root` and its descendants now."""
    total = 0
    for pid in {root, *descendants(root)}:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


# ----------------------------------------------------------------------------------------------- watching


def open_instance(home: Path):
    """The Dagster instance in `home` (its dagster.yaml reads $DAGSTER_HOME while loading)."""
    from dagster import DagsterInstance

    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        return DagsterInstance.from_config(str(home))
    finally:
        if before is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = before


class Watch:
    """What a running build has done so far, read from its Dagster instance and its lake."""

    def __init__(self, home: Path, lake: Path, started: float):
        self.instance = open_instance(home)
        self.lake, self.started = lake, started
        self._known_runs: set[str] = set()

    def steps_started(self) -> set[str]:
        from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

        # the runs this build has going (a killed build's runs stay STARTED until the next build fails them)
        records = self.instance.get_run_records(RunsFilter(tags={"llm_assets/launched_by": "cli-build"},
                                                           statuses=[DagsterRunStatus.STARTED]))
        steps = set()
        for record in records:
            if record.create_timestamp.timestamp() < self.started - 1:
                continue
            for entry in self.instance.all_logs(record.dagster_run.run_id, of_type=DagsterEventType.STEP_START):
                steps.add(entry.step_key)
        return steps

    def checkpoint_written(self, asset: str) -> bool:
        """`last.ckpt` of `asset` was (re)written by this build."""
        path = self.lake / asset / "last.ckpt"
        try:
            return path.stat().st_mtime > self.started
        except FileNotFoundError:
            return False


@dataclass
class Fault:
    name: str
    where: str  # the point, in words
    ready: Callable[[Watch], bool]


def step_started(step: str) -> Callable[[Watch], bool]:
    return lambda watch: step in watch.steps_started()


def checkpoint_written(asset: str) -> Callable[[Watch], bool]:
    return lambda watch: watch.checkpoint_written(asset)


FAULTS = [
    Fault("partition stage", "extracted_documents started in a partition run (a worker process)",
          step_started("extracted_documents")),
    Fault("global stage", "deduplicated_documents started (global MinHash over every partition)",
          step_started("deduplicated_documents")),
    Fault("tokenization", "token_shards started", step_started("token_shards")),
    Fault("pretraining", "base_checkpoint wrote last.ckpt (step 10 of 30)", checkpoint_written("base_checkpoint")),
    Fault("pretraining, resumed", "base_checkpoint wrote last.ckpt again after resuming (step 20 of 30)",
          checkpoint_written("base_checkpoint")),
    Fault("fine-tuning", "assistant_checkpoint wrote last.ckpt", checkpoint_written("assistant_checkpoint")),
    Fault("evaluation", "benchmark_scores started", step_started("benchmark_scores")),
]
TEST_FAULTS = FAULTS[:5]


@dataclass
class Outcome:
    fault: str
    where: str
    killed: bool
    seconds: float
    peak_rss: int
    survivors: list[int] = field(default_factory=list)  # processes of the build alive after the kill
    resumed_at: list[int] = field(default_factory=list)  # training steps this build resumed at
    returncode: int | None = None
    output: str = ""


def build_env(home: Path, data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "DAGSTER_HOME": str(home), "LLM_ASSETS_DATA_DIR": str(data_dir),
           "LLM_ASSETS_AUTOMATION": "off"}
    env.pop("LLM_ASSETS_PROFILE", None)
    return env


def run_until(home: Path, data_dir: Path, fault: Fault | None, log: Path, timeout: float = 900,
              poll: float = 0.5) -> Outcome:
    """Start a build; SIGKILL it when `fault` is ready (None: let it finish)."""
    started = time.time()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "llm_assets", "build", "--profile", PROFILE], cwd=REPO,
                                env=build_env(home, data_dir), stdout=out, stderr=subprocess.STDOUT)
    watch = Watch(home, data_dir / PROFILE, started)
    peak, killed, tree = 0, False, set()
    try:
        while proc.poll() is None:
            if time.time() - started > timeout:
                raise TimeoutError(f"build did not reach {fault.where if fault else 'its end'} in {timeout:.0f}s; "
                                   f"see {log}")
            tree = descendants(proc.pid) or tree
            peak = max(peak, tree_rss(proc.pid))
            if fault is not None and fault.ready(watch):
                tree = descendants(proc.pid)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                killed = True
                break
            time.sleep(poll)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seconds = time.time() - started
    # the build's children must follow it: give the kernel and the watchdogs a few seconds, no more
    deadline = time.time() + 10
    while any(alive(p) for p in tree) and time.time() < deadline:
        time.sleep(0.1)
    survivors = sorted(p for p in tree if alive(p))
    for pid in survivors:  # leave nothing behind for the next fault, but report it
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    text = log.read_text()
    return Outcome(fault.name if fault else "none (rerun to the end)", fault.where if fault else "-", killed,
                   seconds, peak, survivors, [int(m.group(1)) for m in RESUMED.finditer(text)],
                   None if killed else proc.returncode, text)


def run_fault_table(work: Path, faults: list[Fault], timeout: float = 900) -> list[Outcome]:
    """Each fault on the rerun of the previous one, then a rerun to the end, on one instance and lake."""
    home = work / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    outcomes = []
    for i, fault in enumerate([*faults, None]):
        outcomes.append(run_until(home, work / "data", fault, work / f"build-{i}.log", timeout))
    return outcomes


# ---------------------------------------------------------------------------------------------- comparing


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lake_outputs(lake: Path) -> dict[str, object]:
    """What an uninterrupted build and an interrupted-then-rerun build must agree on."""
    outputs: dict[str, object] = {}
    for stage in CURATION_STAGES:
        for side in ("kept", "removed"):
            files = sorted((lake / stage / side).glob("*.parquet"))
            if not files:
                continue
            frame = pl.concat([pl.read_parquet(f, columns=["warc_record_id"]) for f in files], how="vertical")
            outputs[f"{stage}/{side} ids"] = sorted(frame["warc_record_id"].to_list())
    shards = lake / "token_shards"
    for path in sorted(shards.glob("*.bin")):
        outputs[f"token_shards/{path.name}"] = _digest(path)
    outputs["token_shards/manifest.json content"] = json_content_digest(shards / "manifest.json")
    outputs["tokenizer/tokenizer.json"] = _digest(lake / "tokenizer" / "tokenizer.json")
    for model in ("base_checkpoint", "assistant_checkpoint"):
        weights = lake / model / "model.safetensors"
        if weights.is_file():
            outputs[f"{model}/model.safetensors"] = _digest(weights)
    return outputs


def differences(reference: dict, rerun: dict) -> list[str]:
    return [key for key in sorted(set(reference) | set(rerun)) if reference.get(key) != rerun.get(key)]


def print_table(outcomes: list[Outcome], stream=sys.stdout) -> None:
    header = f"{'fault':<24} {'outcome':<44} {'wall':>7} {'peak RSS':>9}  rerun resumed training at"
    print(header + "\n" + "-" * len(header), file=stream)
    for o in outcomes:
        if o.killed:
            outcome = "killed; no process left" if not o.survivors else f"killed; {len(o.survivors)} orphan(s)!"
        else:
            outcome = "finished, exit 0" if o.returncode == 0 else f"FAILED, exit {o.returncode}"
        resumed = ", ".join(f"step {s}" for s in o.resumed_at) or "-"
        print(f"{o.fault:<24} {outcome:<44} {o.seconds:>6.1f}s {o.peak_rss / 2**20:>7.0f}MB  {resumed}", file=stream)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", choices=("all", "test"), default="all")
    parser.add_argument("--work", type=Path, help="folder for the instance and lakes (default: a temporary one)")
    parser.add_argument("--reference", type=Path,
                        help="the lake (…/smoke) of an uninterrupted build; default: build one first")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="llm_assets_faults_"))
    work.mkdir(parents=True, exist_ok=True)
    reference = args.reference
    if reference is None:
        ref = run_fault_table(work / "reference", [])
        print_table(ref)
        reference = work / "reference" / "data" / PROFILE
    outcomes = run_fault_table(work / "faults", FAULTS if args.faults == "all" else TEST_FAULTS)
    print_table(outcomes)
    diff = differences(lake_outputs(reference), lake_outputs(work / "faults" / "data" / PROFILE))
    print("\noutputs equal to the uninterrupted build's" if not diff else f"\noutputs that differ: {diff}")
    return 0 if outcomes[-1].returncode == 0 and not diff else 1


if __name__ == "__main__":
    sys.exit(main())
