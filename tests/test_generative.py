"""Open questions answered greedily (exact match / contains) and the cloze form of the synthetic facts."""

from __future__ import annotations

import json

import polars as pl
import pytest
import tokenizers
import torch
from tiny_model import write_tiny_hf_checkpoint

from llm_assets import benchmarks
from llm_assets.benchmarks import answer_words
from llm_assets.evaluation import adapter, card, cli, generative, tasks
from llm_assets.evaluation.cloze import cloze_pairs, question_vs_cloze
from llm_assets.evaluation.multiple_choice import evaluate_multiple_choice
from llm_assets.modeling.generate import generate_ids
from llm_assets.tokens.special import render_chat
from llm_assets.tokens.tokenizer import encode_text

QUESTIONS = ["Where was Lan He born?", "Which company does Mei Chen work for?", "What did Bruno Silva study?",
             "In what year was Ada Okafor born?", "Where is the harbor museum?"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A tiny native checkpoint and its Hugging Face export (same weights)."""
    from llm_assets.modeling.checkpoint import save_checkpoint_folder
    from llm_assets.modeling.export import export_hf
    from llm_assets.modeling.model import DecoderLM, ModelConfig

    root = tmp_path_factory.mktemp("gen")
    hf = write_tiny_hf_checkpoint(root / "hf", QUESTIONS * 5 + ["Lima Oslo Paris 1985 chemistry"], vocab_size=300,
                                  d_model=32, n_layer=2, n_head=4, context=96)
    tokenizer_json = hf / "tokenizer.json"
    torch.manual_seed(1)
    config = ModelConfig(vocab_size=tokenizers.Tokenizer.from_file(str(tokenizer_json)).get_vocab_size(), n_layer=2,
                         n_head=4, n_kv_head=2, d_model=32, d_ff=64, context=96, init_std=0.2)
    native = save_checkpoint_folder(DecoderLM(config), config, tokenizer_json, root / "native")
    return native, export_hf(native, root / "exported")


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_normalized_exact_match_and_contains():
    assert generative.exact_match(" The Lima.\nQuestion: next", ["lima"])
    assert not generative.exact_match("born in Lima", ["Lima"])
    assert generative.contains_answer("Lan He was born in Lima.", ["lima"])
    assert not generative.contains_answer("Lan He was born in Limassol.", ["Lima"])  # whole words only
    assert generative.contains_answer("in 1985, in spring", ["1985"]) and not generative.exact_match("1985!", ["1986"])


def test_open_question_files_are_recognised_and_bad_records_name_their_line(tmp_path):
    good = write_jsonl(tmp_path / "open.jsonl", [{"question": "q?", "answers": ["a"], "split": "sft"},
                                                  {"question": "r?", "answers": ["b", "c"], "split": "heldout"}])
    assert generative.is_open_question_file(good)
    choice = write_jsonl(tmp_path / "mc.jsonl", [{"question": "q?", "choices": ["a", "b"], "answer": 0}])
    assert not generative.is_open_question_file(choice)
    suite = generative.load_open_suite([good])
    assert sorted(suite) == ["open", "open_heldout", "open_sft"] and suite["open"][1]["doc_id"] == 1
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"question": "q?", "answers": ["a"]}, {"question": "r?", "answers": []}])
    with pytest.raises(benchmarks.BenchmarkFormatError, match=r"bad.jsonl:2: `answers` must be a non-empty list"):
        generative.load_open_questions(bad)


def test_batched_greedy_equals_one_prompt_kv_cache_generation_and_the_hf_export(folders):
    from llm_assets.modeling.checkpoint import load_checkpoint

    native, exported = folders
    ours = adapter.load_scoring_model(native)
    prompts = [generative.prompt(q, chat=chat) for q in QUESTIONS for chat in (False, True)]
    replies = generative.greedy_replies(ours, prompts, max_new_tokens=12, batch_size=3)
    model, tokenizer = load_checkpoint(native)
    stops = generative.stop_ids(ours)
    for text, reply in zip(prompts, replies, strict=True):
        ids = list(generate_ids(model, encode_text(tokenizer, text), 12, stop_ids=stops))
        assert reply == tokenizer.decode(ids, skip_special_tokens=False)
    assert generative.greedy_replies(adapter.load_scoring_model(exported), prompts, max_new_tokens=12) == replies


def test_open_question_scores_follow_the_replies(folders):
    ours = adapter.load_scoring_model(folders[0])
    assert generative.prompt("Q?", chat=True) == render_chat([{"role": "user", "content": "Q?"}],
                                                              add_generation_prompt=True)
    assert generative.prompt("Q?", chat=False) == "Question: Q?\nAnswer:"
    replies = generative.greedy_replies(ours, [generative.prompt(q, chat=False) for q in QUESTIONS], 8)
    firsts = [r.strip().split("\n")[0] for r in replies]
    said = [i for i, first in enumerate(firsts) if answer_words(first)][:2]
    assert len(said) == 2, f"the random model should say something: {replies}"
    # two questions' answers are what the model says, the others' something it does not say
    items = [{"question": q, "answers": [firsts[i] if i in said else "zebra quartz"], "doc_id": i}
             for i, q in enumerate(QUESTIONS)]
    result = generative.evaluate_open_questions(ours, {"t": items}, max_new_tokens=8)
    assert result.scores["t"] == {"exact_match": 0.4, "contains": 0.4, "n": 5}
    assert result.items["reply"].to_list() == replies


def test_cli_scores_choice_and_open_files_together(tmp_path, folders, capsys):
    mc = write_jsonl(tmp_path / "mc.jsonl", [{"query": q, "choices": ["Lima", "Oslo"], "gold": 0} for q in QUESTIONS])
    open_file = write_jsonl(tmp_path / "open.jsonl", [{"question": q, "answers": ["Lima"]} for q in QUESTIONS])
    log = tmp_path / "samples.jsonl"
    scores = cli.evaluate(folders[0], [mc, open_file], output=tmp_path / "s.json", log_samples=log, chat=True,
                          max_new_tokens=6)
    assert set(scores["mc"]) == {"acc", "acc_norm", "n"} and set(scores["open"]) == {"exact_match", "contains", "n"}
    assert json.loads((tmp_path / "s.json").read_text()) == scores
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["task"] for line in lines] == ["mc"] * 5 + ["open"] * 5
    assert lines[5]["context"].startswith("<|user|>\n") and "reply" in lines[5]
    assert "exact_match" in capsys.readouterr().out


def test_synthetic_crawl_writes_cloze_and_open_forms_of_every_question(smoke_crawl):
    read = lambda name: [json.loads(line) for line in (smoke_crawl / name).read_text().splitlines()]  # noqa: E731
    questions, cloze, opened = read("benchmark.jsonl"), read("cloze.jsonl"), read("open_questions.jsonl")
    assert len(questions) == len(cloze) == len(opened)
    for q, c, o in zip(questions, cloze, opened, strict=True):
        assert (c["choices"], c["gold"], c["person"], c["fact"], c["form"]) == (
            q["choices"], q["gold"], q["person"], q["fact"], "cloze")
        assert c["query"].startswith(q["person"] + " ") and q["choices"][q["gold"]] not in c["query"]
        assert o == {"question": q["query"], "answers": [q["choices"][q["gold"]]], "split": q["split"],
                     "person": q["person"], "fact": q["fact"]}
    assert {c["query"].removeprefix(c["person"]) for c in cloze if c["fact"] == "birth_city"} == {" was born in"}


def test_question_vs_cloze_pairs_the_synthetic_tasks_per_fact(smoke_crawl, folders):
    suite = tasks.load_suite([smoke_crawl / "benchmark.jsonl", smoke_crawl / "cloze.jsonl"],
                             templates={str(smoke_crawl / "cloze.jsonl"): "{query}"})
    pairs = cloze_pairs(suite)
    assert pairs == {"benchmark": "cloze", "benchmark_sft": "cloze_sft", "benchmark_heldout": "cloze_heldout"}
    result = evaluate_multiple_choice(adapter.load_scoring_model(folders[0]), suite, max_items=18)
    assert result.items.filter(pl.col("task") == "cloze")["context"][0] == suite["cloze"][0]["query"]
    table = question_vs_cloze(result.items, pairs)
    whole = table.filter((pl.col("task") == "benchmark") & (pl.col("fact") == "all")).row(0, named=True)
    assert whole["question_acc"] == result.scores["benchmark"]["acc"]
    assert whole["cloze_acc"] == result.scores["cloze"]["acc"] and whole["n"] == 18
    assert whole["gap"] == pytest.approx(whole["cloze_acc"] - whole["question_acc"])
    per_fact = table.filter((pl.col("task") == "benchmark") & (pl.col("fact") != "all"))
    assert per_fact["n"].sum() == 18 and set(per_fact["fact"]) <= {i["fact"] for i in suite["benchmark"]}
    text = card.render_model_card({"question_vs_cloze": table.to_dicts(),
                                   "generative": {"base/open": {"exact_match": 0.25, "contains": 0.5, "n": 4}}})
    assert "| base/open | 0.2500 | 0.5000 | 4 |" in text and "cloze acc" in text
    shown = [line for line in text.splitlines() if line.startswith("| – | benchmark")]
    assert len(shown) == per_fact.height + 3  # per fact for the whole task, over all facts for each task


def test_scoreboard_puts_cloze_and_open_answers_beside_the_questions(tmp_path, smoke_crawl, folders):
    from llm_assets.evaluation.scoreboard import score_models

    files = [smoke_crawl / "benchmark.jsonl", smoke_crawl / "cloze.jsonl"]
    suite = tasks.load_suite(files, templates={str(files[1]): "{query}"})
    open_tasks = generative.load_open_suite([smoke_crawl / "open_questions.jsonl"])
    results = score_models({"base": folders[0], "assistant": folders[1]}, suite, None, [], tmp_path / "out",
                           max_items=6, open_tasks=open_tasks, max_new_tokens=4)
    base = results["models"]["base"]
    assert "cloze" not in base["sensitivity"]  # a cloze keeps its own template
    assert base["sensitivity"]["benchmark"]["cloze_acc"] == base["scores"]["cloze"]["acc"]
    assert set(base["generative"]) == {"open_questions", "open_questions_sft", "open_questions_heldout"}
    generations = pl.read_parquet(tmp_path / "out" / "generations.parquet")
    assert generations.filter(pl.col("model") == "assistant")["context"][0].startswith("<|user|>")
    assert generations.filter(pl.col("model") == "base")["context"][0].startswith("Question: ")
    assert {"exact_match", "contains"} <= set(results["table"]["metric"])
    assert {r["model"] for r in results["question_vs_cloze"]} == {"base", "assistant"}
    assert (tmp_path / "out" / "question_vs_cloze.md").exists()
