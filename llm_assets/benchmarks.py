"""Benchmark files into items, rendered the way the matching lm-eval-harness task renders them.

Three stages read benchmark items: decontamination of the training mixture, the SFT data checks and
evaluation, so their reading sits at the bottom of the import graph, beside `lake` and `profiles`.

One format per file, recognised by extension and then by the keys of its records. Each format is one
record of `FORMATS` (detection, reading, lm-eval's context and shot rules, what is scored, what
decontamination looks for), which every consumer reads:

| format      | input                                                        | lm-eval task mirrored       |
|-------------|--------------------------------------------------------------|-----------------------------|
| `icl`       | JSONL `{query, choices, gold}` (llm-foundry ICL)             | none: the query as written  |
| `question`  | JSONL `{question, choices: [..], answer: int or letter}`     | `Question: …\\nAnswer:` form |
| `arc`       | JSONL `{question, choices: {text, label}, answerKey}`        | `arc_easy` / `arc_challenge` |
| `hellaswag` | JSONL `{activity_label, ctx_a, ctx_b, endings, label}`       | `hellaswag`                 |
| `piqa`      | JSONL `{goal, sol1, sol2, label}`                            | `piqa`                      |
| `open`      | JSONL `{question, answers: [..]}`: a generated reply scored  | none                        |
| `mmlu`      | CSV `question,A,B,C,D,answer`, no header, subject from name  | `mmlu_<subject>`            |

A cloze file is a `question` file whose items carry `form: "cloze"`. Every multiple-choice item is `{"query", "choices", "gold", "format", "template", "doc_id", ...}`: `query` is the text that
fills `{query}` in `template` (for MMLU the question and its lettered options, for HellaSwag lm-eval's
preprocessed context), `choices` the answer texts, `gold` the index of the right one, `doc_id` the item's
index in its file; an open item is `{"query" (the question), "answers", "format", "template", "doc_id", ...}`.
MMLU items also carry `continuations` (` A`…` D` are scored, not the texts) and the
subject `description` that precedes the shots; other keys of a JSONL record are kept (the synthetic
world's `split` "sft"/"heldout" and `contaminated`).

Malformed input raises `BenchmarkFormatError` naming the file and line.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Item = dict[str, Any]
LETTERS = "ABCDEFGHIJ"
_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")
_ARTICLES = {"a", "an", "the"}

QUESTION_TEMPLATE = "Question: {query}\nAnswer:"


class BenchmarkFormatError(ValueError):
    """A benchmark file that cannot be read as multiple-choice items; the message names file and line."""


def format_error(path: Path, line: int, why: str) -> BenchmarkFormatError:
    """The error for a bad line of a benchmark file, as `path:line: why`."""
    return BenchmarkFormatError(f"{path}:{line}: {why}")


def short(value: Any, limit: int = 60) -> str:
    """`repr(value)`, cut to `limit` characters, so a huge field cannot flood an error line."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def keys_of(record: dict) -> str:
    """A record's keys for an error line: sorted, each and the list cut short."""
    keys = sorted(record)
    shown = ", ".join(short(k, 40) for k in keys[:12])
    return f"[{shown}{', ...' if len(keys) > 12 else ''}]"


# a \uD800-\uDFFF escape may be a lone surrogate: text no encoder (UTF-8, the tokenizer) accepts
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def parse_json_line(line: str) -> Any:
    """One JSON Lines record; a ValueError saying why (without the place) for anything that is not one."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err.msg} at column {err.colno})") from None
    except RecursionError:
        raise ValueError("not usable JSON (nested too deeply)") from None
    except ValueError:  # an integer past Python's digit limit
        raise ValueError("not usable JSON (a number with more digits than Python reads)") from None
    if _SURROGATE_ESCAPE.search(line):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"holds a lone UTF-16 surrogate ({err.object[err.start]!r}), which is not text; "
                             "fix the escape") from None
    return value


def hellaswag_preprocess(text: str) -> str:
    """lm-eval's HellaSwag clean-up: strip, WikiHow `[title]` to a full stop, drop other `[...]`, one space."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


# keys an item may carry that later stages read, with the type they read them as (None is always allowed)
EXTRA_TYPES = {"split": str, "fact": str, "person": str, "description": str, "contaminated": bool}


def check_extras(record: dict, path: Path, line: int) -> None:
    """A record's optional keys that later stages read (`split`, `person`, ...) have the type they expect."""
    for key, kind in EXTRA_TYPES.items():
        value = record.get(key)
        if value is not None and not isinstance(value, kind):
            raise format_error(path, line, f"`{key}` must be a {kind.__name__} when given, got {short(value)}")


def _small_number(text: str) -> bool:
    """ASCII digits, short enough for an index ("²" is a digit to Python but not to int())."""
    text = text.strip()
    return text.isascii() and text.isdigit() and len(text) < 10


def _index(gold: Any, labels: list | None, n: int, key: str, path: Path, line: int) -> int:
    """An answer given as an index, a label from `labels`, or a letter, as an index into the choices."""
    if isinstance(gold, str) and labels is not None and gold in labels:
        gold = labels.index(gold)
    elif isinstance(gold, str) and _small_number(gold) and labels is None:
        gold = int(gold)
    elif isinstance(gold, str) and len(gold) == 1 and gold.upper() in LETTERS:
        gold = LETTERS.index(gold.upper())
    if isinstance(gold, bool) or not isinstance(gold, int) or not 0 <= gold < n:
        raise format_error(path, line, f"{key} must be an index into the {n} choices, got {short(gold)}")
    return gold


def _icl(record: dict, path: Path, line: int) -> Item:
    return _multiple_choice(record, "icl", record.get("query"), record.get("choices"), record.get("gold"), "gold",
                            None, ("query", "choices", "gold"), path, line)


def _question(record: dict, path: Path, line: int, fmt: str = "question") -> Item:
    """`question` and `arc` records: a question, choices as a list or `{text, label}`, an answer or answerKey."""
    question, choices, labels = record.get("question"), record.get("choices"), None
    key = "answerKey" if fmt == "arc" else "answer"
    if isinstance(question, dict):  # AI2's own ARC files: {"question": {"stem", "choices": [{text, label}]}}
        listed = question.get("choices")
        if not isinstance(listed, list) or not all(isinstance(c, dict) for c in listed):
            raise format_error(path, line, "question.choices must be a list of {text, label} objects")
        choices = {"text": [c.get("text") for c in listed], "label": [c.get("label") for c in listed]}
        question = question.get("stem")
    if isinstance(choices, dict):  # {"text": [...], "label": [...]}
        labels = choices.get("label")
        choices = choices.get("text")
        if not isinstance(labels, list):
            raise format_error(path, line, "choices.label must be a list of labels, one per choice")
    return _multiple_choice(record, fmt, question, choices, record.get(key), key, labels, ("question", "choices", key),
                            path, line)


def _hellaswag(record: dict, path: Path, line: int) -> Item:
    endings = record.get("endings")
    if isinstance(record.get("ctx_a"), str) and isinstance(record.get("ctx_b"), str):
        ctx = record["ctx_a"] + " " + record["ctx_b"].capitalize()
    elif isinstance(record.get("ctx"), str):
        ctx = record["ctx"]
    else:
        raise format_error(path, line, "a HellaSwag record needs ctx_a and ctx_b (or ctx) as strings")
    activity = record.get("activity_label")
    if not isinstance(activity, str):
        raise format_error(path, line, "a HellaSwag record needs activity_label as a string")
    choices = ([hellaswag_preprocess(e) if isinstance(e, str) else e for e in endings]
               if isinstance(endings, list) else endings)
    return _multiple_choice(record, "hellaswag", hellaswag_preprocess(activity + ": " + ctx), choices,
                            record.get("label"), "label", None, ("endings", "label"), path, line)


def _piqa(record: dict, path: Path, line: int) -> Item:
    return _multiple_choice(record, "piqa", record.get("goal"), [record.get("sol1"), record.get("sol2")],
                            record.get("label"), "label", None, ("goal", "sol1", "sol2", "label"), path, line)


def _multiple_choice(record: dict, fmt: str, query: Any, choices: Any, gold: Any, key: str, labels: list | None,
                     used: tuple[str, ...], path: Path, line: int) -> Item:
    """A multiple-choice item from its parts, each checked; the record's other keys are kept."""
    if not isinstance(query, str):
        raise format_error(path, line, f"the question text must be a string, got {type(query).__name__}")
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
        raise format_error(path, line, "choices must be a list of at least two strings")
    gold = _index(gold, labels, len(choices), key, path, line)
    extra = {k: v for k, v in record.items() if k not in used}
    check_extras(extra, path, line)
    if "continuations" in extra and not (isinstance(extra["continuations"], list) and len(extra["continuations"])
                                         == len(choices) and all(isinstance(c, str) for c in extra["continuations"])):
        raise format_error(path, line, "continuations must be a list of strings, one per choice")
    return {**extra, "query": query, "choices": list(choices), "gold": gold, "format": fmt,
            "template": FORMAT[fmt].template}


def answer_words(text: str) -> str:
    """Lower case, punctuation to spaces, articles dropped (unless nothing else is left), single spaces: how
    an open answer is compared (SQuAD's normalisation)."""
    words = _PUNCTUATION.sub(" ", text.lower()).split()
    return " ".join([w for w in words if w not in _ARTICLES] or words)


def _open(record: dict, path: Path, line: int) -> Item:
    """An open question: `question`, and `answers`, any of which counts as right in a generated reply."""
    question, answers = record.get("question"), record.get("answers")
    if not isinstance(question, str) or not question.strip():
        raise format_error(path, line, "an open question needs `question` as a non-empty string")
    if (not isinstance(answers, list) or not answers
            or not all(isinstance(a, str) and answer_words(a) for a in answers)):
        raise format_error(path, line, "`answers` must be a non-empty list of answer strings (each with a "
                                       "letter or digit)")
    check_extras(record, path, line)
    return {**record, "query": question, "format": "open", "template": FORMAT["open"].template}


def _unknown(record: dict, path: Path, line: int) -> Item:
    raise format_error(path, line, "expected keys " + ", ".join(
        f"{f.keys} ({f.name})" for f in FORMATS if f.name != "mmlu") + f"; got {keys_of(record)}")


@dataclass(frozen=True)
class Format:
    """One benchmark file format, read by every consumer: how its records are recognised (`detect`, on a
    JSONL record) and read (`normalise`), how lm-eval renders its context (`template` fills `{query}`) and
    draws its shots (`sampler`; `exclude_item_from_pool` where lm-eval draws k + 1 and drops the item), what
    is scored (`kind`: `multiple_choice` by log-likelihood, or `generated`: a reply scored against answers),
    and which item field holds the question as it could leak into web text (`leak_key`; decontamination)."""

    name: str
    keys: str
    detect: Callable[[dict], bool]
    normalise: Callable[[dict, Path, int], Item]
    template: str
    lm_eval_task: str
    kind: str = "multiple_choice"
    sampler: str = "default"
    exclude_item_from_pool: bool = False
    leak_key: str = "query"


# In detection order: the first format whose `detect` accepts a file's first record reads the file.
FORMATS: tuple[Format, ...] = (
    Format("icl", "query/choices/gold", lambda r: "query" in r, _icl, "{query}\nAnswer:",
           "none: the query as written (llm-foundry ICL)"),
    Format("hellaswag", "ctx_a/ctx_b/endings/label", lambda r: "endings" in r, _hellaswag, "{query}", "hellaswag",
           exclude_item_from_pool=True),
    Format("piqa", "goal/sol1/sol2/label", lambda r: "goal" in r and "sol1" in r, _piqa, QUESTION_TEMPLATE, "piqa",
           exclude_item_from_pool=True),
    Format("arc", "question/choices/answerKey", lambda r: "question" in r and "answerKey" in r,
           functools.partial(_question, fmt="arc"), QUESTION_TEMPLATE, "arc_easy / arc_challenge"),
    Format("question", "question/choices/answer", lambda r: "question" in r and "answer" in r, _question,
           QUESTION_TEMPLATE, "the `Question: …\\nAnswer:` form"),
    Format("open", "question/answers", lambda r: "question" in r and "answers" in r and "choices" not in r, _open,
           QUESTION_TEMPLATE, "none: a generated reply, scored by exact match and contains", kind="generated"),
    # CSV `question,A,B,C,D,answer`, no header, subject from the file name; read by `load_mmlu_csv`
    Format("mmlu", "CSV question,A,B,C,D,answer", lambda r: False, _unknown, "{query}\nAnswer:", "mmlu_<subject>",
           sampler="first_n", leak_key="question"),
)
FORMAT: dict[str, Format] = {f.name: f for f in FORMATS}
TEMPLATES: dict[str, str] = {f.name: f.template for f in FORMATS}


def detect_format(record: dict) -> str | None:
    """The format of one JSONL record by its keys (see `FORMATS`), None if none fits."""
    return next((f.name for f in FORMATS if f.detect(record)), None)


def leak_texts(item: Item) -> tuple[str, list[str]]:
    """`(question, answers)` of an item as they could appear in web text: what decontamination looks for."""
    fmt = FORMAT[item.get("format", "question")]
    return str(item[fmt.leak_key]), [str(a) for a in item.get("choices", item.get("answers", []))]


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
                                    f"{short(choice)}; an item needs distinct choices")
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


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """`(line number, object)` of each non-blank line of a UTF-8 JSONL file; a bad line names file and line."""
    # only CR/LF end a record: U+2028 or U+0085 may stand unescaped inside a JSON string
    for line_no, line in enumerate(_LINE_BREAK.split(_text(path)), start=1):
        if not line.strip():
            continue
        try:
            record = parse_json_line(line)
        except ValueError as err:
            raise format_error(path, line_no, str(err)) from None
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
        item = (FORMAT[this].normalise if this else _unknown)(record, path, line_no)
        if FORMAT[item["format"]].kind == "multiple_choice":
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


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """`(line number, fields)` of each record of a UTF-8 CSV file; a record csv cannot read names its line."""
    reader = csv.reader(io.StringIO(_text(path), newline=""))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:  # e.g. a field past csv.field_size_limit()
            raise format_error(path, reader.line_num, f"not readable CSV ({err})") from None
        yield reader.line_num, row


def load_mmlu_csv(path: str | Path) -> list[Item]:
    """Items of an MMLU CSV file: `question,A,B,C,D,answer`, no header, rendered like lm-eval's mmlu tasks."""
    path = Path(path)
    description = mmlu_description(mmlu_subject(path))
    items: list[Item] = []
    for line_no, row in _csv_rows(path):
        if not row:
            continue
        if len(row) != 6:
            raise format_error(path, line_no, f"expected 6 fields question,A,B,C,D,answer, got {len(row)}")
        answer = row[5].strip().upper()
        if answer not in tuple(LETTERS[:4]):  # a tuple: "" and "AB" are substrings of "ABCD", not letters
            raise format_error(path, line_no, f"answer must be one of A, B, C, D, got {short(row[5])}")
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
