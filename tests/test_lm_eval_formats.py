"""Benchmark formats rendered exactly as lm-eval-harness's tasks render them.

The golden strings below were written from lm-eval's task definitions (mmlu/default, arc_easy, hellaswag with
its preprocessing, piqa) and the shot indices from its `ContextSampler` with the default seed 1234, so these
tests need no lm-eval. Where lm-eval is installed (the `bench` extra), the last test runs it on an exported
tiny checkpoint over every format at 0 and 5 shots and compares contexts, log-likelihoods and decisions.
"""

from __future__ import annotations

import csv
import json
import os

import pytest
import torch

from llm_assets import benchmarks
from llm_assets.evaluation import cli, lm_eval_mirror, multiple_choice, tasks
from llm_assets.evaluation.multiple_choice import PromptFormat


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def contexts(files, shots=0, template=None):
    suite = tasks.load_suite(files)
    pools = tasks.load_fewshot(files)
    fmt = PromptFormat(shots=shots, template=template)
    return {name: multiple_choice.render_contexts(items, fmt, pool=pools.get(name)) for name, items in suite.items()}


def test_mmlu_csv_is_lettered_with_subject_line_and_dev_shots_in_order(tmp_path):
    test = tmp_path / "college_physics_test.csv"
    with test.open("w", newline="") as h:
        csv.writer(h).writerows([[" What is g? ", "9.8", "1", "0", "3", "A"]])
    dev = tmp_path / "college_physics_dev.csv"
    with dev.open("w", newline="") as h:
        csv.writer(h).writerows([["Q1", "a", "b", "c", "d", "B"], ["Q2", "e", "f", "g", "h", "D"]])
    assert tasks.fewshot_file(test) == dev
    zero = contexts([test])["college_physics_test"][0]
    head = "The following are multiple choice questions (with answers) about college physics.\n\n"
    assert zero == head + "What is g?\nA. 9.8\nB. 1\nC. 0\nD. 3\nAnswer:"
    two = contexts([test], shots=2)["college_physics_test"][0]
    assert two == (head + "Q1\nA. a\nB. b\nC. c\nD. d\nAnswer: B\n\n" + "Q2\nA. e\nB. f\nC. g\nD. h\nAnswer: D\n\n"
                   + "What is g?\nA. 9.8\nB. 1\nC. 0\nD. 3\nAnswer:")
    item = benchmarks.load_items(test)[0]
    assert multiple_choice.continuations(item) == ["A", "B", "C", "D"]  # scored as " A" … " D"


def test_arc_hellaswag_piqa_and_icl_contexts(tmp_path):
    arc = write_jsonl(tmp_path / "ARC-Easy-Test.jsonl", [
        {"id": "x", "question": "Which is a gas?", "choices": {"text": ["iron", "steam", "ice"],
                                                               "label": ["1", "2", "3"]}, "answerKey": "2"}])
    hella = write_jsonl(tmp_path / "hellaswag_val.jsonl", [
        {"activity_label": "Baking cookies", "ctx_a": "[header] Mix flour. [title] A woman stirs a bowl.",
         "ctx_b": "she", "endings": ["adds  sugar [step] slowly.", "sings."], "label": "0"}])
    piqa = write_jsonl(tmp_path / "piqa_valid.jsonl", [{"goal": "Open a jar", "sol1": "twist the lid",
                                                       "sol2": "shake it", "label": 0}])
    icl = write_jsonl(tmp_path / "arc_icl.jsonl", [{"query": "Question: Which is a gas?", "choices": ["iron", "steam"],
                                                    "gold": 1}])
    got = contexts([arc, hella, piqa, icl])
    assert got["ARC-Easy-Test"] == ["Question: Which is a gas?\nAnswer:"]
    assert benchmarks.load_items(arc)[0]["gold"] == 1
    # lm-eval: activity_label + ": " + ctx_a + " " + ctx_b.capitalize(), "[title]" -> ". ", "[...]" dropped,
    # double spaces made single
    assert got["hellaswag_val"] == ["Baking cookies: Mix flour.. A woman stirs a bowl. She"]
    assert benchmarks.load_items(hella)[0]["choices"] == ["adds sugar slowly.", "sings."]
    assert got["piqa_valid"] == ["Question: Open a jar\nAnswer:"]
    # the ICL query is used as written, then the answer cue: never "Question: Question: …"
    assert got["arc_icl"] == ["Question: Which is a gas?\nAnswer:"]
    assert contexts([icl], template="Q: {query}\nA:")["arc_icl"] == ["Q: Question: Which is a gas?\nA:"]


def test_shots_are_the_ones_lm_eval_draws(tmp_path):
    """Golden indices from lm-eval's ContextSampler, seed 1234, 8 documents, 3 shots."""
    items = [{"query": f"q{i}", "choices": ["a", "b"], "gold": 0, "doc_id": i} for i in range(8)]
    pool_draw = multiple_choice.draw_shots(items[:3], 3, pool=items)
    assert [[s["doc_id"] for s in shots] for shots in pool_draw] == [[7, 0, 6], [1, 6, 4], [0, 5, 6]]
    own_draw = multiple_choice.draw_shots(items, 3, limit=3)  # the item itself is left out
    assert [[s["doc_id"] for s in shots] for shots in own_draw] == [[7, 6, 5], [0, 5, 6], [1, 6, 7]]
    # HellaSwag/PIQA: the train split is treated as the evaluated one, so k + 1 are drawn even from a pool
    extra = multiple_choice.draw_shots(items[:3], 3, pool=items, exclude_item=True)
    assert [[s["doc_id"] for s in shots] for shots in extra] == [[7, 6, 5], [0, 5, 6], [1, 6, 7]]
    first = multiple_choice.draw_shots(items[:2], 2, pool=items, sampler="first_n")
    assert [[s["doc_id"] for s in shots] for shots in first] == [[0, 1], [0, 1]]


def test_fewshot_files_beside_the_task_file(tmp_path):
    for name in ("ARC-Easy-Test.jsonl", "ARC-Easy-Train.jsonl", "hellaswag_val.jsonl", "hellaswag_train.jsonl"):
        (tmp_path / name).write_text("")
    assert tasks.fewshot_file(tmp_path / "ARC-Easy-Test.jsonl") == tmp_path / "ARC-Easy-Train.jsonl"
    assert tasks.fewshot_file(tmp_path / "hellaswag_val.jsonl") == tmp_path / "hellaswag_train.jsonl"
    assert tasks.fewshot_file(tmp_path / "ARC-Easy-Train.jsonl") is None
    assert tasks.fewshot_file(tmp_path / "mine.jsonl") is None


@pytest.mark.parametrize("choices, message", [
    (["", ""], "item 1: choice 0 is empty"),
    (["x", "y", "x"], "item 1: choices 0 and 2 are the same text"),
])
def test_empty_or_repeated_choices_are_refused_with_file_line_and_item(tmp_path, choices, message):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"query": "q", "choices": ["a", "b"], "gold": 0},
                                                {"query": "q", "choices": choices, "gold": 0}])
    with pytest.raises(benchmarks.BenchmarkFormatError, match=rf"bad\.jsonl:2: {message}"):
        benchmarks.load_items(path)


def test_binary_file_names_the_file_and_line(tmp_path):
    path = tmp_path / "bench.jsonl"
    path.write_bytes(b'{"query": "q", "choices": ["a", "b"], "gold": 0}\n\x89PNG\r\n\x1a\n\x00\xff')
    with pytest.raises(benchmarks.BenchmarkFormatError, match=r"bench\.jsonl:2: not UTF-8"):
        benchmarks.load_items(path)
    csv_path = tmp_path / "x_test.csv"
    csv_path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(benchmarks.BenchmarkFormatError, match=r"x_test\.csv:1: not UTF-8"):
        benchmarks.load_items(csv_path)


def test_mixed_formats_in_one_file_are_refused(tmp_path):
    path = write_jsonl(tmp_path / "mix.jsonl", [{"query": "q", "choices": ["a", "b"], "gold": 0},
                                                {"goal": "g", "sol1": "a", "sol2": "b", "label": 0}])
    with pytest.raises(benchmarks.BenchmarkFormatError, match=r"mix\.jsonl:2: a piqa record in a file of icl"):
        benchmarks.load_items(path)


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    """Every format's files and lm-eval YAMLs, and a tiny checkpoint of ours exported for Hugging Face."""
    from tiny_model import train_byte_bpe

    from llm_assets.modeling.checkpoint import save_checkpoint_folder
    from llm_assets.modeling.export import export_hf
    from llm_assets.modeling.model import DecoderLM, ModelConfig

    root = tmp_path_factory.mktemp("parity")
    parity_tasks, yaml_dir = lm_eval_mirror.write_parity_tasks(root, n_items=12, n_train=10)
    texts = [line for task in parity_tasks for f in task.files for line in f.read_text().splitlines()]
    tokenizer = train_byte_bpe(texts, 400)
    tokenizer.save(str(root / "tokenizer.json"))
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=tokenizer.get_vocab_size(), n_layer=2, n_head=4, n_kv_head=2, d_model=32,
                         d_ff=64, context=1024, init_std=0.2)
    native = save_checkpoint_folder(DecoderLM(config), config, root / "tokenizer.json", root / "native")
    return parity_tasks, yaml_dir, export_hf(native, root / "hf"), root


def test_log_samples_and_template_from_the_cli(parity, tmp_path, capsys):
    parity_tasks, _, hf, _ = parity
    files = [f for task in parity_tasks for f in task.files]
    log_file = tmp_path / "samples.jsonl"
    scores = cli.evaluate(hf, files, shots=2, log_samples=log_file)
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert len(lines) == sum(task.n_items for task in parity_tasks)
    assert set(lines[0]) >= {"task", "doc_id", "context", "loglikelihoods", "pred", "gold"}
    for task in parity_tasks:
        rows = [row for row in lines if row["task"] == task.our_task]
        assert [row["doc_id"] for row in rows] == list(range(task.n_items))
        assert scores[task.our_task]["acc"] == sum(r["pred"] == r["gold"] for r in rows) / len(rows)
    mmlu = next(row for row in lines if row["task"].endswith("_test"))
    assert mmlu["context"].startswith("The following are multiple choice questions") and len(mmlu["loglikelihoods"]) == 4
    icl = next(t for t in parity_tasks if t.format == "icl")
    cli.evaluate(hf, icl.files, template="Q: {query}\nA:", log_samples=log_file)
    assert json.loads(log_file.read_text().splitlines()[0])["context"].startswith("Q: Question: ")


@pytest.mark.parametrize("shots", [0, 5])
def test_every_format_matches_lm_eval_live(parity, shots):
    """lm-eval `--model hf` on the exported checkpoint with the mirrored task definitions vs `evaluate`."""
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install '.[bench]'); the golden-string "
                        "tests above cover the rendering without it")
    pytest.importorskip("accelerate", reason="lm-eval's hf model needs accelerate (in the bench extra)")
    parity_tasks, yaml_dir, hf, root = parity
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import lm_eval
    from lm_eval.tasks import TaskManager

    from llm_assets.evaluation.adapter import load_scoring_model

    results = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={hf},dtype=float32", tasks=[t.lm_eval_task for t in parity_tasks],
        task_manager=TaskManager(include_path=str(yaml_dir), include_defaults=False), num_fewshot=shots,
        batch_size=8, device="cpu", bootstrap_iters=0, log_samples=True)
    files = [f for task in parity_tasks for f in task.files]
    ours = multiple_choice.evaluate_multiple_choice(load_scoring_model(hf), tasks.load_suite(files),
                                                    PromptFormat(shots=shots), fewshot=tasks.load_fewshot(files))
    for task in parity_tasks:
        theirs = lm_eval_mirror.lm_eval_samples(results, task.lm_eval_task)
        rows = ours.items.filter(ours.items["task"] == task.our_task).to_dicts()
        assert len(rows) == len(theirs) == task.n_items
        for row in rows:
            sample = theirs[row["doc_id"]]
            assert set(sample["contexts"]) == {row["context"]}, (task.format, row["doc_id"])
            assert row["loglikelihoods"] == pytest.approx(sample["loglikelihoods"], abs=1e-4)
            assert (row["acc"], row["acc_norm"]) == (sample["acc"], sample["acc_norm"]), (task.format, row["doc_id"])
        metrics = results["results"][task.lm_eval_task]
        assert ours.scores[task.our_task]["acc"] == pytest.approx(metrics["acc,none"], abs=1e-12)
        assert ours.scores[task.our_task]["acc_norm"] == pytest.approx(metrics["acc_norm,none"], abs=1e-12)
