"""Direct Preference Optimization (Rafailov et al., 2023) on top of the SFT checkpoint.

Pairs come from the synthetic world: the chosen reply is an SFT answer, the rejected one the same sentence
with the true fact replaced by another value of the same kind. The loss is
`-log sigmoid(beta * ((log pi(chosen) - log ref(chosen)) - (log pi(rejected) - log ref(rejected))))`
with sums of log-probabilities over the reply tokens (and the closing `<|end|>`); the reference is the
frozen SFT model. Same program shape, outputs and resume as `sft.run_sft`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from llm_assets.modeling.checkpoint import (
    TOKENIZER_FILE,
    load_checkpoint,
    save_checkpoint_folder,
    write_config_and_tokenizer,
)
from llm_assets.modeling.model import DecoderLM
from llm_assets.profiles import get_profile
from llm_assets.tokens.shards import file_sha256
from llm_assets.tokens.special import PAD
from llm_assets.training.callbacks import (
    LAST_CHECKPOINT,
    LastCheckpoint,
    ProgressReporter,
    save_last_checkpoint,
)
from llm_assets.training.data import ResumableWindowLoader, ResumeSampler
from llm_assets.training.module import OptimizerConfig, lr_factor
from llm_assets.training.pretrain import RUNTIME_KEYS, plot_loss_curve, read_json_config, resolve_runtime
from llm_assets.training.sft import ExampleBatches, collate, read_examples
from llm_assets.training.sft_data import (
    CONTEXT_KEY,
    TOKENIZER_SHA_KEY,
    load_conversations,
    render_examples,
    write_examples,
)

logger = logging.getLogger(__name__)

WORLD_POOLS = {"birth_city": "cities", "employer_city": "cities", "university": "universities",
               "employer": "companies"}


def fact_values(world: dict) -> dict[str, list[str]]:
    """Every value each person fact takes in `world.json` (the pool wrong answers are drawn from)."""
    pools = {fact: sorted({entry["name"] for entry in world[key]}) for fact, key in WORLD_POOLS.items()}
    pools["field"] = sorted({person["field"] for person in world["people"]})
    pools["birth_year"] = [str(year) for year in range(1945, 2001)]
    return pools


def preference_pairs(sft_file: str | os.PathLike, world_file: str | os.PathLike, seed: int = 0
                     ) -> tuple[list[dict], dict]:
    """(pairs, skipped per reason): `{"messages", "chosen", "rejected", "person", "fact"}` per SFT row whose
    reply states a fact of the world; the rejected reply swaps that fact for a wrong value of the same kind."""
    world = json.loads(Path(world_file).read_text())
    people = {person["name"]: person for person in world["people"]}
    pools = fact_values(world)
    rng = random.Random(seed)
    pairs, skipped = [], Counter()
    for conversation in load_conversations([sft_file]):
        person, fact = people.get(conversation.get("person")), conversation.get("fact")
        if person is None or fact not in pools:
            skipped["not_a_person_fact"] += 1
            continue
        true_value = str(person[fact])
        chosen = conversation["messages"][-1]["content"]
        if true_value not in chosen:
            skipped["fact_not_in_reply"] += 1
            continue
        wrong = [v for v in pools[fact] if v != true_value and v not in chosen]
        if not wrong:
            skipped["no_wrong_value"] += 1
            continue
        pairs.append({"messages": conversation["messages"][:-1], "chosen": chosen,
                      "rejected": chosen.replace(true_value, rng.choice(wrong)),
                      "person": person["name"], "fact": fact})
    return pairs, dict(skipped)


def render_pairs(pairs: Sequence[dict], tokenizer_path: str | os.PathLike, context: int, out_path: str | os.PathLike
                 ) -> dict:
    """Tokenize both replies of each pair with their loss masks; write Parquet (`chosen_ids`, `chosen_mask`,
    `rejected_ids`, `rejected_mask`, `person`, `fact`); a pair is dropped when either side is too long."""
    out = Path(out_path)
    sides = {}
    for side in ("chosen", "rejected"):
        conversations = [{"messages": [*p["messages"], {"role": "assistant", "content": p[side]}],
                          "source": f"pair:{i}", "person": p.get("person"), "fact": p.get("fact")}
                         for i, p in enumerate(pairs)]
        path = out.with_name(f".{out.name}.{side}.parquet")
        render_examples(conversations, tokenizer_path, context, path)
        sides[side] = pl.read_parquet(path).select(
            pl.col("source"), pl.col("input_ids").alias(f"{side}_ids"), pl.col("loss_mask").alias(f"{side}_mask"),
            "person", "fact")
        path.unlink()
    frame = sides["chosen"].join(sides["rejected"].drop("person", "fact"), on="source", how="inner")
    write_examples(frame, out, {TOKENIZER_SHA_KEY: file_sha256(tokenizer_path).encode(),
                                CONTEXT_KEY: str(context).encode()})
    return {"pairs": frame.height, "dropped": {"too_long": len(pairs) - frame.height}, "path": str(out)}


@dataclass(frozen=True)
class DPOConfig:
    pairs: str  # Parquet from `render_pairs`
    sft: str  # the SFT checkpoint folder: the starting point and the frozen reference
    out: str
    beta: float = 0.1
    max_steps: int = 100
    micro_batch: int = 8
    lr: float = 5e-5
    warmup_steps: int = 5
    grad_clip: float = 1.0
    checkpoint_every: int = 50
    seed: int = 1337
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    resume: bool = True
    log_every: int = 10


def dpo_config_from_dict(values: dict, where: str = "dpo config") -> DPOConfig:
    """A `DPOConfig` from JSON-like values; `profile` supplies the runtime defaults (accelerator, ...)."""
    values = dict(values)
    for key in ("pairs", "sft", "out"):
        if not values.get(key):
            raise ValueError(f"{where}: {key!r} is required (pairs Parquet, SFT checkpoint folder, out folder)")
    profile = get_profile(values.pop("profile")) if values.get("profile") else None
    runtime = {key: getattr(profile.train, key) for key in RUNTIME_KEYS} if profile else {}
    known = {f.name for f in dataclasses.fields(DPOConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    return DPOConfig(**(runtime | values))


def load_dpo_config(path: str | os.PathLike) -> DPOConfig:
    return dpo_config_from_dict(read_json_config(path, "dpo"), where=str(path))


def sequence_logprobs(model: DecoderLM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Summed log-probability of the masked targets of each row: (B,)."""
    logits, _ = model(batch["input_ids"])
    logprobs = torch.log_softmax(logits.float(), dim=-1).gather(-1, batch["targets"].unsqueeze(-1)).squeeze(-1)
    return (logprobs * batch["loss_mask"]).sum(-1)


def dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta: float):
    """(mean loss, chosen reward, rejected reward); rewards are beta * log(pi / ref) per row."""
    chosen_reward = beta * (policy_chosen - reference_chosen)
    rejected_reward = beta * (policy_rejected - reference_rejected)
    return -F.logsigmoid(chosen_reward - rejected_reward).mean(), chosen_reward, rejected_reward


class PairBatches(ExampleBatches):
    """Micro-batch g: the chosen rows then the rejected rows of the same pairs, padded together (2B, T)."""

    def __init__(self, chosen, chosen_masks, rejected, rejected_masks, **kwargs):
        super().__init__(chosen, chosen_masks, **kwargs)
        self.rejected, self.rejected_masks = rejected, rejected_masks

    def __getitem__(self, g: int) -> dict[str, torch.Tensor]:
        chosen = self.example_indices(g)
        return collate([self.input_ids[i] for i in chosen] + [self.rejected[i] for i in chosen],
                       [self.loss_masks[i] for i in chosen] + [self.rejected_masks[i] for i in chosen], self.pad_id)


class PairData(L.LightningDataModule):
    def __init__(self, sides: dict, config: DPOConfig, pad_id: int):
        super().__init__()
        self.sides, self.config, self.pad_id = sides, config, pad_id

    def train_dataloader(self):
        trainer, cfg = self.trainer, self.config
        dataset = PairBatches(*self.sides["chosen"], *self.sides["rejected"], micro_batch=cfg.micro_batch,
                              seed=cfg.seed, pad_id=self.pad_id, length=cfg.max_steps,
                              rank=trainer.global_rank, world=trainer.world_size)
        return ResumableWindowLoader(dataset, batch_size=None,
                                     sampler=ResumeSampler(cfg.max_steps, lambda: trainer.global_step), num_workers=0)


class DPOTask(L.LightningModule):
    def __init__(self, model: DecoderLM, beta: float, optimizer: OptimizerConfig):
        super().__init__()
        self.model, self.beta, self.optimizer_config = model, beta, optimizer
        # outside the module tree: not trained, not in the optimizer, not in last.ckpt
        object.__setattr__(self, "reference", copy.deepcopy(model).eval().requires_grad_(False))
        self.reward_accuracy: list[float] = []

    def on_fit_start(self):
        self.reference.to(self.device)

    def training_step(self, batch: dict, batch_idx: int):
        half = batch["input_ids"].shape[0] // 2
        policy = sequence_logprobs(self.model, batch)
        with torch.no_grad():
            reference = sequence_logprobs(self.reference, batch)
        loss, chosen, rejected = dpo_loss(policy[:half], policy[half:], reference[:half], reference[half:], self.beta)
        self.reward_accuracy.append(float((chosen > rejected).float().mean()))
        return loss

    def configure_optimizers(self):
        cfg = self.optimizer_config
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


@torch.no_grad()
def preference_accuracy(model: DecoderLM, sides: dict, pad_id: int, batch_size: int = 32) -> float:
    """Share of pairs where the model gives the chosen reply a higher log-probability than the rejected one."""
    model.eval()
    device = next(model.parameters()).device
    wins = []
    (chosen, chosen_masks), (rejected, rejected_masks) = sides["chosen"], sides["rejected"]
    for start in range(0, len(chosen), batch_size):
        part = slice(start, start + batch_size)
        c = sequence_logprobs(model, {k: v.to(device) for k, v in collate(chosen[part], chosen_masks[part],
                                                                          pad_id).items()})
        r = sequence_logprobs(model, {k: v.to(device) for k, v in collate(rejected[part], rejected_masks[part],
                                                                          pad_id).items()})
        wins.append((c > r).float().cpu().numpy())
    return float(np.concatenate(wins).mean())


def run_dpo(config: DPOConfig, emit: Callable[[str], None] = print, callbacks: Sequence[L.Callback] = ()) -> dict:
    """Optimize the SFT model on the preference pairs; write the checkpoint folder and `metrics.json`."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    L.seed_everything(config.seed, workers=True, verbose=False)
    model, tokenizer = load_checkpoint(config.sft)
    pad_id = tokenizer.token_to_id(PAD)
    if pad_id is None:
        raise ValueError(f"{config.sft}/{TOKENIZER_FILE} has no {PAD} token")
    sides = {side: read_examples(config.pairs, config.sft, model.config.vocab_size, model.config.context,
                                 f"{side}_ids", f"{side}_mask") for side in ("chosen", "rejected")}
    before = preference_accuracy(model, sides, pad_id)
    optimizer = OptimizerConfig(lr=config.lr, warmup_steps=config.warmup_steps, max_steps=config.max_steps)
    task = DPOTask(model.train(), config.beta, optimizer)
    accelerator, precision = resolve_runtime(config)
    trainer = L.Trainer(
        accelerator=accelerator, devices=config.devices, num_nodes=config.num_nodes, strategy=config.strategy,
        precision=precision, max_steps=config.max_steps, gradient_clip_val=config.grad_clip or None,
        limit_val_batches=0, num_sanity_val_steps=0, use_distributed_sampler=False, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=str(out), callbacks=[LastCheckpoint(out, config.checkpoint_every), *callbacks])
    reporter = ProgressReporter(emit, 0, 0, None, config.log_every)
    trainer.callbacks.insert(0, reporter)  # before LastCheckpoint: a checkpoint holds its own step
    ckpt_path = out / LAST_CHECKPOINT
    resume_from = str(ckpt_path) if config.resume and ckpt_path.is_file() else None
    tokenizer_file = Path(config.sft) / TOKENIZER_FILE
    if trainer.is_global_zero:
        write_config_and_tokenizer(model.config, tokenizer_file, out, extra={"stage": "dpo", "sft": str(config.sft)})
        emit(f"DPO on {len(sides['chosen'][0]):,} pairs, beta {config.beta}, {config.max_steps} steps"
             + (f", resuming from {ckpt_path}" if resume_from else ""))
    trainer.fit(task, datamodule=PairData(sides, config, pad_id), ckpt_path=resume_from)
    save_last_checkpoint(trainer, out)
    if not trainer.is_global_zero:
        return {}
    after = preference_accuracy(task.model, sides, pad_id)
    save_checkpoint_folder(task.model, model.config, tokenizer_file, out,
                           extra={"stage": "dpo", "sft": str(config.sft), "trained_steps": trainer.global_step})
    history = reporter.steps
    tail = history[-max(1, len(history) // 10):] if history else []
    metrics = {
        "train_loss": sum(s["loss"] for s in tail) / len(tail) if tail else None,
        "preference_accuracy_before": before,
        "preference_accuracy_after": after,
        "reward_accuracy_last": float(np.mean(task.reward_accuracy[-10:])) if task.reward_accuracy else None,
        "pairs": len(sides["chosen"][0]),
        "steps": trainer.global_step,
        "steps_this_run": len(reporter.steps_this_run),
        "beta": config.beta,
        "loss_curve": str(plot_loss_curve(history, [], out / "loss_curve.png")),
        "path": str(out),
        "resumed_from": resume_from,
        "history": reporter.steps_this_run,  # the whole training's steps are in the loss curve
    }
    tmp = out / ".metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, out / "metrics.json")
    emit(f"done: DPO loss {metrics['train_loss']} preference accuracy {before:.3f} -> {after:.3f} -> {out}")
    return metrics
