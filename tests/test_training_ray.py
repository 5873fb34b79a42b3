"""Pretraining (and fine-tuning) as a Ray Train job on two CPU workers (gloo), launched as the assets do.

The job must train what Lightning's own DDP launcher trains from the same config (exactly: same initial
weights, same windows per rank, gradients averaged over the same two ranks), match one process that takes the
same global batch (within the spread of data sampling), and resume from last.ckpt after a crash.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import dagster  # noqa: E402
import lightning as L  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from sample_data import OBJECTS, SUBJECTS, VERBS, write_sample_corpus  # noqa: E402

from llm_assets.defs.training import TrainingLauncher, launch  # noqa: E402
from llm_assets.engine import RAY_ADDRESS_ENV  # noqa: E402
from llm_assets.profiles import Runtime, get_profile  # noqa: E402
from llm_assets.training.__main__ import main as training_main  # noqa: E402
from llm_assets.training.config import PretrainConfig, SFTConfig, config_from_dict  # noqa: E402
from llm_assets.training.pretrain import run_pretraining  # noqa: E402
from llm_assets.training.ray_train import (  # noqa: E402
    NO_RAY,
    RAY_RUN_FOLDER,
    RUNTIME_ENV_ENV,
    RayScaling,
    ray_scaling,
    runtime_env_from_environment,
    train_on_ray,
)
from llm_assets.training.sft_data import load_conversations, render_examples  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODEL = {"n_layer": 1, "n_head": 2, "n_kv_head": 1, "d_model": 32, "d_ff": 64, "context": 32}
TRAIN = {"max_steps": 10, "micro_batch": 4, "grad_accum": 1, "lr": 3e-3, "warmup_steps": 2,
         "checkpoint_every": 5, "eval_every": 5, "eval_batches": 2}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_sample_corpus(tmp_path_factory.mktemp("corpus"), documents=150, vocab_size=300)


def config_values(corpus, out, **runtime) -> dict:
    """The pretrain config of these tests: 2 CPU workers of micro-batch 4 unless `runtime` says otherwise."""
    values = {"shards": str(corpus["shards"]), "tokenizer": str(corpus["tokenizer"]), "out": str(out),
              "model": MODEL, "train": dict(TRAIN), "accelerator": "cpu", "devices": 2, "strategy": "ddp",
              "peak_flops": 1e10, "log_every": 1}
    values["train"].update(runtime.pop("train", {}))
    return {**values, **runtime}


def losses(metrics: dict) -> list[float]:
    return [step["loss"] for step in metrics["history"]]


@dataclass
class RayRun:
    result: dagster.ExecuteInProcessResult
    instance: dagster.DagsterInstance
    out: Path
    metrics: dict


@pytest.fixture(scope="module")
def ray_run(corpus, tmp_path_factory) -> RayRun:
    """The 2-worker job as the base_checkpoint asset runs it: `launch` with `TrainingLauncher(backend="ray")`,
    the program under Dagster Pipes, a local Ray cluster started by the program for the run."""
    folder = tmp_path_factory.mktemp("ray_run")
    config = config_values(corpus, folder / "out")

    @dagster.asset
    def base_checkpoint(context: dagster.AssetExecutionContext, launcher: TrainingLauncher):
        yield from launch(context, launcher, "pretrain", config, folder / "configs" / "pretrain.json")

    instance = dagster.DagsterInstance.ephemeral()
    with pytest.MonkeyPatch.context() as env:
        env.delenv(RAY_ADDRESS_ENV, raising=False)  # a cluster of the test's own, never one the caller runs
        env.delenv(RUNTIME_ENV_ENV, raising=False)
        result = dagster.materialize([base_checkpoint], instance=instance, raise_on_error=False,
                                     resources={"launcher": TrainingLauncher(backend="ray")})
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    out = folder / "out"
    return RayRun(result, instance, out, json.loads((out / "metrics.json").read_text()))


def test_ray_backend_trains_two_workers_and_reports_through_pipes(ray_run):
    metadata = {k: v.value for k, v in ray_run.result.asset_materializations_for_node("base_checkpoint")[-1]
                .metadata.items()}
    assert metadata["world_size"] == 2 and metadata["steps"] == 10
    assert metadata["tokens_seen"] == 10 * 4 * 32 * 2  # steps x micro-batch x context x workers
    assert metadata["val_loss"] > 0 and metadata["path"] == str(ray_run.out)
    # the asset draws the loss curve from the file the program names (the Pipes message carries no image)
    assert metadata["loss_curve_plot"].startswith("![loss curve](data:image/png;base64,")
    for name in ("last.ckpt", "model.safetensors", "config.json", "tokenizer.json", "loss_curve.png"):
        assert (ray_run.out / name).is_file(), name
    assert (ray_run.out / RAY_RUN_FOLDER).is_dir()
    logs = [e.user_message for e in ray_run.instance.all_logs(ray_run.result.run_id)]
    assert any("on cpu x2" in line for line in logs) and any("step 10/10 loss" in line for line in logs), \
        "rank zero's progress lines should arrive as Dagster log messages"


def test_two_ray_workers_train_what_lightning_ddp_trains(ray_run, corpus, tmp_path):
    """Same config through Lightning's own DDP launcher (2 processes): the same model, step by step. Both
    draw each rank's windows from (seed, micro-batch, rank) and average gradients over gloo, so only float
    summation order may differ; 1e-4 nats is far below any real change (a step moves the loss by 0.02-0.1)."""
    config_path = tmp_path / "ddp.json"
    config_path.write_text(json.dumps(config_values(corpus, tmp_path / "ddp")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_PIPES")}
    done = subprocess.run([sys.executable, "-m", "llm_assets.training", "pretrain", "--config",
                           str(config_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert ddp["world_size"] == ray_run.metrics["world_size"] == 2
    assert losses(ray_run.metrics) == pytest.approx(losses(ddp), abs=1e-4)
    assert ray_run.metrics["val_loss"] == pytest.approx(ddp["val_loss"], abs=1e-4)


def test_two_ray_workers_match_one_process_with_the_same_global_batch(ray_run, corpus, tmp_path):
    """2 workers x 4 windows against 1 process x 8 windows: same initial weights, schedule and tokens per
    step, but other windows (the stream is keyed by rank), so the curves differ as two data samples do. Over 8
    seeds of the single process a step's loss varies by sd <= 0.04 and the validation loss by sd 0.03 (the
    initial weights varying too); the bounds are about 4 sd. The exact check is the one against Lightning DDP.
    """
    single = run_pretraining(config_from_dict(PretrainConfig, config_values(
        corpus, tmp_path / "single", devices=1, strategy="auto", train={"micro_batch": 8}), "single-process"),
        emit=lambda _: None)
    ray_metrics = ray_run.metrics
    assert single["world_size"] == 1 and single["tokens_seen"] == ray_metrics["tokens_seen"]
    assert len(losses(single)) == len(losses(ray_metrics)) == 10
    assert max(abs(a - b) for a, b in zip(losses(ray_metrics), losses(single), strict=True)) < 0.15
    assert ray_metrics["val_loss"] == pytest.approx(single["val_loss"], abs=0.1)
    # both learned: the end of training is well below the start
    for run in (ray_metrics, single):
        assert losses(run)[-1] < losses(run)[0] - 0.3


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray session in this process for the jobs started from here: train_on_ray joins it."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False)
    yield
    if started:
        ray.shutdown()


def crash_at(step: int) -> L.Callback:
    """A callback that fails every worker at optimizer step `step` (defined here so Ray ships it by value)."""

    class CrashAt(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == step:
                raise RuntimeError(f"simulated crash at step {step}")

    return CrashAt()


def test_crashed_ray_job_resumes_from_last_ckpt_and_equals_the_uninterrupted_run(ray_run, ray_session, corpus,
                                                                                  tmp_path):
    config = config_from_dict(PretrainConfig, config_values(corpus, tmp_path / "crashed"), "crash test")
    out = tmp_path / "crashed"
    with pytest.raises(RuntimeError, match="simulated crash at step 7"):
        train_on_ray("pretrain", config, emit=lambda _: None, callbacks=[crash_at(7)])
    assert torch.load(out / "last.ckpt", weights_only=True)["global_step"] == 5
    assert not (out / "model.safetensors").exists()
    lines: list[str] = []
    resumed = train_on_ray("pretrain", config, emit=lines.append)
    assert any(line.endswith(f"resuming from {out / 'last.ckpt'}") for line in lines)
    assert "resumed from last.ckpt at step 5/10" in lines
    assert resumed["resumed_at_step"] == 5 and resumed["steps_this_run"] == 5 and resumed["steps"] == 10
    reference = ray_run.metrics
    assert losses(resumed) == pytest.approx(losses(reference)[5:], abs=1e-4)
    assert resumed["val_loss"] == pytest.approx(reference["val_loss"], abs=1e-4)
    want, got = load_file(str(ray_run.out / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert max((want[k] - got[k]).abs().max().item() for k in want) < 1e-4


def test_sft_on_two_ray_workers(ray_run, ray_session, corpus, tmp_path):
    """Fine-tuning runs on Ray the same way: the Ray-pretrained checkpoint as base, short chat examples."""
    rows = [{"instruction": subject, "input": "", "output": f"{verb} {thing}"}
            for subject in SUBJECTS for verb in VERBS for thing in OBJECTS]
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    examples = tmp_path / "examples.parquet"
    stats = render_examples(load_conversations([tmp_path / "chat.jsonl"]), corpus["tokenizer"],
                            MODEL["context"], examples)
    assert stats["examples"] > 100
    config = config_from_dict(SFTConfig, {
        "examples": str(examples), "base": str(ray_run.out), "out": str(tmp_path / "sft"),
        "sft": {"max_steps": 6, "micro_batch": 4, "lr": 3e-3, "warmup_steps": 1, "checkpoint_every": 3,
                "eval_examples": 32}, "accelerator": "cpu", "devices": 2, "strategy": "ddp"}, "sft test")
    metrics = train_on_ray("sft", config, emit=lambda _: None)
    assert metrics["world_size"] == 2 and metrics["steps"] == 6
    assert metrics["assistant_loss_after"] < metrics["assistant_loss_before"]
    assert (tmp_path / "sft" / "model.safetensors").is_file() and (tmp_path / "sft" / "last.ckpt").is_file()


def test_runtime_fields_give_the_ray_layout():
    assert ray_scaling(Runtime(accelerator="cpu", devices=2, strategy="ddp")) == RayScaling(2, False, "ddp")
    assert ray_scaling(Runtime(accelerator="gpu", devices=4, num_nodes=2, strategy="fsdp")) == \
        RayScaling(8, True, "fsdp")
    gpu_profile = get_profile("gpu").train
    assert ray_scaling(gpu_profile) == RayScaling(1, True, "ddp")  # the gpu profile: one GPU worker
    assert ray_scaling(Runtime(accelerator="auto"), cluster_gpus=0).use_gpu is False
    assert ray_scaling(Runtime(accelerator="auto"), cluster_gpus=8).use_gpu is True
    for runtime, field in [(Runtime(devices="auto"), "devices = 'auto'"), (Runtime(devices=0), "devices = 0"),
                           (Runtime(strategy="deepspeed"), "strategy = 'deepspeed'"),
                           (Runtime(accelerator="mps"), "accelerator = 'mps'")]:
        with pytest.raises(ValueError, match=f"training on Ray: {field}"):
            ray_scaling(runtime)


def test_runtime_env_for_remote_workers_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(RUNTIME_ENV_ENV, raising=False)
    assert runtime_env_from_environment() is None
    wanted = {"pip": ["llm_assets"], "env_vars": {"LLM_ASSETS_PROFILE": "gpu"}}
    monkeypatch.setenv(RUNTIME_ENV_ENV, json.dumps(wanted))
    assert runtime_env_from_environment() == wanted
    for text, message in [("{pip", "is not valid JSON"), ('["pip"]', "must be a JSON object")]:
        monkeypatch.setenv(RUNTIME_ENV_ENV, text)
        with pytest.raises(ValueError, match=f"LLM_ASSETS_RAY_RUNTIME_ENV {message}"):
            runtime_env_from_environment()


def test_program_with_ray_fails_in_one_line_before_any_cluster(corpus, tmp_path, capsys, monkeypatch):
    config_path = tmp_path / "pretrain.json"
    config_path.write_text(json.dumps(config_values(corpus, tmp_path / "out", devices="auto")))
    monkeypatch.delenv("DAGSTER_PIPES_CONTEXT", raising=False)
    assert training_main(["pretrain", "--config", str(config_path), "--ray"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("llm_assets.training pretrain: error: training on Ray: devices = 'auto'")
    assert (tmp_path / "pretrain.json.error").read_text().startswith("training on Ray: devices = 'auto'")
    assert not (tmp_path / "out").exists()  # refused before any job started
    # without Ray installed the message says what to install
    monkeypatch.setitem(sys.modules, "ray", None)
    config_path.write_text(json.dumps(config_values(corpus, tmp_path / "out")))
    assert training_main(["pretrain", "--config", str(config_path), "--ray"]) == 1
    assert NO_RAY in capsys.readouterr().err and "pip install -e '.[ray]'" in NO_RAY
