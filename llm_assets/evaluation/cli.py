"""`evaluate` for the command line, plus the scores table and bar plot shared with the model card."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from llm_assets.evaluation.adapter import ScoringModel, load_scoring_model
from llm_assets.evaluation.generative import (
    DEFAULT_MAX_NEW_TOKENS,
    evaluate_open_questions,
    is_open_question_file,
    load_open_suite,
    write_generation_samples,
)
from llm_assets.evaluation.multiple_choice import (
    LM_EVAL_FEWSHOT_SEED,
    PromptFormat,
    evaluate_multiple_choice,
    write_log_samples,
)
from llm_assets.evaluation.tasks import load_fewshot, load_suite

log = logging.getLogger(__name__)

Scores = dict[str, dict[str, float]]  # {task: {"acc", "acc_norm", "n"}} or {task: {"exact_match", "contains", "n"}}
METRICS = ("acc", "acc_norm", "exact_match", "contains")


def format_scores(scores: Scores) -> str:
    """A fixed-width text table of per-task scores (multiple-choice and open-question columns as present)."""
    width = max([len("benchmark"), *(len(task) for task in scores)])
    metrics = [m for m in METRICS if any(m in s for s in scores.values())]
    lines = [f"{'benchmark':<{width}}" + "".join(f"  {m:>11}" for m in metrics) + f"  {'n':>6}"]
    lines += [f"{task:<{width}}" + "".join(f"  {s[m]:11.4f}" if m in s else f"  {'-':>11}" for m in metrics)
              + f"  {s['n']:6d}" for task, s in scores.items()]
    return "\n".join(lines)


def evaluate(checkpoint: str | os.PathLike | ScoringModel, task_files: Sequence[str | os.PathLike], shots: int = 0,
             output: str | os.PathLike | None = None, batch_size: int = 16, max_items: int | None = None,
             device: str = "cpu", template: str | None = None, log_samples: str | os.PathLike | None = None,
             seed: int = LM_EVAL_FEWSHOT_SEED, chat: bool = False,
             max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> Scores:
    """Score a checkpoint folder (ours or a Hugging Face export) on benchmark files.

    Multiple-choice files give `{task: {"acc", "acc_norm", "n"}}`; open-question files (JSONL `{question,
    answers}`) are answered greedily (at most `max_new_tokens`, the chat template when `chat`) and give
    `{task: {"exact_match", "contains", "n"}}`. Prints a table; with `output`, writes the JSON there; with
    `log_samples`, one JSON line per item (`write_log_samples`, then `write_generation_samples`). `template`
    replaces every multiple-choice item's own template (`{query}` is filled); shots come from the fewshot
    file beside a task file where there is one (`tasks.fewshot_file`).
    """
    _check_arguments(shots=shots, batch_size=batch_size, max_items=max_items, max_new_tokens=max_new_tokens)
    if output is not None:
        _check_output(Path(output))
    model = checkpoint if isinstance(checkpoint, ScoringModel) else load_scoring_model(checkpoint, device=device)
    files = [Path(f) for f in task_files]
    open_files = [f for f in files if is_open_question_file(f)]
    choice_files = [f for f in files if f not in open_files]
    scores: Scores = {}
    if choice_files:
        tasks = load_suite(choice_files)
        fewshot = load_fewshot(choice_files) if shots > 0 else {}
        fmt = PromptFormat(template=template, shots=shots, seed=seed,
                           name="default" if template is None else "template")
        result = evaluate_multiple_choice(model, tasks, fmt, batch_size=batch_size, max_items=max_items,
                                          fewshot=fewshot)
        scores.update(result.scores)
    if open_files:
        generated = evaluate_open_questions(model, load_open_suite(open_files), chat=chat,
                                            max_new_tokens=max_new_tokens, batch_size=batch_size,
                                            max_items=max_items)
        scores.update(generated.scores)
    print(format_scores(scores))
    if output is not None:
        write_scores(scores, Path(output))
    if log_samples is not None:
        if choice_files:
            write_log_samples(result.items, log_samples)
        if open_files:
            write_generation_samples(generated.items, log_samples, append=bool(choice_files))
        log.info("wrote %s", log_samples)
    return scores


def _check_arguments(**values: int | None) -> None:
    """Counts the scoring loops rely on: a zero batch or a negative item cap would fail late or drop items."""
    least = {"shots": 0, "batch_size": 1, "max_items": 1, "max_new_tokens": 1}
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least[name]):
            raise ValueError(f"evaluate: {name} = {value!r} must be a whole number of at least {least[name]}")


def _check_output(output: Path) -> None:
    """Refuse an output that cannot take the JSON before any scoring (a folder, or under a file)."""
    if output.is_dir():
        raise IsADirectoryError(f"--output {output} is a folder; give a file name, e.g. {output / 'scores.json'}")
    blocker = next((p for p in output.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise NotADirectoryError(f"--output {output}: {blocker} is a file, not a folder")


def write_scores(scores: Scores, output: Path) -> None:
    """The scores as JSON through a temporary name that is removed when writing fails."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        tmp.write_text(json.dumps(scores, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("wrote %s", output)


def scores_table(results: dict[str, Scores]) -> pl.DataFrame:
    """Long table model × benchmark × metric (`acc`, `acc_norm`, `exact_match`, `contains`) → value, plus `n`.

    `results` maps a model name to its `{task: {metric: value, "n": n}}`.
    """
    rows = [{"model": model, "benchmark": task, "metric": metric, "value": float(score[metric]),
             "n": int(score.get("n", 0))}
            for model, scores in results.items() for task, score in scores.items()
            for metric in METRICS if metric in score]
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
