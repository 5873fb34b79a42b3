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
from pathlib import Path

import polars as pl

from .adapter import load_scoring_model
from .cli import bar_plot, scores_table
from .cloze import cloze_pairs, is_cloze, question_vs_cloze
from .contamination import find_contamination, scores_by_contamination
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
    fmt = PromptFormat(template=template, shots=shots)
    notes = []
    if not tasks:
        notes.append("no benchmark tasks: multiple-choice scores, prompt sensitivity and contamination are not "
                     "measured (set LLM_ASSETS_BENCHMARKS to JSONL or MMLU CSV files)")
    if shard_dir is not None and validation_tokens(shard_dir) < 2:
        notes.append("the validation split is empty: perplexity is not measured")
        shard_dir = None
    pairs = cloze_pairs(tasks)
    questions = {task: items for task, items in tasks.items() if not is_cloze(items)}
    contamination = find_contamination(questions, training_files) if training_files and questions else None
    open_tasks = open_tasks or {}
    generations = []
    results: dict = {"models": {}, "contamination": None, "notes": notes}
    scores: dict[str, dict] = {}
    item_frames = []
    for name, folder in models.items():
        log.info("scoring %s (%s)", name, folder)
        model = load_scoring_model(folder)
        entry: dict = {"scores": {}}
        if tasks:
            mc = evaluate_multiple_choice(model, tasks, fmt, batch_size=batch_size, max_items=max_items,
                                          fewshot=fewshot)
            scores[name] = entry["scores"] = mc.scores
            item_frames.append(mc.items.with_columns(pl.lit(name).alias("model")))
            _, spread = prompt_sensitivity(model, questions, default_variants(shots=3), batch_size=batch_size,
                                           max_items=max_items, fewshot=fewshot)
            entry["sensitivity"] = {row["task"]: {**row, "cloze_acc": mc.scores[pairs[row["task"]]]["acc"]}
                                    if row["task"] in pairs else row for row in spread.to_dicts()}
            if contamination is not None:
                entry["clean_vs_contaminated"] = scores_by_contamination(mc.items, contamination).to_dicts()
        if open_tasks:
            gen = evaluate_open_questions(model, open_tasks, chat=name in chat_models, max_new_tokens=max_new_tokens,
                                          batch_size=batch_size, max_items=max_items)
            entry["generative"] = gen.scores
            generations.append(gen.items.with_columns(pl.lit(name).alias("model")))
        if shard_dir is not None:
            entry["perplexity"] = perplexity_from_shards(model, shard_dir, "validation", batch_size=8,
                                                         max_tokens=perplexity_tokens).as_dict()
        results["models"][name] = entry
    table = scores_table({name: {**scores.get(name, {}), **entry.get("generative", {})}
                          for name, entry in results["models"].items()})
    for name, entry in results["models"].items():
        ppl = entry.get("perplexity")
        if ppl:
            extra = pl.DataFrame({"model": [name, name], "benchmark": ["validation", "validation"],
                                  "metric": ["perplexity", "bits_per_byte"],
                                  "value": [ppl["perplexity"], ppl["bits_per_byte"]], "n": [ppl["tokens"]] * 2})
            table = pl.concat([table, extra.cast(table.schema)])
    table.write_parquet(out_dir / "scores.parquet")
    items = pl.concat(item_frames, how="diagonal_relaxed") if item_frames else pl.DataFrame()
    items.drop("loglikelihoods", strict=False).write_parquet(out_dir / "items.parquet")
    (pl.concat(generations, how="diagonal_relaxed") if generations else pl.DataFrame()).write_parquet(
        out_dir / "generations.parquet")
    knowledge = question_vs_cloze(items, pairs)
    knowledge.write_parquet(out_dir / "question_vs_cloze.parquet")
    results["question_vs_cloze"] = knowledge.to_dicts()
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
    if contamination is not None:
        contamination.items.write_parquet(out_dir / "contamination.parquet")
        results["contamination"] = {
            "n": contamination.n, "documents_scanned": contamination.documents_scanned,
            "tasks": {row["task"]: row for row in contamination.summary.to_dicts()},
            "contaminated_items": int(contamination.items["contaminated"].sum()),
        }
    else:
        (out_dir / "contamination.parquet").unlink(missing_ok=True)
    for note in notes:
        log.warning("benchmark scores: %s", note)
    results["table"] = table
    (out_dir / "results.json").write_text(json.dumps({k: v for k, v in results.items() if k != "table"},
                                                     indent=2, default=str))
    return results
