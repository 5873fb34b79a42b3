"""A training run on a real full disk (a small tmpfs) fails with one line that names the cause and the folder,
from the program and from the asset that launched it, and never leaves an empty error file."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster
import pytest
from sample_data import write_sample_corpus

from llm_assets.training import error_path
from llm_assets.training.failure import reported_failure, reserve_path

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_sample_corpus(tmp_path_factory.mktemp("corpus"), documents=120, vocab_size=300)


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs: a filesystem that really runs out of space (ENOSPC from the kernel, not a mock)."""
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs a tmpfs mount, which needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave: int) -> None:
    """Take all but `leave` bytes of the disk's free space."""
    with open(disk / "filler", "wb") as f:
        os.posix_fallocate(f.fileno(), 0, max(0, shutil.disk_usage(disk).free - leave))


def program_config(corpus, out: Path) -> dict:
    return {"shards": str(corpus["shards"]), "tokenizer": str(corpus["tokenizer"]), "out": str(out),
            "model": {"n_layer": 1, "n_head": 2, "n_kv_head": 1, "d_model": 32, "d_ff": 64, "context": 32},
            "train": {"max_steps": 6, "micro_batch": 4, "lr": 3e-3, "warmup_steps": 1, "grad_accum": 1,
                      "checkpoint_every": 3, "eval_every": 3, "eval_batches": 1},
            "accelerator": "cpu", "peak_flops": 1e10, "log_every": 2}


def run_program(config_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llm_assets.training", "pretrain", "--config", str(config_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, proc.stderr[-3000:]
    return errors[0]


def test_a_disk_that_fills_during_training_is_named_in_the_error_file(corpus, small_disk):
    config_path = small_disk / "configs" / "pretrain.json"
    config_path.parent.mkdir()
    config_path.write_text(json.dumps(program_config(corpus, small_disk / "base_checkpoint")))
    fill(small_disk, 160_000)  # room for config.json, tokenizer.json and the error line; not for last.ckpt
    line = one_error_line(run_program(config_path))
    # the half-written last.ckpt is removed first, so what is free is what the rerun will find
    assert "No space left on device" in line and re.search(f"{small_disk}/base_checkpoint has [0-9,]+ bytes free", line)
    written = error_path(config_path).read_text()
    assert written.count("\n") == 1 and written.strip() == line.split(": error: ", 1)[1]
    assert not reserve_path(config_path).exists()
    assert not list((small_disk / "base_checkpoint").glob("*.tmp")), "a half-written last.ckpt stays behind"


def test_a_disk_too_full_for_the_error_file_leaves_none_and_the_launcher_names_it(corpus, small_disk):
    config_path = small_disk / "configs" / "pretrain.json"
    config_path.parent.mkdir()
    config_path.write_text(json.dumps(program_config(corpus, small_disk / "base_checkpoint")))
    fill(small_disk, 0)
    line = one_error_line(run_program(config_path))
    assert "No space left on device" in line and f"{small_disk}" in line
    assert not error_path(config_path).exists()  # no empty file that would hide the cause
    reported = reported_failure(config_path, [small_disk / "base_checkpoint", config_path.parent])  # as launch()
    assert reported.startswith(f"it left no error message in {error_path(config_path)} (No space left on device")
    assert f"{small_disk}/base_checkpoint has 0 bytes free" in reported and f"{small_disk}/base_checkpoint" in line


def test_the_asset_names_the_full_disk_in_one_line(corpus, small_disk, tmp_path):
    from llm_assets.defs.training import TrainingLauncher, launch

    config_path = tmp_path / "configs" / "pretrain.json"
    config = program_config(corpus, small_disk / "base_checkpoint")

    @dagster.asset
    def base_checkpoint(context: dagster.AssetExecutionContext):
        yield from launch(context, TrainingLauncher(), "pretrain", config, config_path)

    fill(small_disk, 160_000)
    result = dagster.materialize([base_checkpoint], instance=dagster.DagsterInstance.ephemeral(),
                                 raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error, messages = failure.step_failure_data.error, []
    while error is not None:  # Dagster wraps the asset's exception in its own step error
        messages.append(error.message.strip())
        error = error.cause
    [message] = [m for m in messages if m.startswith("RuntimeError: ")]
    assert message.startswith("RuntimeError: base_checkpoint: the pretrain program failed: ")
    assert "No space left on device" in message and "\n" not in message
    assert re.search(f"{small_disk}/base_checkpoint has [0-9,]+ bytes free; free space there and rerun", message)
