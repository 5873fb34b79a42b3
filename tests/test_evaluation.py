"""Evaluation library: benchmark loading, lm-eval-style scoring, perplexity, sensitivity, contamination, card."""

from __future__ import annotations

import dataclasses
import json
import math
import random

import numpy as np
import polars as pl
import pytest
import tokenizers
import torch
import torch.nn.functional as F
from tiny_model import write_tiny_hf_checkpoint

from llm_assets import benchmarks
from llm_assets.evaluation import (
    adapter,
    card,
    cli,
    contamination,
    multiple_choice,
    perplexity,
    sensitivity,
    tasks,
)
from llm_assets.evaluation.multiple_choice import PromptFormat

WORDS = ["river", "stone", "capital", "city", "founded", "museum", "bridge", "tower", "harbor", "island", "mountain", "valley", "forest", "painter", "poet", "engineer", "chemist", "novel", "symphony", "treaty", "empire", "railway", "library", "market", "festival", "winter"]


def make_items(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    items = []
    for _ in range(n):
        query = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10))) + "?"
        choices = list(dict.fromkeys(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
                                     for _ in range(4)))
        while len(choices) < 2:
            choices.append(f"none {len(choices)}")
        items.append({"query": query, "choices": choices, "gold": rng.randrange(len(choices))})
    return items


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    texts = [item["query"] + " " + " ".join(item["choices"]) for item in make_items(60, seed=1)]
    return write_tiny_hf_checkpoint(tmp_path_factory.mktemp("tiny") / "hf", texts, vocab_size=400, d_model=32,
                                    n_layer=2, n_head=4, context=64)


@pytest.fixture(scope="module")
def model(hf_folder):
    return adapter.load_scoring_model(hf_folder)


def reference_loglikelihood(model: adapter.ScoringModel, context: str, continuation: str) -> float:
    """One unbatched full forward per request, no shared inputs: the slow obvious computation."""
    ctx, cont = multiple_choice.encode_pair(model, context, continuation)
    whole = (ctx + cont)[-(model.max_length + 1):]
    with torch.no_grad():
        logits = model.logits_fn(torch.tensor([whole[:-1]]))[0]
    logprobs = F.log_softmax(logits.float(), dim=-1)
    return sum(float(logprobs[len(whole) - 1 - len(cont) + i, tok]) for i, tok in enumerate(cont))


# --- tasks ---------------------------------------------------------------------------------------

def test_load_suite_reads_three_formats_and_splits_synthetic(tmp_path):
    icl = tmp_path / "bench.jsonl"
    icl.write_text(json.dumps({"query": "q1", "choices": ["a", "b"], "gold": 1, "split": "sft",
                               "contaminated": True}) + "\n\n"
                   + json.dumps({"query": "q2", "choices": ["a", "b", "c"], "gold": 0, "split": "heldout"}) + "\n")
    harness = tmp_path / "arc.jsonl"
    harness.write_text(json.dumps({"question": "q", "choices": {"text": ["x", "y"], "label": ["A", "B"]},
                                   "answer": "B"}) + "\n"
                       + json.dumps({"question": "r", "choices": ["x", "y", "z"], "answer": 2}) + "\n")
    mmlu = tmp_path / "mmlu_astronomy.csv"
    mmlu.write_text('"What, exactly, is a star?",gas,rock,ice,dust,A\n')
    suite = tasks.load_suite([icl, harness, mmlu])
    assert set(suite) == {"bench", "bench_sft", "bench_heldout", "arc", "mmlu_astronomy"}
    assert [i["gold"] for i in suite["arc"]] == [1, 2]
    star = suite["mmlu_astronomy"][0]
    assert star["query"] == "What, exactly, is a star?\nA. gas\nB. rock\nC. ice\nD. dust"
    assert (star["choices"], star["gold"], star["continuations"]) == (["gas", "rock", "ice", "dust"], 0, list("ABCD"))
    assert star["description"] == "The following are multiple choice questions (with answers) about astronomy.\n\n"
    assert suite["bench_sft"][0]["contaminated"] is True and len(suite["bench_heldout"]) == 1


@pytest.mark.parametrize("content, message", [
    ('{"query": "q", "choices": ["a", "b"], "gold": 1}\n{"query": "q", "choices": ["a"], "gold": 0}\n',
     "bad.jsonl:2: choices"),
    ('{"query": "q", "choices": ["a", "b"], "gold": 5}\n', "bad.jsonl:1: gold must be an index"),
    ('{"query": "q",\n', "bad.jsonl:1: not valid JSON"),
    ('{"prompt": "q"}\n', "bad.jsonl:1: expected keys"),
])
def test_malformed_jsonl_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(benchmarks.BenchmarkFormatError, match=message.replace(".", r"\.")):
        benchmarks.load_items(path)


def test_malformed_mmlu_csv_names_line(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("q,a,b,c,d,A\nq,a,b,c,d,E\n")
    with pytest.raises(benchmarks.BenchmarkFormatError, match=r"m\.csv:2: answer"):
        benchmarks.load_items(path)


# --- adapter -------------------------------------------------------------------------------------

def test_checkpoint_kind_detection(tmp_path, hf_folder):
    assert adapter.checkpoint_kind(hf_folder) == "hf"
    (tmp_path / "config.json").write_text(json.dumps({"format": "ours"}))
    with pytest.raises(ValueError, match="no model.safetensors"):
        adapter.checkpoint_kind(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert adapter.checkpoint_kind(tmp_path) == "native"
    with pytest.raises(FileNotFoundError, match="no config.json"):
        adapter.checkpoint_kind(tmp_path / "missing")


def test_native_checkpoint_scores_like_its_hf_export(tmp_path, hf_folder):
    from llm_assets.modeling.checkpoint import save_checkpoint_folder
    from llm_assets.modeling.export import export_hf
    from llm_assets.modeling.model import DecoderLM, ModelConfig

    torch.manual_seed(0)
    tokenizer_json = hf_folder / "tokenizer.json"
    config = ModelConfig(vocab_size=tokenizers.Tokenizer.from_file(str(tokenizer_json)).get_vocab_size(), n_layer=2, n_head=4, n_kv_head=2, d_model=32, d_ff=64,
                         context=64, init_std=0.2)
    native = save_checkpoint_folder(DecoderLM(config), config, tokenizer_json, tmp_path / "native")
    exported = export_hf(native, tmp_path / "exported")
    assert adapter.checkpoint_kind(native) == "native"
    native_model = adapter.load_scoring_model(native)
    assert native_model.shared_context_fn is not None
    plain = dataclasses.replace(native_model, shared_context_fn=None)
    contexts = multiple_choice.render_contexts(make_items(4, seed=6), PromptFormat(shots=1))
    pairs = [(contexts[i], " " + c) for i, item in enumerate(make_items(4, seed=6)) for c in item["choices"]]
    np.testing.assert_allclose([x[0] for x in multiple_choice.loglikelihoods(native_model, pairs)],
                               [x[0] for x in multiple_choice.loglikelihoods(plain, pairs)], rtol=1e-5, atol=1e-5)
    assert adapter.checkpoint_kind(exported) == "hf"
    suite = {"t": make_items(12, seed=5)}
    ours = multiple_choice.evaluate_multiple_choice(adapter.load_scoring_model(native), suite)
    theirs = multiple_choice.evaluate_multiple_choice(adapter.load_scoring_model(exported), suite)
    np.testing.assert_allclose(ours.items["loglikelihoods"].explode().to_numpy(),
                               theirs.items["loglikelihoods"].explode().to_numpy(), atol=1e-3)


# --- multiple choice -----------------------------------------------------------------------------

def test_encode_pair_moves_trailing_space_and_splits_whole_encoding(model):
    ctx, cont = multiple_choice.encode_pair(model, "Question: river city?\nAnswer: ", "stone")
    assert model.decode(cont) == " stone"
    assert ctx + cont == model.encode("Question: river city?\nAnswer: stone")
    empty_ctx, cont = multiple_choice.encode_pair(model, "", " stone")
    assert empty_ctx == [model.eot_token_id] and model.decode(cont) == " stone"


def test_batched_loglikelihoods_equal_unbatched_reference(model):
    items = make_items(8, seed=3)
    fmt = PromptFormat(shots=2)
    contexts = multiple_choice.render_contexts(items, fmt)
    pairs = [(contexts[i], " " + c) for i, item in enumerate(items) for c in item["choices"]]
    pairs.append(("river " * 80, " stone"))  # longer than the window: left-truncated like lm-eval
    got = multiple_choice.loglikelihoods(model, pairs, batch_size=5)
    expected = [reference_loglikelihood(model, c, x) for c, x in pairs]
    np.testing.assert_allclose([g[0] for g in got], expected, rtol=1e-4, atol=1e-4)


def test_shared_context_path_equals_plain_path(model):
    assert model.shared_context_fn is not None  # a Llama export takes the shared-context path
    plain = dataclasses.replace(model, shared_context_fn=None, hidden_fn=None, head_fn=None)
    items = make_items(6, seed=4)
    contexts = multiple_choice.render_contexts(items, PromptFormat(shots=1))
    pairs = [(contexts[i], " " + c) for i, item in enumerate(items) for c in item["choices"]]
    shared = multiple_choice.loglikelihoods(model, pairs, batch_size=4)
    unshared = multiple_choice.loglikelihoods(plain, pairs, batch_size=3)
    np.testing.assert_allclose([s[0] for s in shared], [u[0] for u in unshared], rtol=1e-5, atol=1e-5)
    assert [s[1] for s in shared] == [u[1] for u in unshared]


def test_choices_that_are_token_prefixes_share_one_forward(model):
    ctx = "Question: which?\nAnswer:"
    pairs = [(ctx, " river stone"), (ctx, " river"), (ctx, " forest")]
    encoded = [multiple_choice.encode_pair(model, c, x) for c, x in pairs]
    plan = multiple_choice._plan_sequences(encoded, model.max_length)
    assert encoded[1][1] == encoded[0][1][:len(encoded[1][1])]  # " river" is a token prefix of " river stone"
    assert len(plan) == 2
    got = multiple_choice.loglikelihoods(model, pairs)
    np.testing.assert_allclose([g[0] for g in got], [reference_loglikelihood(model, c, x) for c, x in pairs],
                               rtol=1e-4, atol=1e-4)


def test_acc_and_acc_norm_follow_lm_eval_rules():
    items = [{"query": "q", "choices": ["a", "bbb"], "gold": 1}, {"query": "q", "choices": ["aa", "b"], "gold": 0}]
    rows = multiple_choice.item_rows("t", items, [[-1.0, -2.5], [-2.0, -1.5]])
    # item 0: acc picks "a" (-1 > -2.5); per character of the choice without the delimiter -1/1 < -2.5/3,
    # so acc_norm picks "bbb" (counting the delimiter, -1/2 > -2.5/4, would pick "a")
    assert [r["pred"] for r in rows] == [0, 1] and [r["pred_norm"] for r in rows] == [1, 0]
    scores = multiple_choice.summarise(pl.DataFrame(rows))
    assert scores == {"t": {"acc": 0.0, "acc_norm": 1.0, "n": 2}}


def test_shots_are_deterministic_and_exclude_the_item():
    items = make_items(10)
    drawn = multiple_choice.draw_shots(items, 3, seed=7)
    assert drawn == multiple_choice.draw_shots(items, 3, seed=7)
    assert drawn != multiple_choice.draw_shots(items, 3, seed=8)
    for index, shots in enumerate(drawn):
        assert items[index] not in shots and len(shots) == 3
    # the draws are sequential: the first items' shots do not depend on how many items are scored
    assert multiple_choice.draw_shots(items, 3, seed=7, limit=4) == drawn[:4]
    context = multiple_choice.render_contexts(items, PromptFormat(shots=2, template="Question: {query}\nAnswer:"))[0]
    assert context.count("Question: ") == 3 and context.endswith("Answer:")
    with pytest.raises(ValueError, match="need at least 4 items"):
        multiple_choice.draw_shots(items[:3], 3, seed=0)


def test_evaluate_multiple_choice_scores_and_item_rows(model):
    suite = {"a": make_items(9, seed=11), "b": make_items(5, seed=12)}
    result = multiple_choice.evaluate_multiple_choice(model, suite, batch_size=4, max_items=6)
    assert {t: s["n"] for t, s in result.scores.items()} == {"a": 6, "b": 5}
    for task, score in result.scores.items():
        rows = result.items.filter(pl.col("task") == task)
        assert score["acc"] == pytest.approx((rows["pred"] == rows["gold"]).mean())
        best = [int(np.argmax(lls)) for lls in rows["loglikelihoods"].to_list()]
        assert best == rows["pred"].to_list()


# --- perplexity ----------------------------------------------------------------------------------

def test_perplexity_from_texts_matches_direct_computation(model):
    texts = ["river stone capital city", "", "museum bridge tower harbor island mountain " * 20]
    result = perplexity.perplexity_from_texts(model, texts, window=32, batch_size=3)
    stream = []
    for text in texts[::2]:
        stream += [model.eot_token_id] + model.encode(text, add_special_tokens=False)
    nll, count = 0.0, 0
    for start in range(0, len(stream) - 1, 32):
        window = stream[start:start + 33]
        with torch.no_grad():
            logprobs = F.log_softmax(model.logits_fn(torch.tensor([window[:-1]]))[0].float(), -1)
        for pos, target in enumerate(window[1:]):
            if target != model.eot_token_id:
                nll -= float(logprobs[pos, target])
                count += 1
    assert result.tokens == count and result.documents == 2
    assert result.nll_nats == pytest.approx(nll, rel=1e-4)
    n_bytes = len(texts[0].encode()) + len(texts[2].encode())
    assert result.bits_per_byte == pytest.approx(nll / (math.log(2) * n_bytes), rel=1e-4)
    assert result.perplexity == pytest.approx(math.exp(nll / count), rel=1e-4)


def test_perplexity_from_shards_equals_texts(tmp_path, model, hf_folder):
    from llm_assets.tokens.shards import SplitWriter, encode_documents

    texts = ["river stone capital city founded", "poet engineer chemist novel " * 10, "winter market"]
    tok = tokenizers.Tokenizer.from_file(str(hf_folder / "tokenizer.json"))
    tokens, lengths = encode_documents(tok, texts, model.eot_token_id, np.dtype("<u2"))
    writer = SplitWriter(tmp_path, "validation", shard_tokens=20, dtype=np.dtype("<u2"))
    writer.append(tokens, lengths)
    manifest = {"format": "llmatok", "version": 1, "vocab_size": 400, "dtype": "uint16",
                "eot_id": model.eot_token_id, "tokenizer_sha256": "x", "splits": {"validation": writer.close()}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    from_shards = perplexity.perplexity_from_shards(model, tmp_path, window=16)
    from_texts = perplexity.perplexity_from_texts(model, texts, window=16)
    assert (from_shards.tokens, from_shards.bytes, from_shards.documents) == \
        (from_texts.tokens, from_texts.bytes, from_texts.documents)
    assert from_shards.nll_nats == pytest.approx(from_texts.nll_nats, rel=1e-5)
    with pytest.raises(ValueError, match="split 'train' has no shards"):
        perplexity.perplexity_from_shards(model, tmp_path, split="train")


# --- sensitivity ---------------------------------------------------------------------------------

def test_prompt_sensitivity_reports_every_variant_and_spread(model):
    suite = {"t": make_items(6, seed=21), "tiny": make_items(2, seed=22)}
    scores, spread = sensitivity.prompt_sensitivity(model, suite, batch_size=8)
    variants = sensitivity.default_variants()
    assert scores.filter(pl.col("task") == "t").height == len(variants)
    assert scores.filter(pl.col("task") == "tiny").height == len(variants) - 1  # too few items for 3 shots
    row = spread.filter(pl.col("task") == "t").row(0, named=True)
    accs = scores.filter(pl.col("task") == "t")["acc"]
    assert row["acc_spread"] == pytest.approx(accs.max() - accs.min())


# --- contamination -------------------------------------------------------------------------------

def test_contamination_flags_leaked_items_and_splits_scores(tmp_path):
    leaked = {"query": "In which city was the painter Maria Lopez born?", "choices": ["Paris", "Oslo"], "gold": 1}
    long_item = {"query": " ".join(WORDS[:15]), "choices": ["yes", "no"], "gold": 0}
    clean = {"query": "Which treaty ended the winter war?", "choices": ["Paris", "Oslo"], "gold": 0}
    partial = {"query": " ".join(WORDS[9:26]), "choices": ["up", "down"], "gold": 1}
    suite = {"t": [leaked, long_item, clean, partial]}
    pl.DataFrame({"text": [
        "Quiz! Question 1: In which city was the painter Maria Lopez born? A) Paris B) Oslo Answer: Oslo",
        "intro " + " ".join(WORDS[:15]) + " outro",  # the long item's whole query, without its choices
        "Which treaty ended the winter war? Nobody knows.", None,
        "then " + " ".join(WORDS[9:22]) + " and so on"]}).write_parquet(tmp_path / "a.parquet")
    report = contamination.find_contamination(suite, [tmp_path / "a.parquet"], n=13, batch_rows=2)
    assert report.documents_scanned == 5
    # the partial item shares one 13-gram out of several: below the default overlap of one half
    assert report.items["contaminated"].to_list() == [True, True, False, False]
    assert report.items["matched_documents"].to_list() == [1, 1, 0, 1]
    any_overlap = contamination.find_contamination(suite, [tmp_path / "a.parquet"], min_overlap=0.0)
    assert any_overlap.items["contaminated"].to_list() == [True, True, False, True]
    results = pl.DataFrame({"task": ["t"] * 4, "item": [0, 1, 2, 3], "acc": [1.0, 1.0, 0.0, 0.0],
                            "acc_norm": [1.0, 0.0, 0.0, 0.0]})
    split = contamination.scores_by_contamination(results, report)
    assert split.filter(pl.col("subset") == "contaminated").row(0, named=True)["acc"] == 1.0
    assert split.filter(pl.col("subset") == "clean").row(0, named=True)["n"] == 2


def test_contamination_requires_text_column(tmp_path):
    pl.DataFrame({"body": ["x"]}).write_parquet(tmp_path / "b.parquet")
    with pytest.raises(ValueError, match="no 'text' column"):
        contamination.find_contamination({"t": make_items(1)}, [tmp_path / "b.parquet"])


# --- card and cli --------------------------------------------------------------------------------

def test_model_card_renders_every_section():
    info = {
        "model_name": "tiny", "run_id": "r1", "code_version": "abc123",
        "data_sources": [{"uri": "crawl-0.warc.gz", "records": 100, "bytes": 12345}],
        "stages": [{"stage": "filtered_documents", "kept": 80, "removed": 20, "reasons": {"nsfw": 15, "pii": 5}}],
        "tokenizer": {"vocab_size": 1024, "bytes_per_token": 3.5},
        "model_config": {"n_layer": 2, "d_model": 64},
        "training": {"curve_png": "curves.png", "steps": 30},
        "scores": {"bench": {"acc": 0.5, "acc_norm": 0.25, "n": 8}},
        "contamination": {"n": 13, "documents_scanned": 50,
                          "tasks": {"bench": {"items": 8, "contaminated": 2, "clean_acc": 0.4,
                                              "contaminated_acc": 1.0}}},
        "lineage": [{"asset": "raw_crawl", "code_version": "v1", "run_id": "r0", "materialized_at": "2024-01-01"}],
    }
    text = card.render_model_card(info)
    for needle in ("# Model card: tiny", "| filtered_documents | 100 | 80 | 20 | 20.0% |", "| nsfw | 15 | 15.0% |",
                   "![training curves](curves.png)", "| bench | 0.5000 | 0.2500 | 8 |", "| bench | 8 | 2 | 25.0% |",
                   "| raw_crawl | v1 | r0 | 2024-01-01 |", "| vocab_size | 1,024 |"):
        assert needle in text, needle
    assert card.render_model_card({}).count("_not recorded_") >= 6


def test_cli_evaluate_writes_json_and_plots(tmp_path, hf_folder, capsys):
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps(i) + "\n" for i in make_items(5, seed=31)))
    out = tmp_path / "out" / "scores.json"
    scores = cli.evaluate(hf_folder, [bench], shots=1, output=out, batch_size=4)
    assert json.loads(out.read_text()) == scores and scores["bench"]["n"] == 5
    assert "benchmark" in capsys.readouterr().out
    table = cli.scores_table({"tiny": scores, "other": {"bench": {"acc": 1.0, "acc_norm": 0.5, "n": 5}}})
    assert table.height == 4 and set(table["metric"]) == {"acc", "acc_norm"}
    png = cli.bar_plot(table, tmp_path / "scores.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_contamination_finds_exactly_the_quiz_leaks_of_the_synthetic_crawl(tmp_path):
    from resiliparse.extract.html2text import extract_plain_text

    from llm_assets.crawl import read_warc
    from llm_assets.profiles import get_profile
    from llm_assets.synthetic.crawl_folder import generate_crawl

    generate_crawl(tmp_path / "crawl", seed=3, size=get_profile("smoke").synthetic)
    texts = []
    for warc in sorted((tmp_path / "crawl").glob("crawl-*.warc.gz")):
        records = read_warc(str(warc)).records.filter(pl.col("content_type") == "text/html")
        texts += [extract_plain_text(body.decode("utf-8", "replace")) for body in records["body"]]
    pl.DataFrame({"text": texts}).write_parquet(tmp_path / "pages.parquet")
    suite = tasks.load_suite([tmp_path / "crawl" / "benchmark.jsonl"])
    assert len(suite["benchmark_sft"]) + len(suite["benchmark_heldout"]) == len(suite["benchmark"])
    report = contamination.find_contamination({"benchmark": suite["benchmark"]}, [tmp_path / "pages.parquet"])
    assert report.items["labelled_contaminated"].sum() > 0
    assert report.items["contaminated"].to_list() == report.items["labelled_contaminated"].to_list()


# --- scoreboard ----------------------------------------------------------------------------------

def test_scores_without_tasks_or_validation_say_what_was_not_measured(tmp_path, hf_folder):
    """A real crawl with no benchmark file and a tiny mixture: the scoreboard writes its files and notes."""
    from llm_assets.evaluation.scoreboard import score_models

    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "manifest.json").write_text(json.dumps({
        "format": "llmatok", "version": 1, "vocab_size": 400, "dtype": "uint16", "eot_id": 0,
        "tokenizer_sha256": "x", "splits": {"train": [], "validation": []}}))
    (tmp_path / "scores").mkdir()
    (tmp_path / "scores" / "scores.png").write_bytes(b"an earlier run's plot")
    results = score_models({"base": hf_folder}, {}, shards, [], tmp_path / "scores")
    assert results["table"].is_empty() and results["contamination"] is None
    assert any("LLM_ASSETS_BENCHMARKS" in note for note in results["notes"])
    assert any("validation split is empty" in note for note in results["notes"])
    assert results["models"]["base"] == {"scores": {}}
    assert not (tmp_path / "scores" / "scores.png").exists()
    assert json.loads((tmp_path / "scores" / "results.json").read_text())["notes"] == results["notes"]
