"""`evaluate` for the command line, plus the scores table and bar plot shared with the model card."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from llm_assets.evaluation.adapter import ScoringModel, load_scoring_model
from llm_assets.evaluation.multiple_choice import (
    LM_EVAL_FEWSHOT_SEED,
    PromptFormat,
    evaluate_multiple_choice,
    write_log_samples,
)
from llm_assets.evaluation.tasks import load_fewshot, load_suite

log = logging.getLogger(__name__)

Scores = dict[str, dict[str, float]]  # {task: {"acc", "acc_norm", "n"}}


def format_scores(scores: Scores) -> str:
    """A fixed-width text table of per-task scores."""
    width = max([len("benchmark"), *(len(task) for task in scores)])
    lines = [f"{'benchmark':<{width}}  {'acc':>7}  {'acc_norm':>8}  {'n':>6}"]
    lines += [f"{task:<{width}}  {s['acc']:7.4f}  {s['acc_norm']:8.4f}  {s['n']:6d}" for task, s in scores.items()]
    return "\n".join(lines)


def evaluate(checkpoint: str | os.PathLike | ScoringModel, task_files: Sequence[str | os.PathLike], shots: int = 0,
             output: str | os.PathLike | None = None, batch_size: int = 16, max_items: int | None = None,
             device: str = "cpu", template: str | None = None, log_samples: str | os.PathLike | None = None,
             seed: int = LM_EVAL_FEWSHOT_SEED) -> Scores:
    """Score a checkpoint folder (ours or a Hugging Face export) on benchmark files.

    Prints a table; with `output`, writes JSON `{task: {"acc", "acc_norm", "n"}}` there; with `log_samples`,
    one JSON line per item (`write_log_samples`). `template` replaces every item's own template (`{query}`
    is filled); shots come from the fewshot file beside a task file where there is one (`tasks.fewshot_file`).
    """
    model = checkpoint if isinstance(checkpoint, ScoringModel) else load_scoring_model(checkpoint, device=device)
    files = [Path(f) for f in task_files]
    tasks = load_suite(files)
    fewshot = load_fewshot(files) if shots > 0 else {}
    fmt = PromptFormat(template=template, shots=shots, seed=seed,
                       name="default" if template is None else "template")
    result = evaluate_multiple_choice(model, tasks, fmt, batch_size=batch_size, max_items=max_items,
                                      fewshot=fewshot)
    print(format_scores(result.scores))
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.name}.tmp")
        tmp.write_text(json.dumps(result.scores, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, output)
        log.info("wrote %s", output)
    if log_samples is not None:
        log.info("wrote %s", write_log_samples(result.items, log_samples))
    return result.scores


def scores_table(results: dict[str, Scores]) -> pl.DataFrame:
    """Long table model × benchmark × metric (`acc`, `acc_norm`) → value, plus `n`.

    `results` maps a model name to its `{task: {"acc", "acc_norm", "n"}}`.
    """
    rows = [{"model": model, "benchmark": task, "metric": metric, "value": float(score[metric]),
             "n": int(score.get("n", 0))}
            for model, scores in results.items() for task, score in scores.items()
            for metric in ("acc", "acc_norm") if metric in score]
    return pl.DataFrame(rows, schema={"model": pl.Utf8, "benchmark": pl.Utf8, "metric": pl.Utf8,
                                      "value": pl.Float64, "n": pl.Int64})


def bar_plot(df: pl.DataFrame, png_path: str | os.PathLike, title: str = "Benchmark scores") -> Path:
    """Grouped bars (one group per benchmark, one bar per model), one panel per metric, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if df.is_empty():
        raise ValueError("bar_plot: the scores table is empty")
    metrics = df["metric"].unique(maintain_order=True).to_list()
    benchmarks = df["benchmark"].unique(maintain_order=True).to_list()
    models = df["model"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(4.0, 1.2 * len(benchmarks) * len(metrics) + 2), 3.6),
                             squeeze=False)
    width = 0.8 / len(models)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for m, model in enumerate(models):
            sub = df.filter((pl.col("metric") == metric) & (pl.col("model") == model))
            values = dict(zip(sub["benchmark"], sub["value"], strict=True))
            xs = [b + (m - (len(models) - 1) / 2) * width for b in range(len(benchmarks))]
            ax.bar(xs, [values.get(b, 0.0) for b in benchmarks], width, label=model)
        ax.set_xticks(range(len(benchmarks)), benchmarks, rotation=30, ha="right")
        ax.set_ylim(0, 1)
        ax.set_title(metric)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
