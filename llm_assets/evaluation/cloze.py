"""Question form against cloze form of the same facts: what a model answers versus what it knows.

A cloze item (`form: "cloze"`) states the fact up to its value, `Lan He was born in`, with the same choices
as the matching question, `In which city was Lan He, …, born?`, and is scored with the template `{query}`.
Tasks pair when their items ask about the same (person, fact) keys in the same order; the gap between the
two accuracies is knowledge the question format hides.
"""

from __future__ import annotations

import polars as pl

from llm_assets.benchmarks import Item


def is_cloze(items: list[Item]) -> bool:
    return bool(items) and all(item.get("form") == "cloze" for item in items)


def _keys(items: list[Item]) -> list[tuple] | None:
    keys = [(item.get("person"), item.get("fact")) for item in items]
    return keys if all(None not in key for key in keys) else None


def cloze_pairs(tasks: dict[str, list[Item]]) -> dict[str, str]:
    """`{question task: cloze task}` for every question task whose items a cloze task restates."""
    cloze = {name: _keys(items) for name, items in tasks.items() if is_cloze(items)}
    pairs = {}
    for name, items in tasks.items():
        keys = None if is_cloze(items) else _keys(items)
        match = next((c for c, cloze_keys in cloze.items() if keys and cloze_keys == keys), None)
        if match is not None:
            pairs[name] = match
    return pairs


def question_vs_cloze(items: pl.DataFrame, pairs: dict[str, str]) -> pl.DataFrame:
    """acc of each paired question task and its cloze task, per fact and over all facts ("all"), with the gap.

    `items` is `MultipleChoiceResult.items` (task, fact, acc, ...), optionally with a `model` column.
    """
    schema = {"model": pl.Utf8, "task": pl.Utf8, "cloze_task": pl.Utf8, "fact": pl.Utf8, "question_acc": pl.Float64,
              "cloze_acc": pl.Float64, "gap": pl.Float64, "n": pl.Int64}
    if items.is_empty() or not pairs:
        return pl.DataFrame(schema=schema)
    if "model" not in items.columns:
        items = items.with_columns(pl.lit(None, pl.Utf8).alias("model"))
    rows = items.filter(pl.col("task").is_in([*pairs, *pairs.values()]) & pl.col("fact").is_not_null())
    rows = rows.select("model", "task", "fact", "acc")
    both = pl.concat([rows, rows.with_columns(pl.lit("all").alias("fact"))])
    acc = both.group_by("model", "task", "fact").agg(pl.col("acc").mean(), pl.len().alias("n"))
    link = pl.DataFrame({"task": list(pairs), "cloze_task": list(pairs.values())})
    question = acc.join(link, on="task").rename({"acc": "question_acc"})
    cloze = acc.rename({"task": "cloze_task", "acc": "cloze_acc"}).drop("n")
    out = (question.join(cloze, on=["model", "cloze_task", "fact"], how="left", nulls_equal=True)
           .with_columns((pl.col("cloze_acc") - pl.col("question_acc")).alias("gap")))
    order = {task: i for i, task in enumerate(pairs)}
    return (out.with_columns(pl.col("task").replace_strict(order, return_dtype=pl.Int64).alias("_order"),
                             (pl.col("fact") == "all").alias("_all"))
            .sort("model", "_order", "_all", "fact").select(list(schema)).cast(schema))
