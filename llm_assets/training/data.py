"""Context windows from memory-mapped token shards, resumable by construction.

Training micro-batch number g on rank r is drawn from `numpy.random.default_rng([seed, g, r])`, so the
data after a resume at optimizer step s is exactly the data an uninterrupted run sees at step s: the
sampler restarts at g = s * grad_accum. Start positions are uniform over every valid window of every
shard, i.e. shards are weighted by length. Validation windows are fixed and evenly spaced.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from llm_assets.tokens.shards import load_manifest, read_tokens

logger = logging.getLogger(__name__)


class ShardWindows:
    """The shards of one split as memory maps, addressed by a window number across all shards."""

    def __init__(self, shards_dir: str | os.PathLike, split: str, context: int):
        self.folder = Path(shards_dir)
        self.split = split
        self.context = context
        manifest = load_manifest(self.folder)
        self.vocab_size = int(manifest["vocab_size"])
        self.eot_id = int(manifest["eot_id"])
        self.arrays = [read_tokens(self.folder / e["file"]) for e in manifest["splits"].get(split, [])]
        self.tokens = sum(len(a) for a in self.arrays)
        # a window is context + 1 tokens (inputs and shifted targets) inside one shard
        starts_per_shard = np.array([max(0, len(a) - context) for a in self.arrays], dtype=np.int64)
        self.first_window = np.concatenate(([0], np.cumsum(starts_per_shard)))  # (n_shards + 1,)
        self.windows = int(self.first_window[-1])

    def require_windows(self) -> None:
        if self.windows == 0:
            raise ValueError(f"{self.folder}: split {self.split!r} has no shard longer than context + 1 = "
                             f"{self.context + 1} tokens ({self.tokens} tokens in {len(self.arrays)} shards); "
                             f"lower the model context or tokenize more text")

    def gather(self, window_ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets (len(window_ids), context) as int64 for the given window numbers."""
        shard = np.searchsorted(self.first_window, window_ids, side="right") - 1
        offset = window_ids - self.first_window[shard]
        rows = np.stack([self.arrays[s][o:o + self.context + 1] for s, o in zip(shard, offset, strict=True)])
        rows = torch.from_numpy(rows.astype(np.int64))  # (B, T + 1)
        return rows[:, :-1], rows[:, 1:]


def trainable_tokens(shards_dir: str | os.PathLike, context: int) -> dict[str, dict[str, int]]:
    """Per split, its `tokens` and the `windows` of `context + 1` tokens that training can draw."""
    return {split: {"tokens": w.tokens, "windows": w.windows}
            for split, w in ((s, ShardWindows(shards_dir, s, context)) for s in ("train", "validation"))}


def require_trainable(shards_dir: str | os.PathLike, context: int) -> dict[str, dict[str, int]]:
    """`trainable_tokens`, or a ValueError in one sentence when the train split is too short to train on."""
    counts = trainable_tokens(shards_dir, context)
    train = counts["train"]
    if train["windows"] == 0:
        raise ValueError(f"token_shards has {train['tokens']} train tokens, fewer than the model's context + 1 = "
                         f"{context + 1}: too little text to train on; crawl more pages or lower the model "
                         f"context (LLM_ASSETS_CONFIG {{\"model\": {{\"context\": ...}}}})")
    return counts


class RandomWindowBatches(Dataset):
    """Item g = micro-batch number g of this rank: `micro_batch` random windows, a pure function of (seed, g, rank)."""

    def __init__(self, windows: ShardWindows, micro_batch: int, seed: int, rank: int, length: int):
        windows.require_windows()
        self.windows, self.micro_batch, self.seed, self.rank, self.length = windows, micro_batch, seed, rank, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, g: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(g), self.rank])
        ids = rng.integers(0, self.windows.windows, size=self.micro_batch)
        inputs, targets = self.windows.gather(ids)
        return {"input_ids": inputs, "targets": targets}


class FixedWindowBatches(Dataset):
    """Evenly spaced windows over the split, cut into micro-batches; this rank takes every world-th batch."""

    def __init__(self, windows: ShardWindows, micro_batch: int, batches: int, rank: int, world: int):
        windows.require_windows()
        total = micro_batch * batches * world
        ids = np.linspace(0, windows.windows - 1, num=total).round().astype(np.int64)
        self.batches = ids.reshape(batches * world, micro_batch)[rank::world]
        self.windows = windows

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        inputs, targets = self.windows.gather(self.batches[i])
        return {"input_ids": inputs, "targets": targets}


class ResumeSampler(Sampler[int]):
    """Yields micro-batch numbers from `start()` (read when iteration begins, i.e. after a resume) to `length`."""

    def __init__(self, length: int, start: Callable[[], int]):
        self.length, self.start = length, start

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        first = self.start()
        if first:
            logger.info("resuming the data stream at micro-batch %d", first)
        return iter(range(first, self.length))


class ResumableWindowLoader(DataLoader):
    """A DataLoader whose position is derived from the trainer's global step (see `ResumeSampler`).

    Its state is only the stream's identity, so Lightning knows it resumes mid-epoch correctly and a
    resume with a different seed or batch size is reported instead of silently changing the data.
    """

    def state_dict(self) -> dict:
        dataset = self.dataset
        return {"seed": dataset.seed, "micro_batch": dataset.micro_batch}

    def load_state_dict(self, state: dict) -> None:
        current = self.state_dict()
        changed = {k: (state.get(k), v) for k, v in current.items() if state.get(k) != v}
        if changed:
            logger.warning("resumed data stream differs from the checkpoint's (old, new): %s", changed)


class TokenWindowData(L.LightningDataModule):
    """Training windows (random, resumable) and validation windows (fixed) from a shard folder."""

    def __init__(self, shards_dir: str | os.PathLike, context: int, micro_batch: int, max_steps: int,
                 grad_accum: int = 1, eval_batches: int = 8, seed: int = 1337):
        super().__init__()
        self.shards_dir, self.context, self.micro_batch = Path(shards_dir), context, micro_batch
        self.max_steps, self.grad_accum, self.eval_batches, self.seed = max_steps, grad_accum, eval_batches, seed
        self.train_windows = ShardWindows(self.shards_dir, "train", context)
        self.train_windows.require_windows()
        self.validation_windows = ShardWindows(self.shards_dir, "validation", context)
        if self.validation_windows.windows == 0:
            logger.warning("%s: no validation windows of %d tokens; validation is skipped",
                           self.shards_dir, context + 1)

    @property
    def vocab_size(self) -> int:
        return self.train_windows.vocab_size

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, _ = self._rank_world()
        length = self.max_steps * self.grad_accum
        dataset = RandomWindowBatches(self.train_windows, self.micro_batch, self.seed, rank, length)
        trainer = self.trainer

        def start() -> int:
            return trainer.global_step * self.grad_accum if trainer is not None else 0

        # batch_size=None: each dataset item is already a whole micro-batch
        return ResumableWindowLoader(dataset, batch_size=None, sampler=ResumeSampler(length, start), num_workers=0)

    def val_dataloader(self) -> DataLoader | list:
        if self.validation_windows.windows == 0 or self.eval_batches <= 0:
            return []
        rank, world = self._rank_world()
        dataset = FixedWindowBatches(self.validation_windows, self.micro_batch, self.eval_batches, rank, world)
        return DataLoader(dataset, batch_size=None, num_workers=0)
