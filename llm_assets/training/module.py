"""The LightningModule: next-token loss (pretraining) or loss on masked spans (fine-tuning), AdamW, LR schedule."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import lightning as L
import torch

from llm_assets.modeling.model import IGNORE_INDEX, DecoderLM, ModelConfig

MODES = ("pretrain", "sft")


@dataclass(frozen=True)
class OptimizerConfig:
    lr: float
    warmup_steps: int
    max_steps: int
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8


def lr_factor(step: int, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """Linear warmup to 1, then cosine decay to `min_lr_ratio` at `max_steps` (a multiplier on the peak lr)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, max_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class LanguageModelTask(L.LightningModule):
    """Wraps `DecoderLM`. A batch is `{"input_ids", "targets"}` (B, T) plus, in "sft" mode, a `loss_mask`
    (B, T) that is true where the target counts (e.g. assistant tokens only)."""

    def __init__(self, model_config: ModelConfig, optimizer: OptimizerConfig, mode: str = "pretrain",
                 compile: bool = False):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"LanguageModelTask: mode {mode!r}; use one of {MODES}")
        self.model_config, self.optimizer_config, self.mode = model_config, optimizer, mode
        self.model = DecoderLM(model_config)
        self.compile = compile
        self._forward = None  # the compiled forward, kept outside the module tree so state-dict keys stay plain

    def init_from(self, model: DecoderLM) -> None:
        """Start from existing weights (fine-tuning a pretrained checkpoint)."""
        self.model.load_state_dict(model.state_dict())

    def _model_forward(self, idx, targets):
        if self.compile and self._forward is None:
            self._forward = torch.compile(self.model)
        return (self._forward or self.model)(idx, targets)

    def _targets(self, batch: dict) -> torch.Tensor:
        targets = batch["targets"]
        if self.mode == "sft":
            if "loss_mask" not in batch:
                raise ValueError("LanguageModelTask(mode='sft'): batch has no 'loss_mask' field")
            targets = targets.masked_fill(~batch["loss_mask"].bool(), IGNORE_INDEX)
        return targets

    def forward(self, idx, targets=None):
        return self._model_forward(idx, targets)

    def training_step(self, batch: dict, batch_idx: int):
        _, loss = self._model_forward(batch["input_ids"], self._targets(batch))
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True, logger=False)
        if "replay_input_ids" in batch:  # pretraining text replayed beside fine-tuning examples: its own mean
            _, replay_loss = self._model_forward(batch["replay_input_ids"], batch["replay_targets"])
            self.log("train/replay_loss", replay_loss.detach(), on_step=True, on_epoch=False, logger=False)
            loss = loss + replay_loss
        return loss

    def validation_step(self, batch: dict, batch_idx: int):
        _, loss = self._model_forward(batch["input_ids"], self._targets(batch))
        self.log("val/loss", loss, on_step=False, on_epoch=True, sync_dist=True, logger=False)
        return loss

    def configure_optimizers(self):
        cfg = self.optimizer_config
        # decoupled weight decay on matrices only; norms' gains are not decayed
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # plain types only, so `torch.load(weights_only=True)` can read the checkpoint
        checkpoint["llm_assets"] = {"model_config": self.model_config.to_dict(), "mode": self.mode,
                                    "optimizer": {k: list(v) if isinstance(v, tuple) else v
                                                  for k, v in asdict(self.optimizer_config).items()}}
