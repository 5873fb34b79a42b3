"""Lightning callbacks: per-step progress (loss, lr, tokens/s, MFU) and an atomic `last.ckpt`."""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch

logger = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.ckpt"
METRICS_FILE = "metrics.json"  # what a training run reports, written last
LOSS_CURVE_FILE = "loss_curve.png"


def save_last_checkpoint(trainer: L.Trainer, out_dir: str | os.PathLike) -> Path:
    """Write `last.ckpt` through a temporary name, so a crash while saving keeps the previous one."""
    final = Path(out_dir) / LAST_CHECKPOINT
    tmp = final.with_name(f".{LAST_CHECKPOINT}.step{trainer.global_step}.tmp")
    try:
        trainer.save_checkpoint(tmp, weights_only=False)  # every rank calls it; only global rank zero writes
    except BaseException:
        if trainer.is_global_zero:
            tmp.unlink(missing_ok=True)  # a half-written copy would keep a full disk full for the rerun
        raise
    if trainer.is_global_zero:
        os.replace(tmp, final)
    trainer.strategy.barrier("last_checkpoint")
    return final


class LastCheckpoint(L.Callback):
    """Save `last.ckpt` every `every_n_steps` optimizer steps."""

    def __init__(self, out_dir: str | os.PathLike, every_n_steps: int):
        self.out_dir, self.every_n_steps = Path(out_dir), every_n_steps
        self._saved_step = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if self.every_n_steps > 0 and step and step % self.every_n_steps == 0 and step != self._saved_step:
            self._saved_step = step
            save_last_checkpoint(trainer, self.out_dir)
            logger.info("saved %s at step %d", self.out_dir / LAST_CHECKPOINT, step)


class ProgressReporter(L.Callback):
    """Collects the loss of each optimizer step and emits `step loss lr tokens/s MFU` lines on rank zero.

    Put it before `LastCheckpoint` in the trainer's callbacks, so a checkpoint's history includes its step."""

    def __init__(self, emit: Callable[[str], None], tokens_per_step: int, flops_per_token: int,
                 peak_flops: float | None, log_every: int = 1):
        self.emit, self.tokens_per_step, self.flops_per_token = emit, tokens_per_step, flops_per_token
        self.peak_flops, self.log_every = peak_flops, max(1, log_every)
        self.steps: list[dict] = []  # one dict per optimizer step
        self.validations: list[dict] = []
        self._micro_losses: list[torch.Tensor] = []
        self._last_step: int | None = None
        self._step_started = 0.0
        self.start_step = 0  # the optimizer step training (re)started at: > 0 after a resume from last.ckpt
        self.restored = 0  # how many of `steps` an earlier run recorded (restored from last.ckpt)
        self._peak_raised = False

    # the history travels in last.ckpt, so a resumed run reports the losses of the whole training (a rerun that
    # finds training complete trains no step, and must still know its final loss)
    def state_dict(self) -> dict:
        return {"steps": self.steps, "validations": self.validations}

    def load_state_dict(self, state_dict: dict) -> None:
        self.steps = list(state_dict.get("steps", []))
        self.validations = list(state_dict.get("validations", []))
        self.restored = len(self.steps)

    @property
    def steps_this_run(self) -> list[dict]:
        return self.steps[self.restored:]

    def _resumed_at(self, trainer, step: int) -> None:
        self.start_step = step
        if trainer.is_global_zero:
            self.emit(f"resumed from last.ckpt at step {step}/{trainer.max_steps}")

    def on_fit_start(self, trainer, pl_module):
        # this callback's state is restored by now (the trainer's step not yet); a run that finds training
        # complete goes no further than this hook
        if self.restored:
            self._resumed_at(trainer, self.steps[-1]["step"])

    def on_train_start(self, trainer, pl_module):
        if trainer.global_step and not self.restored:  # a last.ckpt written without this callback's state
            self._resumed_at(trainer, trainer.global_step)
        self._last_step = trainer.global_step
        self._step_started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self._micro_losses.append(loss.detach())
        if trainer.global_step == self._last_step:
            return  # still accumulating gradients
        now = time.perf_counter()
        seconds = now - self._step_started
        self._step_started = now
        self._last_step = trainer.global_step
        if not trainer.is_global_zero:
            self._micro_losses.clear()
            return
        # Lightning divides the returned loss by the accumulation count; the sum is the step's mean loss
        step_loss = float(torch.stack(self._micro_losses).sum())
        self._micro_losses.clear()
        tokens_per_s = self.tokens_per_step / seconds if seconds > 0 else math.nan
        self._raise_peak(tokens_per_s * self.flops_per_token)
        mfu = (tokens_per_s * self.flops_per_token / self.peak_flops) if self.peak_flops else None
        record = {"step": trainer.global_step, "loss": step_loss,
                  "lr": trainer.optimizers[0].param_groups[0]["lr"], "seconds": seconds,
                  "tokens_per_s": tokens_per_s, "mfu": mfu}
        self.steps.append(record)
        if trainer.global_step % self.log_every == 0 or trainer.global_step == trainer.max_steps:
            self.emit(f"step {record['step']}/{trainer.max_steps} loss {step_loss:.4f} lr {record['lr']:.3g} "
                      f"tokens/s {tokens_per_s:,.0f}" + (f" MFU {mfu:.2%}" if mfu is not None else ""))

    def _raise_peak(self, achieved: float) -> None:
        """A step that beat the measured matmul peak proves the device does at least that much: the peak
        was measured while other work held the cores. Use the achieved rate as the peak from then on, so
        MFU stays a share of what the device can do (never over 100 %), and say so once."""
        if not self.peak_flops or not math.isfinite(achieved) or achieved <= self.peak_flops:
            return
        if not self._peak_raised:
            self.emit(f"note: a step ran at {achieved:.3g} FLOP/s, above the matmul peak measured at start "
                      f"({self.peak_flops:.3g}; the device was busy then): MFU is measured against the "
                      "highest rate seen from here on")
            self._peak_raised = True
        self.peak_flops = achieved

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking or "val/loss" not in trainer.callback_metrics:
            return
        loss = float(trainer.callback_metrics["val/loss"])
        if self.validations and self.validations[-1]["step"] == trainer.global_step:
            return  # the final validate() after fit repeats the last in-training one
        self.validations.append({"step": trainer.global_step, "loss": loss})
        if trainer.is_global_zero:
            self.emit(f"validation step {trainer.global_step} loss {loss:.4f} perplexity {math.exp(min(loss, 50)):.2f}")

    def throughput(self) -> dict:
        """Mean tokens/s and MFU over this run's steps, leaving out the first (warm-up, compilation, restoring);
        over the restored ones when this run trained none."""
        timed = self.steps_this_run[1:] or self.steps_this_run or self.steps[1:] or self.steps
        seconds = sum(s["seconds"] for s in timed)
        tokens_per_s = self.tokens_per_step * len(timed) / seconds if seconds > 0 else math.nan
        mfu = tokens_per_s * self.flops_per_token / self.peak_flops if self.peak_flops else None
        return {"tokens_per_s": tokens_per_s, "mfu": mfu,
                "steps_per_s": len(timed) / seconds if seconds > 0 else math.nan}
