"""One record per benchmark format, read by every consumer; open-question and cloze files work wherever
benchmark files are accepted (evaluation, decontamination of the mixture, the SFT overlap check)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from llm_assets import benchmarks
from llm_assets.curation.mixture import build_mixture, read_benchmark_items
from llm_assets.curation.pipeline import check_inputs
from llm_assets.evaluation.contamination import item_ngrams
from llm_assets.profiles import CurationConfig
from llm_assets.training.sft_data import heldout_items

OPEN_QUESTION = "In which city was the chemist Marta Oduya born before she moved to the coast to study salt"
RECORDS = {
    "icl": {"query": "2 + 2 =", "choices": ["4", "5"], "gold": 0},
    "hellaswag": {"activity_label": "Baking", "ctx_a": "She mixes flour.", "ctx_b": "then she", "endings":
                  ["bakes it.", "sings."], "label": 0},
    "piqa": {"goal": "Open a jar", "sol1": "Twist the lid.", "sol2": "Paint the lid.", "label": 0},
    "arc": {"question": "What is ice?", "choices": {"text": ["solid water", "gas"], "label": ["A", "B"]},
            "answerKey": "A"},
    "question": {"question": "Where was Lan He born?", "choices": ["Velmora", "Tarsk"], "answer": 1},
    "open": {"question": OPEN_QUESTION, "answers": ["Velmora"]},
}


def _file(tmp_path: Path, name: str, records: list[dict]) -> Path:
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_every_format_is_a_record_that_detects_and_reads_its_files(tmp_path):
    assert {f.name for f in benchmarks.FORMATS} == set(RECORDS) | {"mmlu"}
    for name, record in RECORDS.items():
        assert benchmarks.detect_format(record) == name
        items = benchmarks.load_items(_file(tmp_path, name, [record, record]))
        fmt = benchmarks.FORMAT[name]
        assert [i["format"] for i in items] == [name, name] and items[0]["template"] == fmt.template
        question, answers = benchmarks.leak_texts(items[0])
        assert question and answers, name
    # the module's format table names every format, so the documentation cannot fall behind the registry
    assert all(f"| `{f.name}`" in benchmarks.__doc__ for f in benchmarks.FORMATS)


def test_an_open_question_file_decontaminates_the_mixture(tmp_path):
    """LLM_ASSETS_BENCHMARKS may hold open-question files: curate reads them first, and a page that leaks
    an open question is removed from the mixture as contaminated."""
    bench = _file(tmp_path, "open", [RECORDS["open"]])
    assert check_inputs([bench], CurationConfig())["benchmark_items"] == 1
    assert read_benchmark_items([bench]) == [{"query": OPEN_QUESTION, "choices": ["Velmora"]}]
    leak = "Forum: " + " ".join(OPEN_QUESTION.split()[3:17]) + " ... anyone?"
    docs = pl.DataFrame({"warc_record_id": ["a", "b"], "url": ["https://h/a", "https://h/b"],
                         "host": ["h", "h"], "text": [leak, "A clean page about the weather in the valley."]})
    kept, removed = build_mixture(docs, CurationConfig(validation_fraction=0.0), [bench])
    assert removed.filter(pl.col("reason") == "contaminated")["warc_record_id"].to_list() == ["a"]
    assert kept["warc_record_id"].to_list() == ["b"]
    assert item_ngrams(benchmarks.load_items(bench)[0])  # the evaluation's contamination report reads it too


def test_open_and_cloze_files_feed_the_sft_overlap_check(tmp_path):
    cloze = dict(RECORDS["question"], question="Lan He was born in", form="cloze")
    for name, record in (("open", RECORDS["open"]), ("cloze", cloze)):
        items = heldout_items(_file(tmp_path, name, [record]))
        assert len(items) == 1 and items[0]["query"] == record["question"]
