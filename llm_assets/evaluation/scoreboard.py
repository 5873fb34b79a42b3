"""Score several checkpoints on one suite: multiple choice, question vs cloze, open questions (greedy
answers), perplexity, prompt sensitivity, contamination.

Writes `scores.parquet` (model × benchmark × metric), `scores.md`, `scores.png`, per-item rows
(`items.parquet`, `generations.parquet`), `question_vs_cloze.parquet` and the contamination report under
`out_dir`, and returns the numbers for metadata and the model card.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from .adapter import ScoringModel, load_scoring_model
from .cli import bar_plot, scores_table
from .cloze import cloze_pairs, is_cloze, question_vs_cloze
from .contamination import ContaminationReport, find_contamination, scores_by_contamination
from .generative import DEFAULT_MAX_NEW_TOKENS, evaluate_open_questions
from .multiple_choice import PromptFormat, evaluate_multiple_choice
from .perplexity import perplexity_from_shards
from .sensitivity import default_variants, prompt_sensitivity
from .tasks import Item

log = logging.getLogger(__name__)


def markdown_table(df: pl.DataFrame) -> str:
    header = "| " + " | ".join(df.columns) + " |\n|" + "|".join("---" for _ in df.columns) + "|\n"
    rows = ("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |"
            for row in df.iter_rows())
    return header + "\n".join(rows)


def validation_tokens(shard_dir: Path) -> int:
    """Tokens in the shards' validation split (0 when the split is empty)."""
    from llm_assets.tokens.shards import load_manifest

    return sum(entry["tokens"] for entry in load_manifest(shard_dir)["splits"].get("validation", []))


def score_models(models: dict[str, Path], tasks: dict[str, list[Item]], shard_dir: Path | None,
                 training_files: list[Path], out_dir: Path, shots: int = 0, batch_size: int = 16,
                 max_items: int | None = None, perplexity_tokens: int | None = 200_000,
                 template: str | None = None, fewshot: dict[str, dict] | None = None,
                 open_tasks: dict[str, list[Item]] | None = None, chat_models: Collection[str] = ("assistant",),
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> dict:
    """Score `models` and write the tables and plot; `results["notes"]` says what could not be measured
    (no benchmark tasks, an empty validation split) instead of failing. `template` replaces every item's own
    template; `fewshot` gives tasks their shot pools (`tasks.load_fewshot`). `open_tasks` are answered
    greedily (`generative`), with the chat template for the models named in `chat_models`.

    Cloze tasks keep their own `{query}` template: they are left out of prompt sensitivity (their accuracy
    goes beside the paired question task's spread as `cloze_acc`) and of the contamination scan (they state
    training facts by design)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    notes = []
    if not tasks:
        notes.append("no benchmark tasks: multiple-choice scores, prompt sensitivity and contamination are not "
                     "measured (set LLM_ASSETS_BENCHMARKS to JSONL or MMLU CSV files)")
    if shard_dir is not None and validation_tokens(shard_dir) < 2:
        notes.append("the validation split is empty: perplexity is not measured")
        shard_dir = None
    questions = {task: items for task, items in tasks.items() if not is_cloze(items)}
    suite = _Suite(tasks, questions, cloze_pairs(tasks), open_tasks or {}, shard_dir,
                   find_contamination(questions, training_files) if training_files and questions else None,
                   PromptFormat(template=template, shots=shots), batch_size, max_items, fewshot, perplexity_tokens,
                   max_new_tokens)
    results: dict = {"models": {}, "contamination": None, "notes": notes}
    item_frames, generations = [], []
    for name, folder in models.items():
        log.info("scoring %s (%s)", name, folder)
        entry, items, answers = _score_model(load_scoring_model(folder), suite, chat=name in chat_models)
        results["models"][name] = entry
        if items is not None:
            item_frames.append(items.with_columns(pl.lit(name).alias("model")))
        if answers is not None:
            generations.append(answers.with_columns(pl.lit(name).alias("model")))
    table = _scores_table(results["models"])
    results["question_vs_cloze"] = _write_tables(out_dir, table, item_frames, generations, suite.pairs, notes)
    results["contamination"] = _write_contamination(out_dir, suite.contamination)
    for note in notes:
        log.warning("benchmark scores: %s", note)
    results["table"] = table
    (out_dir / "results.json").write_text(json.dumps({k: v for k, v in results.items() if k != "table"},
                                                     indent=2, default=str))
    return results


@dataclass(frozen=True)
class _Suite:
    """What every model is scored on, and how."""

    tasks: dict[str, list[Item]]
    questions: dict[str, list[Item]]  # the tasks that are not cloze
    pairs: dict[str, str]  # question task -> its cloze task
    open_tasks: dict[str, list[Item]]
    shard_dir: Path | None
    contamination: ContaminationReport | None  # None: no training files to scan
    fmt: PromptFormat
    batch_size: int
    max_items: int | None
    fewshot: dict[str, dict] | None
    perplexity_tokens: int | None
    max_new_tokens: int


def _score_model(model: ScoringModel, suite: _Suite, chat: bool) -> tuple[dict, pl.DataFrame | None, pl.DataFrame | None]:
    """(entry for results["models"], per-item multiple-choice rows, greedy answers) of one loaded model."""
    entry: dict = {"scores": {}}
    items = answers = None
    if suite.tasks:
        mc = evaluate_multiple_choice(model, suite.tasks, suite.fmt, batch_size=suite.batch_size,
                                      max_items=suite.max_items, fewshot=suite.fewshot)
        entry["scores"] = mc.scores
        items = mc.items
        _, spread = prompt_sensitivity(model, suite.questions, default_variants(shots=3), batch_size=suite.batch_size,
                                       max_items=suite.max_items, fewshot=suite.fewshot)
        pairs = suite.pairs
        entry["sensitivity"] = {row["task"]: {**row, "cloze_acc": mc.scores[pairs[row["task"]]]["acc"]}
                                if row["task"] in pairs else row for row in spread.to_dicts()}
        if suite.contamination is not None:
            entry["clean_vs_contaminated"] = scores_by_contamination(mc.items, suite.contamination).to_dicts()
    if suite.open_tasks:
        gen = evaluate_open_questions(model, suite.open_tasks, chat=chat, max_new_tokens=suite.max_new_tokens,
                                      batch_size=suite.batch_size, max_items=suite.max_items)
        entry["generative"] = gen.scores
        answers = gen.items
    if suite.shard_dir is not None:
        entry["perplexity"] = perplexity_from_shards(model, suite.shard_dir, "validation", batch_size=8,
                                                     max_tokens=suite.perplexity_tokens).as_dict()
    return entry, items, answers


def _scores_table(entries: dict[str, dict]) -> pl.DataFrame:
    """model × benchmark × metric: multiple-choice and generative scores, and validation perplexity."""
    table = scores_table({name: {**entry["scores"], **entry.get("generative", {})} for name, entry in entries.items()})
    for name, entry in entries.items():
        ppl = entry.get("perplexity")
        if ppl:
            extra = pl.DataFrame({"model": [name, name], "benchmark": ["validation", "validation"],
                                  "metric": ["perplexity", "bits_per_byte"],
                                  "value": [ppl["perplexity"], ppl["bits_per_byte"]], "n": [ppl["tokens"]] * 2})
            table = pl.concat([table, extra.cast(table.schema)])
    return table


def _write_tables(out_dir: Path, table: pl.DataFrame, item_frames: list[pl.DataFrame],
                  generations: list[pl.DataFrame], pairs: dict[str, str], notes: list[str]) -> list[dict]:
    """Writes the scores, per-item rows, answers, plot and question-vs-cloze table; returns the latter's rows.
    A file an earlier run wrote that this run has nothing for is removed, so it cannot describe other scores."""
    table.write_parquet(out_dir / "scores.parquet")
    items = pl.concat(item_frames, how="diagonal_relaxed") if item_frames else pl.DataFrame()
    items.drop("loglikelihoods", strict=False).write_parquet(out_dir / "items.parquet")
    (pl.concat(generations, how="diagonal_relaxed") if generations else pl.DataFrame()).write_parquet(
        out_dir / "generations.parquet")
    knowledge = question_vs_cloze(items, pairs)
    knowledge.write_parquet(out_dir / "question_vs_cloze.parquet")
    mc_only = table.filter(pl.col("metric").is_in(["acc", "acc_norm"]))
    plot = out_dir / "scores.png"
    if mc_only.is_empty():
        plot.unlink(missing_ok=True)  # a plot of an earlier run would describe other scores
    else:
        bar_plot(mc_only, plot)
    (out_dir / "scores.md").write_text(markdown_table(table) if not table.is_empty() else
                                       "no scores: " + "; ".join(notes))
    if knowledge.is_empty():
        (out_dir / "question_vs_cloze.md").unlink(missing_ok=True)
    else:
        (out_dir / "question_vs_cloze.md").write_text(markdown_table(knowledge))
    return knowledge.to_dicts()


def _write_contamination(out_dir: Path, contamination: ContaminationReport | None) -> dict | None:
    """Writes the per-item contamination rows; returns the summary for results (None: not scanned)."""
    if contamination is None:
        (out_dir / "contamination.parquet").unlink(missing_ok=True)
        return None
    contamination.items.write_parquet(out_dir / "contamination.parquet")
    return {
        "n": contamination.n, "documents_scanned": contamination.documents_scanned,
        "tasks": {row["task"]: row for row in contamination.summary.to_dicts()},
        "contaminated_items": int(contamination.items["contaminated"].sum()),
    }
