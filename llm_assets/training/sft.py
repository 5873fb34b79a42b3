"""Supervised fine-tuning as a plain function: examples Parquet + base checkpoint in, assistant checkpoint out.

The same Lightning program as pretraining (`LanguageModelTask` in "sft" mode): it starts from the base
checkpoint's weights, pads each micro-batch to its longest example with `<|pad|>` (loss mask 0) and counts
the loss on assistant tokens (and plain-form answers) only. With `sft.replay_windows` and `config.shards`,
each micro-batch also carries that many pretraining windows, whose next-token loss is added, so the model
keeps modelling the web while it learns to answer. The out folder is a checkpoint folder like the base one
(`last.ckpt`, `model.safetensors`, `config.json`, `tokenizer.json`, `metrics.json`, `loss_curve.png`); a
run that finds `last.ckpt` there resumes from it.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import polars as pl
import torch
from torch.utils.data import Dataset

from llm_assets.lake import file_sha256
from llm_assets.modeling.chat import ends_turn_share, first_message_content
from llm_assets.modeling.checkpoint import (
    load_checkpoint,
    save_checkpoint_folder,
    write_config_and_tokenizer,
)
from llm_assets.modeling.model import IGNORE_INDEX, DecoderLM
from llm_assets.profiles import SFTSize
from llm_assets.tokens.shards import load_manifest
from llm_assets.tokens.special import PAD
from llm_assets.tokens.tokenizer import TOKENIZER_FILE
from llm_assets.training.callbacks import (
    LAST_CHECKPOINT,
    LastCheckpoint,
    ProgressReporter,
    save_last_checkpoint,
)
from llm_assets.training.checks import loss_is_finite
from llm_assets.training.config import SFTConfig, TrainerFactory, resolve_runtime
from llm_assets.training.data import ResumableWindowLoader, ResumeSampler, ShardWindows
from llm_assets.training.module import LanguageModelTask, OptimizerConfig
from llm_assets.training.report import final_train_loss, plot_loss_curve, write_metrics
from llm_assets.training.resume import resumable_checkpoint
from llm_assets.training.sft_data import examples_metadata

logger = logging.getLogger(__name__)
REPLAY_STREAM = 7  # keeps the replay windows' random stream apart from pretraining's

class ExampleBatches(Dataset):
    """Item g = micro-batch g of this rank: examples drawn from a stream of per-epoch shuffles.

    The stream position of micro-batch g on rank r is `(g * world + r) * micro_batch`, and epoch e's
    order is a permutation seeded by `(seed, e)`, so batch g is a pure function of g (resumable).
    Rows are right-padded to the batch's longest example: inputs and targets with `pad_id`, mask 0.
    With `replay` (pretraining windows) and `replay_windows` > 0, the batch also holds that many random
    windows (`replay_input_ids`, `replay_targets`), drawn from `(seed, g, rank)` like pretraining's.
    """

    def __init__(self, input_ids: Sequence[np.ndarray], loss_masks: Sequence[np.ndarray], micro_batch: int,
                 seed: int, pad_id: int, length: int, rank: int = 0, world: int = 1,
                 replay: ShardWindows | None = None, replay_windows: int = 0):
        if not input_ids:
            raise ValueError("SFT: no examples to train on")
        self.input_ids, self.loss_masks = input_ids, loss_masks
        self.micro_batch, self.seed, self.pad_id, self.length = micro_batch, seed, pad_id, length
        self.rank, self.world = rank, world
        self.replay, self.replay_windows = (replay, replay_windows) if replay is not None else (None, 0)
        if self.replay is not None and self.replay_windows:
            self.replay.require_windows()
        self._orders: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.length

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            self._orders[epoch] = np.random.default_rng([self.seed, epoch]).permutation(len(self.input_ids))
        return self._orders[epoch]

    def example_indices(self, g: int, rank: int | None = None) -> list[int]:
        rank = self.rank if rank is None else rank
        first = (int(g) * self.world + rank) * self.micro_batch
        n = len(self.input_ids)
        return [int(self._order(p // n)[p % n]) for p in range(first, first + self.micro_batch)]

    def __getitem__(self, g: int) -> dict[str, torch.Tensor]:
        chosen = self.example_indices(g)
        batch = collate([self.input_ids[i] for i in chosen], [self.loss_masks[i] for i in chosen], self.pad_id)
        if self.replay_windows:
            windows = np.random.default_rng([self.seed, int(g), self.rank, REPLAY_STREAM]).integers(
                0, self.replay.windows, size=self.replay_windows)
            batch["replay_input_ids"], batch["replay_targets"] = self.replay.gather(windows)
        return batch

    def tokens_through(self, micro_batches: int) -> tuple[int, int]:
        """(tokens, assistant tokens) in micro-batches 0..micro_batches-1 summed over all ranks."""
        lengths = np.fromiter((len(a) for a in self.input_ids), dtype=np.int64, count=len(self.input_ids))
        assistant = np.fromiter((int(m.sum()) for m in self.loss_masks), dtype=np.int64, count=len(self.loss_masks))
        picked = [i for g in range(micro_batches) for r in range(self.world) for i in self.example_indices(g, r)]
        return int(lengths[picked].sum()), int(assistant[picked].sum())


def collate(rows: Sequence[np.ndarray], masks: Sequence[np.ndarray], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded `input_ids`, `targets` (shifted by one) and `loss_mask` (of each target), all (B, T)."""
    width = max(len(r) for r in rows) - 1
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    targets = torch.full((len(rows), width), pad_id, dtype=torch.long)
    loss_mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for b, (row, mask) in enumerate(zip(rows, masks, strict=True)):
        n = len(row) - 1
        ids = torch.as_tensor(np.asarray(row, dtype=np.int64))
        input_ids[b, :n], targets[b, :n] = ids[:-1], ids[1:]
        loss_mask[b, :n] = torch.as_tensor(np.asarray(mask[1:], dtype=bool))
    return {"input_ids": input_ids, "targets": targets, "loss_mask": loss_mask}


class ExampleData(L.LightningDataModule):
    def __init__(self, input_ids, loss_masks, micro_batch: int, grad_accum: int, max_steps: int, seed: int,
                 pad_id: int, replay: ShardWindows | None = None, replay_windows: int = 0):
        super().__init__()
        self.input_ids, self.loss_masks = input_ids, loss_masks
        self.micro_batch, self.grad_accum, self.max_steps, self.seed, self.pad_id = (
            micro_batch, grad_accum, max_steps, seed, pad_id)
        self.replay, self.replay_windows = replay, replay_windows

    def dataset(self) -> ExampleBatches:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return ExampleBatches(self.input_ids, self.loss_masks, self.micro_batch, self.seed, self.pad_id,
                              self.max_steps * self.grad_accum, rank, world, self.replay, self.replay_windows)

    def train_dataloader(self):
        dataset = self.dataset()
        trainer = self.trainer

        def start() -> int:
            return trainer.global_step * self.grad_accum if trainer is not None else 0

        return ResumableWindowLoader(dataset, batch_size=None, sampler=ResumeSampler(len(dataset), start),
                                     num_workers=0)


def read_examples(path: str | os.PathLike, base: str | os.PathLike, vocab_size: int, context: int,
                  ids_column: str = "input_ids", mask_column: str = "loss_mask"
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Token ids and loss masks of the examples file, checked against the base checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SFT examples {path} not found (the sft_examples asset's Parquet)")
    stored_sha = examples_metadata(path).get("tokenizer_sha256")
    base_tokenizer = Path(base) / TOKENIZER_FILE
    if stored_sha and stored_sha != file_sha256(base_tokenizer):
        raise ValueError(f"SFT examples {path} were tokenized with a different tokenizer than {base_tokenizer}; "
                         f"re-render them with the base checkpoint's tokenizer")
    frame = pl.read_parquet(path, columns=[ids_column, mask_column]).rename(
        {ids_column: "input_ids", mask_column: "loss_mask"})
    if frame.height == 0:
        raise ValueError(f"SFT examples {path} has no rows")
    stats = frame.select(pl.col("input_ids").list.len().max().alias("longest"),
                         pl.col("input_ids").list.max().max().alias("top_id"),
                         (pl.col("input_ids").list.len() != pl.col("loss_mask").list.len()).sum().alias("bad"),
                         (pl.col("input_ids").list.len() < 2).sum().alias("short")).row(0, named=True)
    if stats["bad"] or stats["short"]:
        raise ValueError(f"SFT examples {path}: {stats['bad']} rows whose loss_mask length differs from "
                         f"input_ids, {stats['short']} rows under 2 tokens")
    if stats["longest"] > context + 1:
        raise ValueError(f"SFT examples {path}: an example has {stats['longest']} tokens, more than the model's "
                         f"context {context} + 1; re-render with context <= {context}")
    if stats["top_id"] >= vocab_size:
        raise ValueError(f"SFT examples {path}: token id {stats['top_id']} is outside the model's vocabulary "
                         f"({vocab_size})")
    ids = [np.asarray(a, dtype=np.int64) for a in frame["input_ids"].to_list()]
    masks = [np.asarray(m, dtype=np.int8) for m in frame["loss_mask"].to_list()]
    return ids, masks


@torch.no_grad()
def assistant_token_loss(model: DecoderLM, input_ids: Sequence[np.ndarray], loss_masks: Sequence[np.ndarray],
                         pad_id: int, batch_size: int = 32) -> float | None:
    """Mean next-token loss (nats) on the assistant tokens of the given examples."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for start in range(0, len(input_ids), batch_size):
        batch = collate(input_ids[start:start + batch_size], loss_masks[start:start + batch_size], pad_id)
        targets = batch["targets"].masked_fill(~batch["loss_mask"], IGNORE_INDEX).to(device)
        n = int(batch["loss_mask"].sum())
        if n == 0:
            continue
        _, loss = model(batch["input_ids"].to(device), targets)
        total, count = total + float(loss) * n, count + n
    model.train(was_training)
    return total / count if count else None


def planned_steps(sizes: SFTSize, examples: int) -> int:
    """`max_steps`, or fewer when `epochs_of_templates` passes over the examples come first."""
    per_step = sizes.micro_batch * sizes.grad_accum
    epochs_cap = math.ceil(sizes.epochs_of_templates * examples / per_step) if sizes.epochs_of_templates > 0 else 0
    return max(1, min(sizes.max_steps, epochs_cap)) if epochs_cap else sizes.max_steps


def replay_windows_of(config: SFTConfig, context: int) -> ShardWindows | None:
    """The pretraining windows replayed during fine-tuning (`sft.replay_windows` per micro-batch from the
    train split of `config.shards`), or None when there are none to replay."""
    if not config.sft.replay_windows or not config.shards:
        return None
    windows = ShardWindows(config.shards, "train", context)
    tokenizer = Path(config.base) / TOKENIZER_FILE
    if load_manifest(config.shards)["tokenizer_sha256"] != file_sha256(tokenizer):
        raise ValueError(f"token shards {config.shards} were written with another tokenizer than {tokenizer}; "
                         f"replay needs the base checkpoint's own shards")
    if windows.windows == 0:
        logger.warning("no pretraining windows to replay in %s: fine-tuning without replay", config.shards)
        return None
    return windows


def _sft_trainer(config: SFTConfig, steps: int, callbacks: Sequence[L.Callback],
                 make_trainer: TrainerFactory = L.Trainer) -> tuple[L.Trainer, str, str]:
    """(trainer, accelerator, precision) for `steps` optimizer steps; no validation loop (losses are measured
    on held-back examples before and after)."""
    sizes, runtime = config.sft, config.runtime
    accelerator, precision = resolve_runtime(runtime)
    trainer = make_trainer(
        accelerator=accelerator, devices=runtime.devices, num_nodes=runtime.num_nodes, strategy=runtime.strategy,
        precision=precision, max_steps=steps, accumulate_grad_batches=sizes.grad_accum,
        gradient_clip_val=sizes.grad_clip or None, gradient_clip_algorithm="norm", limit_val_batches=0,
        num_sanity_val_steps=0, use_distributed_sampler=False, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=config.out,
        callbacks=[LastCheckpoint(Path(config.out), sizes.checkpoint_every), *callbacks],
    )
    return trainer, accelerator, precision


def run_sft(config: SFTConfig, emit: Callable[[str], None] = print, callbacks: Sequence[L.Callback] = (),
            make_trainer: TrainerFactory = L.Trainer) -> dict:
    """Fine-tune (or resume) and write the assistant checkpoint folder; return the metrics (also in
    `metrics.json`). Under DDP only global rank zero writes files and returns full metrics. `make_trainer`
    builds the Trainer from its keyword arguments (as in `pretrain.run_pretraining`)."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = config.sft
    L.seed_everything(sizes.seed, workers=True, verbose=False)
    base_model, tokenizer = load_checkpoint(config.base)
    model_config = base_model.config
    pad_id = tokenizer.token_to_id(PAD)
    if pad_id is None:
        raise ValueError(f"{config.base}/{TOKENIZER_FILE} has no {PAD} token; SFT pads batches with it")
    input_ids, loss_masks = read_examples(config.examples, config.base, model_config.vocab_size,
                                          model_config.context)
    steps = planned_steps(sizes, len(input_ids))
    eval_rows = np.random.default_rng(sizes.seed).permutation(len(input_ids))[:sizes.eval_examples]
    eval_ids, eval_masks = [input_ids[i] for i in eval_rows], [loss_masks[i] for i in eval_rows]

    optimizer = OptimizerConfig(lr=sizes.lr, warmup_steps=sizes.warmup_steps, max_steps=steps,
                                min_lr_ratio=sizes.min_lr_ratio, weight_decay=sizes.weight_decay)
    task = LanguageModelTask(model_config, optimizer, mode="sft")
    task.init_from(base_model)
    replay = replay_windows_of(config, model_config.context)
    data = ExampleData(input_ids, loss_masks, sizes.micro_batch, sizes.grad_accum, steps, sizes.seed, pad_id,
                       replay, sizes.replay_windows)
    trainer, accelerator, precision = _sft_trainer(config, steps, callbacks, make_trainer)
    world = trainer.world_size
    mean_length = float(np.mean([len(a) for a in input_ids]))
    replay_per_step = (sizes.replay_windows * model_config.context * sizes.grad_accum * world) if replay else 0
    # example tokens (padding excluded, approx) plus replayed windows: what the model reads per step
    tokens_per_step = int(mean_length * sizes.micro_batch * sizes.grad_accum * world) + replay_per_step
    reporter = ProgressReporter(emit, tokens_per_step, 0, None, config.log_every)
    trainer.callbacks.insert(0, reporter)  # before LastCheckpoint: a checkpoint holds its own step

    ckpt_path = out / LAST_CHECKPOINT
    resume_from, set_aside = resumable_checkpoint(out, config.resume, trainer.is_global_zero, emit)
    loss_before = assistant_token_loss(base_model, eval_ids, eval_masks, pad_id)
    del base_model
    if trainer.is_global_zero:
        write_config_and_tokenizer(model_config, Path(config.base) / TOKENIZER_FILE, out,
                                   extra={"stage": "sft", "base": str(config.base)})
        emit(f"fine-tuning {task.model.num_parameters():,} parameters on {accelerator} x{world} ({precision}) "
             f"from {config.base}: {len(input_ids):,} examples, {steps} steps of {sizes.micro_batch} x "
             f"{sizes.grad_accum}" + (f" with {sizes.replay_windows} pretraining windows replayed in each "
                                      f"micro-batch" if replay is not None else "")
             + (f", resuming from {ckpt_path}" if resume_from else ""))
    trainer.fit(task, datamodule=data, ckpt_path=resume_from)
    save_last_checkpoint(trainer, out)
    if not trainer.is_global_zero:
        return {}

    loss_after = assistant_token_loss(task.model, eval_ids, eval_masks, pad_id)
    tokens, assistant_tokens = data.dataset().tokens_through(trainer.global_step * sizes.grad_accum) \
        if world == 1 else (trainer.global_step * (tokens_per_step - replay_per_step), None)
    save_checkpoint_folder(task.model, model_config, Path(config.base) / TOKENIZER_FILE, out,
                           extra={"stage": "sft", "base": str(config.base), "trained_steps": trainer.global_step,
                                  "tokens_seen": tokens})
    metrics = _sft_metrics(config, trainer, reporter, (loss_before, loss_after), len(input_ids), steps,
                           (tokens, assistant_tokens))
    metrics.update(parameters=task.model.num_parameters(), precision=precision, resumed_from=resume_from,
                   last_ckpt_set_aside=set_aside,
                   replay_windows_per_micro_batch=sizes.replay_windows if replay else 0,
                   replay_tokens_seen=trainer.global_step * replay_per_step)
    write_metrics(out, metrics)
    emit(f"done: train loss {metrics['train_loss']} assistant-token loss {loss_before} -> {loss_after} after "
         f"{trainer.global_step} steps -> {out}")
    return metrics


def _sft_metrics(config: SFTConfig, trainer: L.Trainer, reporter: ProgressReporter,
                 assistant_losses: tuple[float | None, float | None], examples: int, planned: int,
                 seen: tuple[int, int | None]) -> dict:
    """The run's losses (assistant tokens before and after), progress and throughput, with the loss curve drawn."""
    sizes, out = config.sft, Path(config.out)
    train_loss, (loss_before, loss_after) = final_train_loss(reporter.steps), assistant_losses
    finite, finite_message = loss_is_finite(*(x for x in (train_loss, loss_after) if x is not None))
    throughput = reporter.throughput()
    return {
        "train_loss": train_loss,
        "assistant_loss_before": loss_before,
        "assistant_loss_after": loss_after,
        "loss_finite": finite,
        "loss_finite_message": finite_message,
        "examples": examples,
        "steps": trainer.global_step,
        "steps_this_run": len(reporter.steps_this_run),
        "planned_steps": planned,
        "epochs": trainer.global_step * sizes.micro_batch * sizes.grad_accum * trainer.world_size / examples,
        "tokens_seen": seen[0],
        "assistant_tokens_seen": seen[1],
        "tokens_per_s": throughput["tokens_per_s"],
        "steps_per_s": throughput["steps_per_s"],
        "world_size": trainer.world_size,
        "base": str(config.base),
        "loss_curve": str(plot_loss_curve(reporter.steps, [], out)),
        "path": str(out),
        "resumed_at_step": reporter.start_step,
        "history": reporter.steps_this_run,  # the whole training's steps are in the loss curve
    }


def ends_turn_check(checkpoint: str | os.PathLike, example_texts: Sequence[str], metrics: dict,
                    needed_share: float = 0.75) -> tuple[bool, bool, dict]:
    """(passed, blocking, details) of "greedy replies close their turn with <|end|>", asked the questions of
    rendered examples. Replies that do not close their turn block only when fine-tuning learned nothing on the
    assistant tokens (a template or mask fault); a lower loss means it learned, too briefly: a warning."""
    questions = [first_message_content(text) for text in example_texts]
    share, rows = ends_turn_share(checkpoint, questions, max_new_tokens=48)
    before, after = metrics.get("assistant_loss_before"), metrics.get("assistant_loss_after")
    learning = before is not None and after is not None and after < before
    details = {"ends_turn_share": share, "assistant_loss_before": before, "assistant_loss_after": after,
               "samples": rows[:3]}
    if share < needed_share and learning:
        details["detail"] = (f"fine-tuning lowered the assistant-token loss from {before:.3f} to {after:.3f}, but "
                             f"only {share:.0%} of greedy replies close their turn: train longer (sft.max_steps in "
                             "LLM_ASSETS_CONFIG)")
    return share >= needed_share, not learning, details
