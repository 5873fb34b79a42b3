"""Pretraining as a plain function: JSON config in, checkpoint folder and metrics out.

The out folder is the checkpoint folder: `last.ckpt` (resume), `model.safetensors`, `config.json`,
`tokenizer.json`, `metrics.json` and `loss_curve.png`. A run that finds `last.ckpt` there resumes from it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

from llm_assets.lake import file_sha256
from llm_assets.modeling.checkpoint import save_checkpoint_folder, write_config_and_tokenizer
from llm_assets.modeling.model import ModelConfig
from llm_assets.profiles import ModelSize, TrainSize, get_profile
from llm_assets.tokens.shards import load_manifest
from llm_assets.training.callbacks import (
    LAST_CHECKPOINT,
    LastCheckpoint,
    ProgressReporter,
    save_last_checkpoint,
)
from llm_assets.training.checks import loss_is_finite, unigram_entropy
from llm_assets.training.data import TokenWindowData
from llm_assets.training.flops import flops_per_token, measure_matmul_peak
from llm_assets.training.module import LanguageModelTask, OptimizerConfig

logger = logging.getLogger(__name__)

RUNTIME_KEYS = ("accelerator", "devices", "num_nodes", "strategy", "precision")


@dataclass(frozen=True)
class PretrainConfig:
    shards: str
    tokenizer: str
    out: str
    model: ModelSize
    train: TrainSize
    peak_flops: float | None = None  # per device; measured with a matmul benchmark when absent
    resume: bool = True
    log_every: int = 10


def _sizes(cls, base, overrides: dict, where: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"{where}: unknown {cls.__name__} fields {sorted(unknown)}; known: {sorted(known)}")
    if base is None:
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.default is dataclasses.MISSING and f.name not in overrides]
        if missing:
            raise ValueError(f"{where}: {cls.__name__} fields {missing} missing (or give a \"profile\")")
        return cls(**overrides)
    return dataclasses.replace(base, **overrides)


def pretrain_config_from_dict(values: dict, where: str = "pretrain config") -> PretrainConfig:
    """Build a `PretrainConfig` from JSON-like values; `profile` supplies defaults for `model`/`train`.

    Top-level accelerator/devices/num_nodes/strategy/precision override the `train` section.
    """
    values = dict(values)
    for key in ("shards", "tokenizer", "out"):
        if not values.get(key):
            raise ValueError(f"{where}: {key!r} is required (shards folder, tokenizer.json path, out folder)")
    profile = get_profile(values.pop("profile")) if values.get("profile") else None
    train_overrides = dict(values.pop("train", {}) or {})
    for key in RUNTIME_KEYS:
        if key in values:
            train_overrides[key] = values.pop(key)
    model = _sizes(ModelSize, profile.model if profile else None, values.pop("model", {}) or {}, f"{where} model")
    train = _sizes(TrainSize, profile.train if profile else None, train_overrides, f"{where} train")
    known = {f.name for f in dataclasses.fields(PretrainConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    return PretrainConfig(model=model, train=train, **values)


def read_json_config(path: str | os.PathLike, kind: str) -> dict:
    """A training program's JSON config file, with errors that name the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{kind} config {path} not found") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{kind} config {path}: not valid JSON ({err})") from None


def load_pretrain_config(path: str | os.PathLike) -> PretrainConfig:
    return pretrain_config_from_dict(read_json_config(path, "pretrain"), where=str(path))


def resolve_runtime(train: TrainSize) -> tuple[str, str]:
    """(accelerator, precision) with "auto" resolved: bf16-mixed on a GPU that supports it, 32-true on CPU."""
    accelerator = train.accelerator
    if accelerator == "auto":
        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    precision = train.precision
    if precision == "auto":
        on_gpu = accelerator in ("gpu", "cuda") and torch.cuda.is_available()
        precision = "bf16-mixed" if on_gpu and torch.cuda.is_bf16_supported() else "32-true"
    return accelerator, precision


def _check_tokenizer(config: PretrainConfig, manifest: dict) -> None:
    tokenizer = Path(config.tokenizer)
    if not tokenizer.is_file():
        raise FileNotFoundError(f"tokenizer {tokenizer} not found (set \"tokenizer\" in the pretrain config)")
    expected = manifest.get("tokenizer_sha256")
    if expected and file_sha256(tokenizer) != expected:
        raise ValueError(f"tokenizer {tokenizer} is not the one that wrote the shards in {config.shards} "
                         f"(sha256 differs from the manifest); re-run token_shards or point at its tokenizer")


def plot_loss_curve(steps: list[dict], validations: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    if steps:
        ax.plot([s["step"] for s in steps], [s["loss"] for s in steps], label="train", linewidth=1)
    if validations:
        ax.plot([v["step"] for v in validations], [v["loss"] for v in validations], "o-", label="validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def epoch_capped(train: TrainSize, train_tokens: int, tokens_per_step: int) -> tuple[TrainSize, str | None]:
    """`train` with max_steps cut to `max_epochs` passes over `train_tokens`, and why; unchanged when not cut.

    A cut run keeps its schedule's shape: warmup is at most a tenth of the steps left.
    """
    if train.max_epochs is None or train_tokens <= 0:
        return train, None
    steps = max(1, math.ceil(train.max_epochs * train_tokens / tokens_per_step))
    if steps >= train.max_steps:
        return train, None
    capped = dataclasses.replace(train, max_steps=steps, warmup_steps=min(train.warmup_steps, max(1, steps // 10)))
    return capped, (f"max_steps {train.max_steps} cut to {steps}: max_epochs {train.max_epochs:g} passes over "
                    f"{train_tokens:,} training tokens")


def build_trainer(config: PretrainConfig, callbacks: Sequence[L.Callback]) -> L.Trainer:
    train = config.train
    accelerator, precision = resolve_runtime(train)
    eval_every = min(train.eval_every, train.max_steps) if train.eval_every > 0 else None
    return L.Trainer(
        accelerator=accelerator, devices=train.devices, num_nodes=train.num_nodes, strategy=train.strategy,
        precision=precision, max_steps=train.max_steps, accumulate_grad_batches=train.grad_accum,
        gradient_clip_val=train.grad_clip or None, gradient_clip_algorithm="norm",
        val_check_interval=eval_every * train.grad_accum if eval_every else None,
        check_val_every_n_epoch=None, limit_val_batches=train.eval_batches,
        num_sanity_val_steps=0, use_distributed_sampler=False, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=config.out,
        callbacks=list(callbacks),
    )


def run_pretraining(config: PretrainConfig, emit: Callable[[str], None] = print,
                    callbacks: Sequence[L.Callback] = ()) -> dict:
    """Train (or resume) and write the checkpoint folder; return the metrics (also in `metrics.json`).

    `emit` receives progress lines on global rank zero. Under DDP every rank runs this function; only
    rank zero writes files and returns full metrics.
    """
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(config.shards)
    _check_tokenizer(config, manifest)
    train = config.train
    L.seed_everything(train.seed, workers=True, verbose=False)
    model_config = ModelConfig.from_size(config.model, vocab_size=int(manifest["vocab_size"]))
    data = TokenWindowData(config.shards, model_config.context, train.micro_batch, train.max_steps,
                           train.grad_accum, train.eval_batches, train.seed)
    trainer = build_trainer(config, [LastCheckpoint(out, train.checkpoint_every), *callbacks])
    world = trainer.world_size
    tokens_per_step = train.micro_batch * model_config.context * train.grad_accum * world
    train, cut = epoch_capped(train, data.train_windows.tokens, tokens_per_step)
    if cut:  # the step count is part of the trainer, the data stream and the schedule: rebuild them
        config = dataclasses.replace(config, train=train)
        data.max_steps = train.max_steps
        trainer = build_trainer(config, [LastCheckpoint(out, train.checkpoint_every), *callbacks])
    optimizer = OptimizerConfig(lr=train.lr, warmup_steps=train.warmup_steps, max_steps=train.max_steps,
                                min_lr_ratio=train.min_lr_ratio, weight_decay=train.weight_decay)
    task = LanguageModelTask(model_config, optimizer, mode="pretrain", compile=train.compile)

    accelerator, precision = resolve_runtime(train)
    peak = config.peak_flops or measure_matmul_peak("cuda" if accelerator in ("gpu", "cuda") else "cpu")
    reporter = ProgressReporter(emit, tokens_per_step, flops_per_token(model_config), peak * world,
                                config.log_every)
    trainer.callbacks.insert(0, reporter)  # before LastCheckpoint: a checkpoint holds its own step

    ckpt_path = out / LAST_CHECKPOINT
    resume_from = str(ckpt_path) if config.resume and ckpt_path.is_file() else None
    if trainer.is_global_zero:
        write_config_and_tokenizer(model_config, config.tokenizer, out)
        emit(f"pretraining {task.model.num_parameters():,} parameters on {accelerator} x{world} ({precision}), "
             f"{train.max_steps} steps of {tokens_per_step:,} tokens"
             + (f" ({cut})" if cut else "") + (f", resuming from {ckpt_path}" if resume_from else ""))
    trainer.fit(task, datamodule=data, ckpt_path=resume_from)
    save_last_checkpoint(trainer, out)

    val_loss = None
    if data.validation_windows.windows and config.train.eval_batches > 0:
        trainer.validate(task, datamodule=data, verbose=False)
        val_loss = float(trainer.callback_metrics["val/loss"])
    if not trainer.is_global_zero:
        return {}

    steps = reporter.steps
    tail = steps[-max(1, len(steps) // 10):] if steps else []
    train_loss = sum(s["loss"] for s in tail) / len(tail) if tail else None
    throughput = reporter.throughput()
    finite, finite_message = loss_is_finite(train_loss, *([val_loss] if val_loss is not None else []))
    save_checkpoint_folder(task.model, model_config, config.tokenizer, out,
                           extra={"trained_steps": trainer.global_step, "tokens_seen": trainer.global_step *
                                  tokens_per_step})
    curve = plot_loss_curve(steps, reporter.validations, out / "loss_curve.png")
    metrics = {
        "train_loss": train_loss,
        "val_loss": val_loss,
        "val_perplexity": math.exp(val_loss) if val_loss is not None and val_loss < 50 else None,
        "loss_finite": finite,
        "loss_finite_message": finite_message,
        "unigram_entropy": unigram_entropy(config.shards, "train", max_tokens=50_000_000),
        "steps": trainer.global_step,
        "steps_this_run": len(reporter.steps_this_run),
        "tokens_seen": trainer.global_step * tokens_per_step,
        "epochs": trainer.global_step * tokens_per_step / max(1, data.train_windows.tokens),
        "steps_cut_by_epochs": cut,
        "tokens_per_s": throughput["tokens_per_s"],
        "steps_per_s": throughput["steps_per_s"],
        "mfu": throughput["mfu"],
        "flops_per_token": flops_per_token(model_config),
        "peak_flops": peak * world,
        "parameters": task.model.num_parameters(),
        "world_size": world,
        "precision": precision,
        "loss_curve": str(curve),
        "path": str(out),
        "resumed_from": resume_from,
        "resumed_at_step": reporter.start_step,
        "history": reporter.steps_this_run,  # the whole training's steps are in the loss curve
        "validations": reporter.validations,
    }
    tmp = out / ".metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, out / "metrics.json")
    emit(f"done: train loss {train_loss} val loss {val_loss} tokens/s {throughput['tokens_per_s']:,.0f}"
         + (f" MFU {throughput['mfu']:.2%}" if throughput["mfu"] is not None else "") + f" -> {out}")
    return metrics
