"""Property-based fuzzing of the readers of untrusted benchmark and SFT files (Hypothesis, bounded budget).

Inputs are valid rows of every format, then mutated: keys dropped, values swapped for other JSON values
(huge numbers, NaN, nested lists, long strings, lone surrogate escapes), lines cut short, bytes that are not
UTF-8, deep nesting, raw bytes. Every input must end in a parsed result that the next stage can use, or in
one ValueError line that names the file (and the line, for a bad record); no other exception type escapes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sample_data import sample_texts  # noqa: E402

from llm_assets.benchmarks import load_items  # noqa: E402
from llm_assets.evaluation import generative  # noqa: E402
from llm_assets.evaluation.multiple_choice import (  # noqa: E402
    PromptFormat,
    continuations,
    item_rows,
    render_contexts,
)
from llm_assets.tokens.tokenizer import train_tokenizer  # noqa: E402
from llm_assets.training.sft_data import load_conversations, render_examples  # noqa: E402

# a fixed budget: the same examples on every run, no deadline (the CI machine may be slow)
BUDGET = settings(derandomize=True, max_examples=100, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                         HealthCheck.function_scoped_fixture])

BENCHMARK_ROWS = [
    {"query": "Where is Varenholm?", "choices": ["north", "south"], "gold": 1, "split": "heldout"},
    {"question": "Pick one", "choices": ["a", "b", "c"], "answer": "B"},
    {"question": "Pick", "choices": {"text": ["x", "y"], "label": ["A", "B"]}, "answerKey": "A"},
    {"question": {"stem": "Pick", "choices": [{"text": "x", "label": "1"}, {"text": "y", "label": "2"}]},
     "answerKey": "2"},
    {"activity_label": "Cooking", "ctx_a": "He cuts", "ctx_b": "the bread", "endings": ["a [title] b", "c"],
     "label": "0"},
    {"goal": "Open a jar", "sol1": "twist", "sol2": "push", "label": 0},
]
OPEN_ROWS = [{"question": "Where was Lan He born?", "answers": ["Lima"], "split": "sft", "fact": "born"}]
SFT_ROWS = [
    {"instruction": "Where was Lan He born?", "response": "In Lima.", "person": "Lan He", "answer": "Lima"},
    {"instruction": "Translate", "input": "Good morning", "output": "Bonjour"},
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                  {"role": "assistant", "content": "Hello <|end|>"}]},
]
MMLU_ROW = ["What is 2+2?", "3", "4", "5", "6", "B"]

strings = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "A", "B", "2", "²", "<|end|>", "\u2028", "\x85", "\ud800", "9" * 30]),
    st.builds(lambda n: "x" * n, st.integers(0, 300_000)),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.integers(), st.floats(), strings),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(strings, inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def mutated(draw, rows: list) -> dict | list:
    """A valid row of `rows`, then a few of its keys dropped, replaced or added (nested ones too)."""
    row = json.loads(json.dumps(draw(st.sampled_from(rows))))
    for _ in range(draw(st.integers(0, 3))):
        target = row
        while isinstance(target, dict) and target and draw(st.booleans()):
            inner = target[draw(st.sampled_from(sorted(target)))]
            if not isinstance(inner, dict | list) or not inner:
                break
            target = inner if isinstance(inner, dict) else inner[0]
        if not isinstance(target, dict):
            continue
        action = draw(st.sampled_from(["drop", "replace", "add"]))
        key = draw(st.sampled_from(sorted(target))) if target and action != "add" else draw(strings)
        if action == "drop":
            target.pop(key, None)
        else:
            target[key] = draw(json_values)
    return row


def encode_line(row, draw) -> bytes:
    """A row as one JSONL line: escaped or raw Unicode, sometimes cut short or with a non-UTF-8 byte."""
    text = json.dumps(row, ensure_ascii=draw(st.booleans()), allow_nan=True)
    data = text.encode("utf-8", errors="surrogatepass")
    damage = draw(st.sampled_from(["none"] * 6 + ["cut", "byte", "deep", "bigint"]))
    if damage == "cut":
        data = data[:draw(st.integers(0, len(data)))]
    elif damage == "byte":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80"])) + data[at:]
    elif damage == "deep":
        data = b"[" * draw(st.integers(1, 50_000)) + data
    elif damage == "bigint":
        data = data.replace(b"1", b"1" + b"0" * 5000, 1)
    return data


@st.composite
def jsonl_files(draw, rows: list) -> bytes:
    lines = [encode_line(draw(mutated(rows)), draw) for _ in range(draw(st.integers(1, 4)))]
    if draw(st.integers(0, 9)) == 0:
        lines.append(draw(st.binary(max_size=64)))
    return draw(st.sampled_from([b"\n", b"\r\n"])).join(lines) + b"\n"


@st.composite
def csv_files(draw) -> bytes:
    rows = []
    for _ in range(draw(st.integers(1, 4))):
        row = [draw(strings) if draw(st.integers(0, 3)) == 0 else field for field in MMLU_ROW]
        row = row[:draw(st.integers(0, 7))] if draw(st.integers(0, 4)) == 0 else row
        rows.append(",".join('"' + f.replace('"', '""') + '"' for f in row))
    data = "\r\n".join(rows).encode("utf-8", errors="surrogatepass")
    if draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\xff", b'"', b"\x00", b"\n"])) + data[at:]
    return data


def outcome(read, path: Path):
    """What `read(path)` gives, or None after checking its error is one line that names the file."""
    try:
        result = read(path)
    except ValueError as err:  # BenchmarkFormatError is one
        message = str(err)
        assert re.match(re.escape(str(path)) + r"(:\d+)?: \S", message), message[:300]
        assert "\n" not in message and len(message) < 1000, message[:300]
        return None
    json.dumps(result, ensure_ascii=False).encode("utf-8")  # every string in it is real text
    return result


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# inputs that once escaped as another exception type, or as an unbounded or wrong result (kept as examples)
FOUND_JSONL = [
    b"[" * 100_000 + b"\n",  # RecursionError from json
    b'{"query": "q", "choices": ["a", "b"], "gold": ' + b"9" * 5000 + b"}\n",  # int digit limit, no place named
    b'{"query": "q", "choices": ["a", "b"], "gold": 0, "split": "a\\ud800"}\n',  # a lone surrogate "parsed"
    b'{"' + b"k" * 100_000 + b'": 1}\n',  # a 100 KB error line
]
FOUND_BENCHMARK = [
    '{"query": "a\u2028b", "choices": ["a", "b"], "gold": 0}\n'.encode(),  # valid JSONL refused (splitlines)
    '{"question": "q", "choices": ["a", "b"], "answer": "\u00b2"}\n'.encode(),  # int("²")
    b'{"question": "q", "choices": {"text": ["a", "b"], "label": 5}, "answerKey": "A"}\n',  # TypeError
    b'{"question": {"stem": "q", "choices": [1, 2]}, "answerKey": "A"}\n',  # AttributeError
    b'{"query": "q", "choices": ["a", "b"], "gold": 0, "contaminated": "no"}\n',  # fails later, in polars
    b'{"query": "q", "choices": ["a", "b"], "gold": 0, "continuations": "ab"}\n',  # scored as 2 letters
]


def with_examples(*found: list[bytes]):
    def decorate(test):
        for data in (data for group in found for data in group):
            test = example(data=data)(test)
        return test
    return decorate


@BUDGET
@given(data=jsonl_files(BENCHMARK_ROWS))
@with_examples(FOUND_JSONL, FOUND_BENCHMARK)
def test_benchmark_jsonl_reader(tmp_path, data):
    items = outcome(load_items, write(tmp_path, "bench.jsonl", data))
    if items is not None:  # what evaluation does next with them
        fmt = PromptFormat()
        contexts = render_contexts(items, fmt)
        for item, context in zip(items, contexts, strict=True):
            assert isinstance(context, str) and len(continuations(item)) == len(item["choices"])
            assert all(isinstance(fmt.target_delimiter + c, str) for c in continuations(item))
        rows = item_rows("bench", items, [[0.0] * len(item["choices"]) for item in items], contexts)
        # the table evaluate_multiple_choice writes, with its column types
        pl.DataFrame(rows, schema_overrides={"loglikelihoods": pl.List(pl.Float64), "split": pl.Utf8,
                                             "contaminated": pl.Boolean, "context": pl.Utf8, "fact": pl.Utf8})


@BUDGET
@given(data=csv_files())
@example(data=b'"' + b"x" * 200_000 + b'",a,b,c,d,A\r\n')  # csv.Error: field larger than field limit
@example(data=b"q,a,b,c,d,\r\nq,a,b,c,d,AB\r\n")  # "" and "AB" were read as answer A
def test_mmlu_csv_reader(tmp_path, data):
    items = outcome(load_items, write(tmp_path, "mmlu_astronomy_test.csv", data))
    if items is not None:
        assert all(item["gold"] in range(4) and item["choices"][item["gold"]] is not None for item in items)


@BUDGET
@given(data=jsonl_files(OPEN_ROWS))
@with_examples(FOUND_JSONL)
def test_open_question_reader(tmp_path, data):
    path = write(tmp_path, "open.jsonl", data)
    generative.is_open_question_file(path)  # a bool whatever the first line holds
    items = outcome(generative.load_open_questions, path)
    for item in items or []:
        assert isinstance(generative.prompt(item["question"], chat=True), str)


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz_tok") / "tokenizer.json"
    train_tokenizer(sample_texts(20), 300, path)
    return path


@BUDGET
@given(data=jsonl_files(SFT_ROWS))
@with_examples(FOUND_JSONL)
@example(data=b'{"messages": [{"role": [], "content": "x"}]}\n')  # TypeError: unhashable role
@example(data=b'{"instruction": "q", "response": "a", "person": []}\n')  # fails later, in polars
def test_sft_reader_and_rendering(tmp_path, tokenizer_path, data):
    conversations = outcome(lambda p: load_conversations([p]), write(tmp_path, "sft.jsonl", data))
    if conversations:  # the next stage renders them without surprises
        stats = render_examples(conversations, tokenizer_path, 64, tmp_path / "ex.parquet", plain=True)
        assert stats["conversations"] == len(conversations)


def test_the_fuzzers_reach_both_outcomes(tmp_path):
    """The strategies are not all-valid or all-broken: a derandomized draw gives parsed files and errors."""
    outcomes = {"parsed": 0, "error": 0}

    @settings(BUDGET, max_examples=60)
    @given(data=jsonl_files(BENCHMARK_ROWS))
    def count(data):
        result = outcome(load_items, write(tmp_path, "bench.jsonl", data))
        outcomes["parsed" if result is not None else "error"] += 1

    count()
    assert outcomes["parsed"] >= 5 and outcomes["error"] >= 5, outcomes
