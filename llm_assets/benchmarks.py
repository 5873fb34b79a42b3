"""Benchmark files into multiple-choice items, rendered the way the matching lm-eval-harness task renders them.

Three stages read benchmark items: decontamination of the training mixture, the SFT data checks and
evaluation, so their reading sits at the bottom of the import graph, beside `lake` and `profiles`.

One format per file, recognised by extension and then by the keys of its records:

| format      | input                                                        | lm-eval task mirrored       |
|-------------|--------------------------------------------------------------|-----------------------------|
| `icl`       | JSONL `{query, choices, gold}` (llm-foundry ICL)             | none: the query as written  |
| `question`  | JSONL `{question, choices: [..], answer: int or letter}`     | `Question: …\\nAnswer:` form |
| `arc`       | JSONL `{question, choices: {text, label}, answerKey}`        | `arc_easy` / `arc_challenge` |
| `hellaswag` | JSONL `{activity_label, ctx_a, ctx_b, endings, label}`       | `hellaswag`                 |
| `piqa`      | JSONL `{goal, sol1, sol2, label}`                            | `piqa`                      |
| `mmlu`      | CSV `question,A,B,C,D,answer`, no header, subject from name  | `mmlu_<subject>`            |

Every item is `{"query", "choices", "gold", "format", "template", "doc_id", ...}`: `query` is the text that
fills `{query}` in `template` (for MMLU the question and its lettered options, for HellaSwag lm-eval's
preprocessed context), `choices` the answer texts, `gold` the index of the right one, `doc_id` the item's
index in its file. MMLU items also carry `continuations` (` A`…` D` are scored, not the texts) and the
subject `description` that precedes the shots; other keys of a JSONL record are kept (the synthetic
world's `split` "sft"/"heldout" and `contaminated`).

Malformed input raises `BenchmarkFormatError` naming the file and line.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Item = dict[str, Any]
LETTERS = "ABCDEFGHIJ"

QUESTION_TEMPLATE = "Question: {query}\nAnswer:"
# how `{query}` becomes the context, per format: lm-eval's doc_to_text for the tasks it mirrors
TEMPLATES = {
    "icl": "{query}\nAnswer:",  # the query as written, then the answer cue; never wrapped in "Question:" again
    "question": QUESTION_TEMPLATE,
    "arc": QUESTION_TEMPLATE,
    "piqa": QUESTION_TEMPLATE,
    "hellaswag": "{query}",
    "mmlu": "{query}\nAnswer:",
}


class BenchmarkFormatError(ValueError):
    """A benchmark file that cannot be read as multiple-choice items; the message names file and line."""


def format_error(path: Path, line: int, why: str) -> BenchmarkFormatError:
    """The error for a bad line of a benchmark file, as `path:line: why`."""
    return BenchmarkFormatError(f"{path}:{line}: {why}")


def detect_format(record: dict) -> str | None:
    """The format of one JSONL record by its keys (see the module table), None if none fits."""
    if "query" in record:
        return "icl"
    if "endings" in record:
        return "hellaswag"
    if "goal" in record and "sol1" in record:
        return "piqa"
    if "question" in record and "answerKey" in record:
        return "arc"
    if "question" in record and "answer" in record:
        return "question"
    return None


def hellaswag_preprocess(text: str) -> str:
    """lm-eval's HellaSwag clean-up: strip, WikiHow `[title]` to a full stop, drop other `[...]`, one space."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def _index(gold: Any, labels: list | None, n: int, key: str, path: Path, line: int) -> int:
    """An answer given as an index, a label from `labels`, or a letter, as an index into the choices."""
    if isinstance(gold, str) and labels is not None and gold in labels:
        gold = labels.index(gold)
    elif isinstance(gold, str) and gold.strip().isdigit() and labels is None:
        gold = int(gold)
    elif isinstance(gold, str) and len(gold) == 1 and gold.upper() in LETTERS:
        gold = LETTERS.index(gold.upper())
    if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < n:
        raise format_error(path, line, f"{key} must be an index into the {n} choices, got {gold!r}")
    return gold


def _normalise(record: dict, fmt: str, path: Path, line: int) -> Item:
    """One record of a JSONL file as an item of format `fmt`."""
    labels = None
    if fmt == "icl":
        query, choices, gold, key = record.get("query"), record.get("choices"), record.get("gold"), "gold"
        used = ("query", "choices", "gold")
    elif fmt in ("question", "arc"):
        question, choices = record.get("question"), record.get("choices")
        key = "answerKey" if fmt == "arc" else "answer"
        gold = record.get(key)
        if isinstance(question, dict):  # AI2's own ARC files: {"question": {"stem", "choices": [{text, label}]}}
            choices = {"text": [c.get("text") for c in question.get("choices", [])],
                       "label": [c.get("label") for c in question.get("choices", [])]}
            question = question.get("stem")
        if isinstance(choices, dict):  # {"text": [...], "label": [...]}
            labels = choices.get("label")
            choices = choices.get("text")
        query, used = question, ("question", "choices", key)
    elif fmt == "hellaswag":
        endings, gold, key = record.get("endings"), record.get("label"), "label"
        if isinstance(record.get("ctx_a"), str) and isinstance(record.get("ctx_b"), str):
            ctx = record["ctx_a"] + " " + record["ctx_b"].capitalize()
        elif isinstance(record.get("ctx"), str):
            ctx = record["ctx"]
        else:
            raise format_error(path, line, "a HellaSwag record needs ctx_a and ctx_b (or ctx) as strings")
        activity = record.get("activity_label")
        if not isinstance(activity, str):
            raise format_error(path, line, "a HellaSwag record needs activity_label as a string")
        query = hellaswag_preprocess(activity + ": " + ctx)
        choices = ([hellaswag_preprocess(e) if isinstance(e, str) else e for e in endings]
                   if isinstance(endings, list) else endings)
        used = ("endings", "label")
    elif fmt == "piqa":
        query, gold, key = record.get("goal"), record.get("label"), "label"
        choices = [record.get("sol1"), record.get("sol2")]
        used = ("goal", "sol1", "sol2", "label")
    else:
        raise format_error(path, line, f"expected keys query/choices/gold, question/choices/answer, "
                                f"question/choices/answerKey (ARC), ctx_a/ctx_b/endings/label (HellaSwag) or "
                                f"goal/sol1/sol2/label (PIQA), got {sorted(record)}")
    if not isinstance(query, str):
        raise format_error(path, line, f"the question text must be a string, got {type(query).__name__}")
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
        raise format_error(path, line, "choices must be a list of at least two strings")
    gold = _index(gold, labels, len(choices), key, path, line)
    extra = {k: v for k, v in record.items() if k not in used}
    return {**extra, "query": query, "choices": list(choices), "gold": gold, "format": fmt,
            "template": TEMPLATES[fmt]}


def _check_choices(item: Item, path: Path, line: int, index: int) -> None:
    """Empty or repeated answer texts make an item that no score can get right: refuse them."""
    choices = item["choices"]
    empty = [i for i, c in enumerate(choices) if not c.strip()]
    if empty:
        raise format_error(path, line, f"item {index}: choice {empty[0]} is empty; every choice needs text")
    seen: dict[str, int] = {}
    for i, choice in enumerate(choices):
        if choice in seen:
            raise format_error(path, line, f"item {index}: choices {seen[choice]} and {i} are the same text "
                                    f"{choice!r}; an item needs distinct choices")
        seen[choice] = i


def _text(path: Path) -> str:
    """The file as UTF-8 text; a file that is not names the line of the first bad byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise format_error(path, line, f"not UTF-8 text (byte {data[err.start]:#04x} at offset {err.start}); "
                                "benchmark files are UTF-8 JSONL or CSV") from None


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """`(line number, object)` of each non-blank line of a UTF-8 JSONL file; a bad line names file and line."""
    for line_no, line in enumerate(_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise format_error(path, line_no, f"not valid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(record, dict):
            raise format_error(path, line_no, f"expected a JSON object, got {type(record).__name__}")
        yield line_no, record


def load_jsonl(path: str | Path) -> list[Item]:
    """Items of a JSONL benchmark file (one format, see module doc); blank lines are skipped."""
    path = Path(path)
    items: list[Item] = []
    fmt = None
    for line_no, record in jsonl_objects(path):
        this = detect_format(record)
        if fmt is not None and this is not None and this != fmt:
            raise format_error(path, line_no, f"a {this} record in a file of {fmt} records; one format per file")
        fmt = fmt or this
        item = _normalise(record, this or "", path, line_no)
        _check_choices(item, path, line_no, len(items))
        item["doc_id"] = len(items)
        items.append(item)
    return items


def mmlu_subject(path: Path) -> str:
    """`abstract_algebra` from `abstract_algebra_test.csv` or `mmlu_abstract_algebra.csv`."""
    stem = path.stem
    stem = re.sub(r"_(test|val|dev)$", "", stem)
    return re.sub(r"^mmlu_", "", stem)


def mmlu_description(subject: str) -> str:
    """The line lm-eval's `mmlu_<subject>` puts before the shots."""
    return f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"


def load_mmlu_csv(path: str | Path) -> list[Item]:
    """Items of an MMLU CSV file: `question,A,B,C,D,answer`, no header, rendered like lm-eval's mmlu tasks."""
    path = Path(path)
    description = mmlu_description(mmlu_subject(path))
    items: list[Item] = []
    reader = csv.reader(io.StringIO(_text(path), newline=""))
    for row in reader:
        line_no = reader.line_num
        if not row:
            continue
        if len(row) != 6:
            raise format_error(path, line_no, f"expected 6 fields question,A,B,C,D,answer, got {len(row)}")
        answer = row[5].strip().upper()
        if answer not in LETTERS[:4]:
            raise format_error(path, line_no, f"answer must be one of A, B, C, D, got {row[5]!r}")
        question, choices = row[0], row[1:5]
        # lm-eval: "{{question.strip()}}\nA. {{choices[0]}}\n…\nD. {{choices[3]}}\nAnswer:", continuations " A"…" D"
        text = question.strip() + "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(choices))
        items.append({"query": text, "question": question, "choices": choices, "gold": LETTERS.index(answer),
                      "continuations": list(LETTERS[:4]), "description": description, "format": "mmlu",
                      "template": TEMPLATES["mmlu"], "doc_id": len(items)})
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
