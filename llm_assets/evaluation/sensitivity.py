"""Prompt sensitivity: every task under several prompt formats, with the spread (max - min) of scores.

A small model's benchmark score can move by points when only the prompt's spacing or answer cue changes;
the spread says how much of a score difference between two models such noise could explain.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import polars as pl

from llm_assets.benchmarks import Item
from llm_assets.evaluation.adapter import ScoringModel
from llm_assets.evaluation.multiple_choice import PromptFormat, evaluate_multiple_choice

log = logging.getLogger(__name__)


def default_variants(shots: int = 3) -> list[PromptFormat]:
    """Each item's own (lm-eval) rendering, spacing, answer cue ("Answer:" vs "A:"), and 0 vs `shots` solved
    examples."""
    return [
        PromptFormat(name="default"),
        PromptFormat(template="Question: {query}\n\nAnswer:", name="blank-line"),
        PromptFormat(template="Q: {query}\nA:", name="q-a"),
        PromptFormat(template="{query}\nAnswer:", name="bare-query"),
        PromptFormat(template="Question: {query} Answer:", name="one-line"),
        PromptFormat(shots=shots, name=f"default-{shots}shot"),
    ]


def prompt_sensitivity(model: ScoringModel, tasks: dict[str, list[Item]],
                       variants: Sequence[PromptFormat] | None = None, batch_size: int = 16,
                       max_items: int | None = None, fewshot: dict[str, dict] | None = None
                       ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Scores per (task, variant) and the spread per task.

    Returns `(scores, spread)`: `scores` has task, variant, template, shots, acc, acc_norm, n;
    `spread` has task, acc_min, acc_max, acc_spread, acc_norm_min, acc_norm_max, acc_norm_spread.
    Variants needing more shots than a task has items are skipped for that task (logged).
    """
    variants = list(variants) if variants is not None else default_variants()
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"prompt variants need distinct names, got {names}")
    rows = []
    for variant in variants:
        usable = {task: items for task, items in tasks.items()
                  if len((fewshot or {}).get(task, {}).get("items") or items[1:]) >= variant.shots}
        for task in sorted(set(tasks) - set(usable)):
            log.warning("skipping variant %s for task %s: %d-shot prompts need more than %d items",
                        variant.name, task, variant.shots, len(tasks[task]))
        if not usable:
            continue
        result = evaluate_multiple_choice(model, usable, variant, batch_size=batch_size, max_items=max_items,
                                          fewshot=fewshot)
        for task, score in result.scores.items():
            rows.append({"task": task, "variant": variant.name,
                         "template": variant.template or "(each item's own)",
                         "shots": variant.shots, **score})
    scores = pl.DataFrame(rows, schema={"task": pl.Utf8, "variant": pl.Utf8, "template": pl.Utf8,
                                        "shots": pl.Int64, "acc": pl.Float64, "acc_norm": pl.Float64,
                                        "n": pl.Int64})
    spread = scores.group_by("task", maintain_order=True).agg(
        pl.col("acc").min().alias("acc_min"), pl.col("acc").max().alias("acc_max"),
        (pl.col("acc").max() - pl.col("acc").min()).alias("acc_spread"),
        pl.col("acc_norm").min().alias("acc_norm_min"), pl.col("acc_norm").max().alias("acc_norm_max"),
        (pl.col("acc_norm").max() - pl.col("acc_norm").min()).alias("acc_norm_spread"),
    )
    return scores, spread
