"""Benchmark files into multiple-choice items `{"query", "choices", "gold", ...}`.

Accepted formats (chosen per file by extension, then per line by keys):

* JSONL, llm-foundry ICL style: `{"query": str, "choices": [str], "gold": int}`; extra keys are kept
  (the synthetic world's `benchmark.jsonl` adds `split` "sft"/"heldout" and `contaminated`).
* JSONL, lm-eval-harness multiple-choice style: `{"question": str, "choices": [str] | {"text": [...],
  "label": [...]}, "answer": int | label}`.
* CSV, MMLU style: `question,A,B,C,D,answer` with the answer a letter, no header row.

Malformed input raises `BenchmarkFormatError` naming the file and line.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Item = dict[str, Any]
SPLITS = ("sft", "heldout")
LETTERS = "ABCDEFGHIJ"


class BenchmarkFormatError(ValueError):
    """A benchmark file that cannot be read as multiple-choice items; the message names file and line."""


def _fail(path: Path, line: int, why: str) -> BenchmarkFormatError:
    return BenchmarkFormatError(f"{path}:{line}: {why}")


def _normalise(record: dict, path: Path, line: int) -> Item:
    if "query" in record:
        query, choices, gold, key = record.get("query"), record.get("choices"), record.get("gold"), "gold"
        extra = {k: v for k, v in record.items() if k not in ("query", "choices", "gold")}
    elif "question" in record:
        query, choices, gold, key = record.get("question"), record.get("choices"), record.get("answer"), "answer"
        extra = {k: v for k, v in record.items() if k not in ("question", "choices", "answer")}
        if isinstance(choices, dict):  # ARC-style {"text": [...], "label": [...]}
            labels = choices.get("label")
            choices = choices.get("text")
            if isinstance(gold, str) and isinstance(labels, list) and gold in labels:
                gold = labels.index(gold)
        if isinstance(gold, str) and len(gold) == 1 and gold.upper() in LETTERS:
            gold = LETTERS.index(gold.upper())
    else:
        raise _fail(path, line, f"expected keys query/choices/gold or question/choices/answer, got {sorted(record)}")
    if not isinstance(query, str):
        raise _fail(path, line, f"query/question must be a string, got {type(query).__name__}")
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
        raise _fail(path, line, "choices must be a list of at least two strings")
    if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < len(choices):
        raise _fail(path, line, f"{key} must be an index into the {len(choices)} choices, got {gold!r}")
    return {"query": query, "choices": list(choices), "gold": gold, **extra}


def load_jsonl(path: str | Path) -> list[Item]:
    """Items of a JSONL benchmark file (either JSON layout, see module doc); blank lines are skipped."""
    path = Path(path)
    items = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise _fail(path, line_no, f"not valid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(record, dict):
                raise _fail(path, line_no, f"expected a JSON object, got {type(record).__name__}")
            items.append(_normalise(record, path, line_no))
    return items


def load_mmlu_csv(path: str | Path) -> list[Item]:
    """Items of an MMLU CSV file: `question,A,B,C,D,answer`, no header."""
    path = Path(path)
    items = []
    with path.open(encoding="utf-8", newline="") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            if not row:
                continue
            if len(row) != 6:
                raise _fail(path, line_no, f"expected 6 fields question,A,B,C,D,answer, got {len(row)}")
            answer = row[5].strip().upper()
            if answer not in LETTERS[:4]:
                raise _fail(path, line_no, f"answer must be one of A, B, C, D, got {row[5]!r}")
            items.append({"query": row[0], "choices": row[1:5], "gold": LETTERS.index(answer)})
    return items


def load_items(path: str | Path) -> list[Item]:
    """Items of one benchmark file, by extension: `.jsonl`/`.json` or `.csv`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"benchmark file not found: {path}; give JSONL or MMLU-style CSV task files")
    if path.suffix.lower() in (".jsonl", ".json"):
        items = load_jsonl(path)
    elif path.suffix.lower() == ".csv":
        items = load_mmlu_csv(path)
    else:
        raise BenchmarkFormatError(f"{path}: unknown benchmark format {path.suffix!r}; use .jsonl or .csv")
    if not items:
        raise BenchmarkFormatError(f"{path}: no items")
    return items


def load_suite(files: list[str | Path]) -> dict[str, list[Item]]:
    """Tasks named by file stem; a file whose items carry `split` also yields `<stem>_sft`, `<stem>_heldout`."""
    suite: dict[str, list[Item]] = {}
    for file in files:
        path = Path(file)
        items = load_items(path)
        names = {path.stem: items}
        if any("split" in item for item in items):
            for split in SPLITS:
                subset = [item for item in items if item.get("split") == split]
                if subset:
                    names[f"{path.stem}_{split}"] = subset
        for name, task_items in names.items():
            if name in suite:
                raise BenchmarkFormatError(f"{path}: task name {name!r} is already taken by another file")
            suite[name] = task_items
        log.info("loaded %d items from %s", len(items), path)
    return suite
