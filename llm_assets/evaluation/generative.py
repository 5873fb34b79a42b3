"""Open questions scored by what the model says: greedy replies, exact match and contains-answer.

Input is JSONL `{question, answers: [str, ...]}` (other keys are kept; the synthetic world's `split` also
yields `<stem>_sft` and `<stem>_heldout` tasks). A base model is prompted `Question: {question}\\nAnswer:`,
an assistant with the chat template (`render_chat`, generation prompt included). The reply is the greedy
continuation up to the end of turn / end of text, at most `max_new_tokens` tokens. A question that spells
a special token is encoded as ordinary text (only the chat prompt's markers are control ids).

Per task: `exact_match`, the share of replies whose first line, normalized, equals a normalized answer;
`contains`, the share whose whole reply contains a normalized answer as whole words. Normalized: lower
case, punctuation and the articles a/an/the removed, whitespace collapsed (SQuAD's rule; an answer that is
only an article keeps it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import torch

from llm_assets.benchmarks import (
    FORMAT,
    BenchmarkFormatError,
    Item,
    answer_words,
    detect_format,
    load_items,
    parse_json_line,
)
from llm_assets.evaluation.adapter import ScoringModel, warn_special_token_text
from llm_assets.evaluation.tasks import SPLITS
from llm_assets.tokens.special import END_OF_TURN, render_chat

log = logging.getLogger(__name__)

BASE_TEMPLATE = "Question: {question}\nAnswer:"
DEFAULT_MAX_NEW_TOKENS = 32


def is_open_question_file(path: str | Path) -> bool:
    """True for a JSONL file whose first record is an open question (`benchmarks.FORMATS`: `open`)."""
    path = Path(path)
    if path.suffix.lower() not in (".jsonl", ".json") or not path.is_file():
        return False
    with path.open(encoding="utf-8", errors="replace") as handle:
        first = next((line for line in handle if line.strip()), "")
    try:
        record = parse_json_line(first)
    except ValueError:  # not JSON: `load_items` says why, naming the line
        return False
    fmt = detect_format(record) if isinstance(record, dict) else None
    return fmt is not None and FORMAT[fmt].kind == "generated"


def load_open_questions(path: str | Path) -> list[Item]:
    """Items `{question, answers, doc_id, ...}` of an open-question JSONL file; bad records name file and line."""
    items = load_items(path)
    if FORMAT[items[0]["format"]].kind != "generated":
        raise BenchmarkFormatError(f"{path}: a {items[0]['format']} file, not open questions {{question, answers}}")
    return items


def load_open_suite(files: Sequence[str | Path]) -> dict[str, list[Item]]:
    """Open-question tasks named by file stem, plus `<stem>_<split>` where items carry `split`."""
    suite: dict[str, list[Item]] = {}
    for file in files:
        path = Path(file)
        items = load_open_questions(path)
        suite[path.stem] = items
        for split in SPLITS:
            subset = [item for item in items if item.get("split") == split]
            if subset:
                suite[f"{path.stem}_{split}"] = subset
        log.info("loaded %d open questions from %s", len(items), path)
    return suite


def exact_match(reply: str, answers: Sequence[str]) -> bool:
    first = reply.strip().split("\n", 1)[0]
    return answer_words(first) in {answer_words(a) for a in answers}


def contains_answer(reply: str, answers: Sequence[str]) -> bool:
    padded = f" {answer_words(reply)} "
    return any(f" {answer_words(a)} " in padded for a in answers)


def prompt(question: str, chat: bool) -> str:
    """The context a reply continues: the chat template for an assistant, `Question: …\\nAnswer:` for a base."""
    if chat:
        return render_chat([{"role": "user", "content": question}], add_generation_prompt=True)
    return BASE_TEMPLATE.format(question=question)


def stop_ids(model: ScoringModel) -> list[int]:
    """End of text, and end of turn where the tokenizer has it as a special token."""
    end = model.special_id(END_OF_TURN)
    return [model.eot_token_id, *([] if end is None else [end])]


def greedy_replies(model: ScoringModel, prompts: Sequence[str], max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                   batch_size: int = 16) -> list[str]:
    """Greedy replies, cut before the first stop id; prompts of equal token length are decoded as one batch.

    A prompt that leaves fewer than `max_new_tokens` positions in the window is cut from the left.
    """
    if model.greedy_fn is None:
        raise ValueError(f"{model.name}: this model offers no greedy decoding, so open questions cannot be scored")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    keep = model.max_length - max_new_tokens
    if keep < 1:
        raise ValueError(f"max_new_tokens {max_new_tokens} leaves no room for a prompt in the model's "
                         f"{model.max_length}-token window")
    stops = stop_ids(model)
    encoded = [model.encode(p, add_special_tokens=False)[-keep:] for p in prompts]
    by_length: dict[int, list[int]] = {}
    for index, ids in enumerate(encoded):
        by_length.setdefault(len(ids), []).append(index)
    replies = [""] * len(prompts)
    for members in by_length.values():
        for start in range(0, len(members), batch_size):
            batch = members[start:start + batch_size]
            new = model.greedy_fn(torch.tensor([encoded[i] for i in batch], dtype=torch.long), max_new_tokens,
                                  stops)
            for row, index in enumerate(batch):
                ids = new[row].tolist()
                cut = next((k for k, token in enumerate(ids) if token in stops), len(ids))
                replies[index] = model.decode(ids[:cut])
    return replies


@dataclass
class GenerativeResult:
    """Per-task `{exact_match, contains, n}` and one row per item (task, doc_id, context, reply, answers, ...)."""

    scores: dict[str, dict[str, float]]
    items: pl.DataFrame


def evaluate_open_questions(model: ScoringModel, tasks: dict[str, list[Item]], chat: bool = False,
                            max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, batch_size: int = 16,
                            max_items: int | None = None) -> GenerativeResult:
    """Greedy replies to every task's first `max_items` questions; a prompt shared by tasks is decoded once."""
    chosen = {task: items[:max_items] if max_items else items for task, items in tasks.items()}
    for task, items in chosen.items():
        warn_special_token_text(task, [[item["question"]] for item in items])
    contexts = list(dict.fromkeys(prompt(item["question"], chat) for items in chosen.values() for item in items))
    reply_of = dict(zip(contexts, greedy_replies(model, contexts, max_new_tokens, batch_size), strict=True))
    rows = []
    for task, items in chosen.items():
        for index, item in enumerate(items):
            context = prompt(item["question"], chat)
            reply = reply_of[context]
            rows.append({"task": task, "item": index, "doc_id": int(item.get("doc_id", index)), "context": context,
                         "reply": reply, "answers": list(item["answers"]),
                         "exact_match": float(exact_match(reply, item["answers"])),
                         "contains": float(contains_answer(reply, item["answers"])),
                         "split": item.get("split"), "fact": item.get("fact")})
    frame = pl.DataFrame(rows, schema_overrides={"split": pl.Utf8, "fact": pl.Utf8}) if rows else pl.DataFrame()
    scores = {} if frame.is_empty() else {
        row["task"]: {"exact_match": row["exact_match"], "contains": row["contains"], "n": int(row["n"])}
        for row in frame.group_by("task", maintain_order=True)
        .agg(pl.col("exact_match").mean(), pl.col("contains").mean(), pl.len().alias("n")).iter_rows(named=True)}
    for task, score in scores.items():
        log.info("%s: exact_match %.4f contains %.4f (n=%d, %s prompt)", task, score["exact_match"],
                 score["contains"], score["n"], "chat" if chat else "base")
    return GenerativeResult(scores=scores, items=frame)


def write_generation_samples(items: pl.DataFrame, path: str | Path, append: bool = False) -> Path:
    """One JSON line per open question: task, doc_id, context, reply, answers, exact_match, contains."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a" if append else "w", encoding="utf-8") as handle:
        for row in items.iter_rows(named=True):
            handle.write(json.dumps({key: row[key] for key in ("task", "doc_id", "context", "reply", "answers",
                                                               "exact_match", "contains")}) + "\n")
    return path
