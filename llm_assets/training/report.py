"""What a training run leaves beside its checkpoint: `loss_curve.png`, `metrics.json` and the figures in them."""

from __future__ import annotations

import json
import os
from pathlib import Path

from llm_assets.training.callbacks import LOSS_CURVE_FILE, METRICS_FILE


def final_train_loss(steps: list[dict]) -> float | None:
    """Mean loss of the last tenth of the logged steps (at least one): the end of training, less noisy."""
    tail = steps[-max(1, len(steps) // 10):] if steps else []
    return sum(s["loss"] for s in tail) / len(tail) if tail else None


def plot_loss_curve(steps: list[dict], validations: list[dict], out: Path) -> Path:
    """Draw training (and validation) loss per optimizer step into `out/loss_curve.png`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = out / LOSS_CURVE_FILE
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


def write_metrics(out: Path, metrics: dict) -> None:
    """`out/metrics.json` through a temporary name: a reader never sees half of it."""
    tmp = out / f".{METRICS_FILE}.tmp"
    tmp.write_text(json.dumps(metrics, indent=2))
    os.replace(tmp, out / METRICS_FILE)
