"""Pretraining as a plain function: JSON config in, checkpoint folder and metrics out.

The out folder is the checkpoint folder: `last.ckpt` (resume), `model.safetensors`, `config.json`,
`tokenizer.json`, `metrics.json` and `loss_curve.png`. A run that finds `last.ckpt` there resumes from it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L

from llm_assets.lake import file_sha256
from llm_assets.modeling.checkpoint import save_checkpoint_folder, write_config_and_tokenizer
from llm_assets.modeling.model import ModelConfig
from llm_assets.profiles import TrainSize
from llm_assets.tokens.shards import load_manifest
from llm_assets.training.callbacks import (
    LAST_CHECKPOINT,
    LastCheckpoint,
    ProgressReporter,
    save_last_checkpoint,
)
from llm_assets.training.checks import loss_is_finite, unigram_entropy
from llm_assets.training.config import PretrainConfig, TrainerFactory, resolve_runtime
from llm_assets.training.data import TokenWindowData
from llm_assets.training.flops import flops_per_token, measure_matmul_peak
from llm_assets.training.module import LanguageModelTask, OptimizerConfig
from llm_assets.training.report import final_train_loss, plot_loss_curve, write_metrics
from llm_assets.training.resume import resumable_checkpoint

logger = logging.getLogger(__name__)

def _check_tokenizer(config: PretrainConfig, manifest: dict) -> None:
    tokenizer = Path(config.tokenizer)
    if not tokenizer.is_file():
        raise FileNotFoundError(f"tokenizer {tokenizer} not found (set \"tokenizer\" in the pretrain config)")
    expected = manifest.get("tokenizer_sha256")
    if expected and file_sha256(tokenizer) != expected:
        raise ValueError(f"tokenizer {tokenizer} is not the one that wrote the shards in {config.shards} "
                         f"(sha256 differs from the manifest); re-run token_shards or point at its tokenizer")


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


def build_trainer(config: PretrainConfig, callbacks: Sequence[L.Callback],
                  make_trainer: TrainerFactory = L.Trainer) -> L.Trainer:
    train = config.train
    accelerator, precision = resolve_runtime(train)
    eval_every = min(train.eval_every, train.max_steps) if train.eval_every > 0 else None
    return make_trainer(
        accelerator=accelerator, devices=train.devices, num_nodes=train.num_nodes, strategy=train.strategy,
        precision=precision, max_steps=train.max_steps, accumulate_grad_batches=train.grad_accum,
        gradient_clip_val=train.grad_clip or None, gradient_clip_algorithm="norm",
        val_check_interval=eval_every * train.grad_accum if eval_every else None,
        check_val_every_n_epoch=None, limit_val_batches=train.eval_batches,
        num_sanity_val_steps=0, use_distributed_sampler=False, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=config.out,
        callbacks=list(callbacks),
    )


def _data_and_trainer(
        config: PretrainConfig, model_config: ModelConfig, out: Path, callbacks: Sequence[L.Callback],
        make_trainer: TrainerFactory) -> tuple[PretrainConfig, TokenWindowData, L.Trainer, int, str | None]:
    """(config, data, trainer, tokens per step, why max_steps was cut), with max_steps cut to max_epochs: the step
    count is part of the trainer, the data stream and the schedule, so a cut rebuilds them."""
    train = config.train
    data = TokenWindowData(config.shards, model_config.context, train.micro_batch, train.max_steps,
                           train.grad_accum, train.eval_batches, train.seed)
    trainer = build_trainer(config, [LastCheckpoint(out, train.checkpoint_every), *callbacks],
                            make_trainer)
    tokens_per_step = train.micro_batch * model_config.context * train.grad_accum * trainer.world_size
    train, cut = epoch_capped(train, data.train_windows.tokens, tokens_per_step)
    if cut:
        config = dataclasses.replace(config, train=train)
        data.max_steps = train.max_steps
        trainer = build_trainer(config, [LastCheckpoint(out, train.checkpoint_every), *callbacks],
                                make_trainer)
    return config, data, trainer, tokens_per_step, cut


def run_pretraining(config: PretrainConfig, emit: Callable[[str], None] = print,
                    callbacks: Sequence[L.Callback] = (), make_trainer: TrainerFactory = L.Trainer) -> dict:
    """Train (or resume) and write the checkpoint folder; return the metrics (also in `metrics.json`).

    `emit` receives progress lines on global rank zero. Under DDP every rank runs this function; only
    rank zero writes files and returns full metrics. `make_trainer` builds the Trainer from its keyword
    arguments (see `ray_train` for one that runs in processes Ray Train started).
    """
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(config.shards)
    _check_tokenizer(config, manifest)
    L.seed_everything(config.train.seed, workers=True, verbose=False)
    model_config = ModelConfig.from_size(config.model, vocab_size=int(manifest["vocab_size"]))
    config, data, trainer, tokens_per_step, cut = _data_and_trainer(config, model_config, out, callbacks,
                                                                     make_trainer)
    train, world = config.train, trainer.world_size
    optimizer = OptimizerConfig(lr=train.lr, warmup_steps=train.warmup_steps, max_steps=train.max_steps,
                                min_lr_ratio=train.min_lr_ratio, weight_decay=train.weight_decay)
    task = LanguageModelTask(model_config, optimizer, mode="pretrain", compile=train.compile)

    accelerator, precision = resolve_runtime(train)
    peak = config.peak_flops or measure_matmul_peak("cuda" if accelerator in ("gpu", "cuda") else "cpu")
    reporter = ProgressReporter(emit, tokens_per_step, flops_per_token(model_config), peak * world,
                                config.log_every)
    trainer.callbacks.insert(0, reporter)  # before LastCheckpoint: a checkpoint holds its own step

    ckpt_path = out / LAST_CHECKPOINT
    resume_from, set_aside = resumable_checkpoint(out, config.resume, trainer.is_global_zero, emit)
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

    save_checkpoint_folder(task.model, model_config, config.tokenizer, out,
                           extra={"trained_steps": trainer.global_step, "tokens_seen": trainer.global_step *
                                  tokens_per_step})
    metrics = {**_pretrain_metrics(config, trainer, reporter, val_loss, tokens_per_step, data.train_windows.tokens),
               "steps_cut_by_epochs": cut, "flops_per_token": flops_per_token(model_config), "peak_flops": peak * world,
               "parameters": task.model.num_parameters(), "precision": precision, "resumed_from": resume_from,
               "last_ckpt_set_aside": set_aside}
    write_metrics(out, metrics)
    emit(f"done: train loss {metrics['train_loss']} val loss {val_loss} tokens/s {metrics['tokens_per_s']:,.0f}"
         + (f" MFU {metrics['mfu']:.2%}" if metrics["mfu"] is not None else "") + f" -> {out}")
    return metrics


def _pretrain_metrics(config: PretrainConfig, trainer: L.Trainer, reporter: ProgressReporter, val_loss: float | None,
                      tokens_per_step: int, train_tokens: int) -> dict:
    """The run's losses, throughput and progress, with the loss curve drawn."""
    train_loss = final_train_loss(reporter.steps)
    throughput = reporter.throughput()
    finite, finite_message = loss_is_finite(train_loss, *([val_loss] if val_loss is not None else []))
    out = Path(config.out)
    return {
        "train_loss": train_loss,
        "val_loss": val_loss,
        "val_perplexity": math.exp(val_loss) if val_loss is not None and val_loss < 50 else None,
        "loss_finite": finite,
        "loss_finite_message": finite_message,
        "unigram_entropy": unigram_entropy(config.shards, "train", max_tokens=50_000_000),
        "steps": trainer.global_step,
        "steps_this_run": len(reporter.steps_this_run),
        "tokens_seen": trainer.global_step * tokens_per_step,
        "epochs": trainer.global_step * tokens_per_step / max(1, train_tokens),
        "tokens_per_s": throughput["tokens_per_s"],
        "steps_per_s": throughput["steps_per_s"],
        "mfu": throughput["mfu"],
        "world_size": trainer.world_size,
        "loss_curve": str(plot_loss_curve(reporter.steps, reporter.validations, out)),
        "path": str(out),
        "resumed_at_step": reporter.start_step,
        "history": reporter.steps_this_run,  # the whole training's steps are in the loss curve
        "validations": reporter.validations,
    }
