"""Supervised fine-tuning as a plain function: examples Parquet + base checkpoint in, assistant checkpoint out.

The same Lightning program as pretraining (`LanguageModelTask` in "sft" mode): it starts from the base
checkpoint's weights, pads each micro-batch to its longest example with `<|pad|>` (loss mask 0) and counts
the loss on assistant tokens only. The out folder is a checkpoint folder like the base one (`last.ckpt`,
`model.safetensors`, `config.json`, `tokenizer.json`, `metrics.json`, `loss_curve.png`); a run that
finds `last.ckpt` there resumes from it.

`answer_accuracy` scores four-choice knowledge questions as a chat answer or as a plain continuation;
`python -m llm_assets.training.sft accuracy --base DIR --assistant DIR --benchmark FILE` compares two
checkpoints.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import polars as pl
import torch
from torch.utils.data import Dataset

from llm_assets.lake import file_sha256
from llm_assets.modeling.checkpoint import (
    TOKENIZER_FILE,
    load_checkpoint,
    save_checkpoint_folder,
    write_config_and_tokenizer,
)
from llm_assets.modeling.model import IGNORE_INDEX, DecoderLM
from llm_assets.profiles import SFTSize, get_profile
from llm_assets.tokens.special import PAD, render_chat
from llm_assets.training.callbacks import (
    LAST_CHECKPOINT,
    LastCheckpoint,
    ProgressReporter,
    save_last_checkpoint,
)
from llm_assets.training.checks import loss_is_finite
from llm_assets.training.data import ResumableWindowLoader, ResumeSampler
from llm_assets.training.module import LanguageModelTask, OptimizerConfig
from llm_assets.training.pretrain import RUNTIME_KEYS, plot_loss_curve, read_json_config, resolve_runtime
from llm_assets.training.sft_data import examples_metadata

logger = logging.getLogger(__name__)

BASE_TEMPLATE = "Question: {query}\nAnswer:"


@dataclass(frozen=True)
class SFTConfig:
    examples: str  # Parquet written by `sft_data.render_examples`
    base: str  # checkpoint folder of the pretrained model
    out: str
    sft: SFTSize
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    resume: bool = True
    log_every: int = 10


def sft_config_from_dict(values: dict, where: str = "sft config") -> SFTConfig:
    """An `SFTConfig` from JSON-like values; `profile` supplies the `sft` sizes and the runtime defaults
    (accelerator, precision, ... of its pretraining section); top-level runtime keys override them."""
    values = dict(values)
    for key in ("examples", "base", "out"):
        if not values.get(key):
            raise ValueError(f"{where}: {key!r} is required (examples Parquet, base checkpoint folder, out folder)")
    profile = get_profile(values.pop("profile")) if values.get("profile") else None
    overrides = dict(values.pop("sft", {}) or {})
    known = {f.name for f in dataclasses.fields(SFTSize)}
    if set(overrides) - known:
        raise ValueError(f"{where}: unknown SFTSize fields {sorted(set(overrides) - known)}; known: {sorted(known)}")
    if profile is not None:
        sizes = dataclasses.replace(profile.sft, **overrides)
        runtime = {key: getattr(profile.train, key) for key in RUNTIME_KEYS}
    else:
        missing = [f.name for f in dataclasses.fields(SFTSize)
                   if f.default is dataclasses.MISSING and f.name not in overrides]
        if missing:
            raise ValueError(f"{where}: SFTSize fields {missing} missing (or give a \"profile\")")
        sizes, runtime = SFTSize(**overrides), {}
    runtime.update({key: values.pop(key) for key in RUNTIME_KEYS if key in values})
    known_top = {f.name for f in dataclasses.fields(SFTConfig)} - {"sft", *RUNTIME_KEYS}
    unknown = set(values) - known_top
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    return SFTConfig(sft=sizes, **runtime, **values)


def load_sft_config(path: str | os.PathLike) -> SFTConfig:
    return sft_config_from_dict(read_json_config(path, "sft"), where=str(path))


class ExampleBatches(Dataset):
    """Item g = micro-batch g of this rank: examples drawn from a stream of per-epoch shuffles.

    The stream position of micro-batch g on rank r is `(g * world + r) * micro_batch`, and epoch e's
    order is a permutation seeded by `(seed, e)`, so batch g is a pure function of g (resumable).
    Rows are right-padded to the batch's longest example: inputs and targets with `pad_id`, mask 0.
    """

    def __init__(self, input_ids: Sequence[np.ndarray], loss_masks: Sequence[np.ndarray], micro_batch: int,
                 seed: int, pad_id: int, length: int, rank: int = 0, world: int = 1):
        if not input_ids:
            raise ValueError("SFT: no examples to train on")
        self.input_ids, self.loss_masks = input_ids, loss_masks
        self.micro_batch, self.seed, self.pad_id, self.length = micro_batch, seed, pad_id, length
        self.rank, self.world = rank, world
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
        return collate([self.input_ids[i] for i in chosen], [self.loss_masks[i] for i in chosen], self.pad_id)

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
                 pad_id: int):
        super().__init__()
        self.input_ids, self.loss_masks = input_ids, loss_masks
        self.micro_batch, self.grad_accum, self.max_steps, self.seed, self.pad_id = (
            micro_batch, grad_accum, max_steps, seed, pad_id)

    def dataset(self) -> ExampleBatches:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return ExampleBatches(self.input_ids, self.loss_masks, self.micro_batch, self.seed, self.pad_id,
                              self.max_steps * self.grad_accum, rank, world)

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


def run_sft(config: SFTConfig, emit: Callable[[str], None] = print, callbacks: Sequence[L.Callback] = ()) -> dict:
    """Fine-tune (or resume) and write the assistant checkpoint folder; return the metrics (also in
    `metrics.json`). Under DDP only global rank zero writes files and returns full metrics."""
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
    data = ExampleData(input_ids, loss_masks, sizes.micro_batch, sizes.grad_accum, steps, sizes.seed, pad_id)
    accelerator, precision = resolve_runtime(config)
    trainer = L.Trainer(
        accelerator=accelerator, devices=config.devices, num_nodes=config.num_nodes, strategy=config.strategy,
        precision=precision, max_steps=steps, accumulate_grad_batches=sizes.grad_accum,
        gradient_clip_val=sizes.grad_clip or None, gradient_clip_algorithm="norm", limit_val_batches=0,
        num_sanity_val_steps=0, use_distributed_sampler=False, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(out),
        callbacks=[LastCheckpoint(out, sizes.checkpoint_every), *callbacks],
    )
    world = trainer.world_size
    mean_length = float(np.mean([len(a) for a in input_ids]))
    tokens_per_step = int(mean_length * sizes.micro_batch * sizes.grad_accum * world)  # padding excluded, approx
    reporter = ProgressReporter(emit, tokens_per_step, 0, None, config.log_every)
    trainer.callbacks.insert(0, reporter)  # before LastCheckpoint: a checkpoint holds its own step

    ckpt_path = out / LAST_CHECKPOINT
    resume_from = str(ckpt_path) if config.resume and ckpt_path.is_file() else None
    loss_before = assistant_token_loss(base_model, eval_ids, eval_masks, pad_id)
    del base_model
    if trainer.is_global_zero:
        write_config_and_tokenizer(model_config, Path(config.base) / TOKENIZER_FILE, out,
                                   extra={"stage": "sft", "base": str(config.base)})
        emit(f"fine-tuning {task.model.num_parameters():,} parameters on {accelerator} x{world} ({precision}) "
             f"from {config.base}: {len(input_ids):,} examples, {steps} steps of {sizes.micro_batch} x "
             f"{sizes.grad_accum}" + (f", resuming from {ckpt_path}" if resume_from else ""))
    trainer.fit(task, datamodule=data, ckpt_path=resume_from)
    save_last_checkpoint(trainer, out)
    if not trainer.is_global_zero:
        return {}

    loss_after = assistant_token_loss(task.model, eval_ids, eval_masks, pad_id)
    history = reporter.steps
    tail = history[-max(1, len(history) // 10):] if history else []
    train_loss = sum(s["loss"] for s in tail) / len(tail) if tail else None
    tokens, assistant_tokens = data.dataset().tokens_through(trainer.global_step * sizes.grad_accum) \
        if world == 1 else (trainer.global_step * tokens_per_step, None)
    finite, finite_message = loss_is_finite(*(x for x in (train_loss, loss_after) if x is not None))
    save_checkpoint_folder(task.model, model_config, Path(config.base) / TOKENIZER_FILE, out,
                           extra={"stage": "sft", "base": str(config.base), "trained_steps": trainer.global_step,
                                  "tokens_seen": tokens})
    curve = plot_loss_curve(history, [], out / "loss_curve.png")
    throughput = reporter.throughput()
    metrics = {
        "train_loss": train_loss,
        "assistant_loss_before": loss_before,
        "assistant_loss_after": loss_after,
        "loss_finite": finite,
        "loss_finite_message": finite_message,
        "examples": len(input_ids),
        "steps": trainer.global_step,
        "steps_this_run": len(reporter.steps_this_run),
        "planned_steps": steps,
        "epochs": trainer.global_step * sizes.micro_batch * sizes.grad_accum * world / len(input_ids),
        "tokens_seen": tokens,
        "assistant_tokens_seen": assistant_tokens,
        "tokens_per_s": throughput["tokens_per_s"],
        "steps_per_s": throughput["steps_per_s"],
        "parameters": task.model.num_parameters(),
        "world_size": world,
        "precision": precision,
        "base": str(config.base),
        "loss_curve": str(curve),
        "path": str(out),
        "resumed_from": resume_from,
        "resumed_at_step": reporter.start_step,
        "history": reporter.steps_this_run,  # the whole training's steps are in the loss curve
    }
    tmp = out / ".metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, out / "metrics.json")
    emit(f"done: train loss {train_loss} assistant-token loss {loss_before} -> {loss_after} after "
         f"{trainer.global_step} steps -> {out}")
    return metrics


# ---------------------------------------------------------------------------------------------- accuracy

def read_benchmark(path: str | os.PathLike) -> list[dict]:
    """Benchmark items (`query`, `choices`, `gold`, `split`, ...) of a file in any format evaluation reads."""
    from llm_assets.evaluation.tasks import load_items

    return load_items(path)


def _check_item(item: dict, where: str) -> None:
    if not isinstance(item.get("query"), str) or not isinstance(item.get("choices"), list) or not item["choices"]:
        raise ValueError(f"{where}: benchmark item needs a 'query' string and a non-empty 'choices' list")
    if not isinstance(item.get("gold"), int) or not 0 <= item["gold"] < len(item["choices"]):
        raise ValueError(f"{where}: 'gold' must index into 'choices' ({len(item['choices'])} choices)")


def answer_context(query: str, mode: str) -> tuple[str, str]:
    """(context, delimiter before the choice): the chat prompt, or `Question: ...\\nAnswer:` for a base model."""
    if mode == "chat":
        return render_chat([{"role": "user", "content": query}], add_generation_prompt=True), ""
    if mode == "base":
        return BASE_TEMPLATE.format(query=query), " "
    raise ValueError(f"answer_accuracy: mode {mode!r}; use 'chat' or 'base'")


@torch.no_grad()
def choice_logprobs(model: DecoderLM, sequences: Sequence[tuple[list[int], list[int]]], pad_id: int,
                    batch_size: int = 64) -> np.ndarray:
    """Summed log-probability of each continuation given its context: one float per (context, continuation)."""
    device = next(model.parameters()).device
    scores = np.zeros(len(sequences), dtype=np.float64)
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i][0]) - len(sequences[i][1]))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        rows = [sequences[i][0] + sequences[i][1] for i in chunk]
        width = max(len(r) for r in rows) - 1
        idx = torch.full((len(rows), width), pad_id, dtype=torch.long)
        for b, row in enumerate(rows):
            idx[b, :len(row) - 1] = torch.tensor(row[:-1])
        logprobs = torch.log_softmax(model(idx.to(device))[0].float(), dim=-1).cpu()  # (B, T, V)
        for b, i in enumerate(chunk):
            context, continuation = sequences[i]
            positions = torch.arange(len(context) - 1, len(context) - 1 + len(continuation))
            scores[i] = float(logprobs[b, positions, torch.tensor(continuation)].sum())
    return scores


def synthetic_answer_prefixes() -> dict[str, str]:
    """Per fact, the start of the synthetic SFT answer before the value (e.g. `{n} was born in`)."""
    from llm_assets.synthetic.questions import SFT_ANSWERS

    return {fact: template.split("{v}")[0].rstrip() for fact, template in SFT_ANSWERS.items()
            if template.split("{v}")[0].strip()}


def answer_accuracy(checkpoint: str | os.PathLike, benchmark_items: Sequence[dict] | str | os.PathLike,
                    mode: str = "chat", batch_size: int = 64, device: str | None = None,
                    answer_prefixes: dict[str, str] | None = None) -> dict:
    """Four-choice knowledge accuracy: the choice with the highest log-likelihood as the answer.

    mode "chat": each choice is scored as the assistant's reply to the question in the chat format;
    mode "base": as the continuation of `Question: {query}\\nAnswer:`. Returns `accuracy` (and
    `accuracy_norm`, per-character normalised) per split (`sft`, `heldout`, ...) and overall, with counts.
    `answer_prefixes` (chat mode): per item `fact`, text the reply starts with before the choice, formatted
    with `n` = the item's `person` (see `synthetic_answer_prefixes`); items of other facts get none.
    """
    items = read_benchmark(benchmark_items) if isinstance(benchmark_items, str | os.PathLike) \
        else list(benchmark_items)
    for position, item in enumerate(items):
        _check_item(item, f"benchmark item {position}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = load_checkpoint(checkpoint, device=device)
    pad_id = tokenizer.token_to_id(PAD)
    pad_id = 0 if pad_id is None else pad_id
    sequences, owners = [], []
    for position, item in enumerate(items):
        context, delimiter = answer_context(item["query"], mode)
        prefix = (answer_prefixes or {}).get(item.get("fact")) if mode == "chat" else None
        if prefix:
            context, delimiter = context + prefix.format(n=item.get("person", "")), " "
        context_ids = tokenizer.encode(context, add_special_tokens=False).ids
        for choice in item["choices"]:
            choice_ids = tokenizer.encode(delimiter + str(choice), add_special_tokens=False).ids
            if not choice_ids:
                raise ValueError(f"benchmark item {position}: choice {choice!r} encodes to no tokens")
            sequences.append((context_ids, choice_ids))
            owners.append(position)
    logger.info("scoring %d choices of %d items with %s in %s mode", len(sequences), len(items), checkpoint, mode)
    scores = choice_logprobs(model, sequences, pad_id, batch_size)
    frame = pl.DataFrame({
        "item": owners, "score": scores,
        "choice": [c for item in items for c in range(len(item["choices"]))],
        "chars": [len(str(c)) for item in items for c in item["choices"]],
    })
    picked = (frame.with_columns((pl.col("score") / pl.col("chars").clip(lower_bound=1)).alias("norm"))
              .group_by("item").agg(pl.col("choice").sort_by("score").last().alias("pick"),
                                    pl.col("choice").sort_by("norm").last().alias("pick_norm"))
              .sort("item"))
    results = pl.DataFrame({"split": [str(item.get("split", "all")) for item in items],
                            "gold": [item["gold"] for item in items],
                            "pick": picked["pick"], "pick_norm": picked["pick_norm"]}).with_columns(
        (pl.col("pick") == pl.col("gold")).alias("correct"),
        (pl.col("pick_norm") == pl.col("gold")).alias("correct_norm"))
    per_split = results.group_by("split").agg(pl.col("correct").mean().alias("accuracy"),
                                              pl.col("correct_norm").mean().alias("accuracy_norm"),
                                              pl.len().alias("items")).sort("split")
    return {
        "mode": mode,
        "checkpoint": str(checkpoint),
        "accuracy": {row["split"]: row["accuracy"] for row in per_split.iter_rows(named=True)},
        "accuracy_norm": {row["split"]: row["accuracy_norm"] for row in per_split.iter_rows(named=True)},
        "items": {row["split"]: row["items"] for row in per_split.iter_rows(named=True)},
        "overall": float(results["correct"].mean()) if results.height else None,
        "chance": float(np.mean([1 / len(item["choices"]) for item in items])) if items else None,
    }


def compare_accuracy(base: str | os.PathLike, assistant: str | os.PathLike, benchmark_file: str | os.PathLike
                     ) -> list[dict]:
    """Accuracy rows for the base model (base prompt) and the assistant (chat prompt, bare and with the
    synthetic answer prefix), and the swapped modes."""
    items = read_benchmark(benchmark_file)
    prefixes = synthetic_answer_prefixes()
    runs = [("base", base, "base", None), ("assistant", assistant, "chat", None),
            ("assistant", assistant, "chat+prefix", prefixes), ("base", base, "chat", None),
            ("assistant", assistant, "base", None)]
    rows = []
    for name, folder, mode, answer_prefixes in runs:
        result = answer_accuracy(folder, items, mode=mode.split("+")[0], answer_prefixes=answer_prefixes)
        for split, accuracy in result["accuracy"].items():
            rows.append({"model": name, "mode": mode, "split": split, "items": result["items"][split],
                         "accuracy": accuracy, "accuracy_norm": result["accuracy_norm"][split]})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llm_assets.training.sft",
                                     description="knowledge accuracy of a base and an assistant checkpoint")
    commands = parser.add_subparsers(dest="command", required=True)
    accuracy = commands.add_parser("accuracy", help="four-choice accuracy per split, base vs assistant")
    accuracy.add_argument("--base", required=True, help="base checkpoint folder")
    accuracy.add_argument("--assistant", required=True, help="fine-tuned checkpoint folder")
    accuracy.add_argument("--benchmark", required=True, help="benchmark.jsonl of the synthetic crawl")
    accuracy.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rows = compare_accuracy(args.base, args.assistant, args.benchmark)
    print(f"{'model':<10} {'prompt':<11} {'split':<8} {'items':>6} {'acc':>7} {'acc_norm':>9}")
    for row in rows:
        print(f"{row['model']:<10} {row['mode']:<11} {row['split']:<8} {row['items']:>6} {row['accuracy']:>7.3f} "
              f"{row['accuracy_norm']:>9.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
