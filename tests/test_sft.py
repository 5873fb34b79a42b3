"""Supervised fine-tuning: loaders, loss masks, data checks, a short run from a tiny base, resume, export."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import lightning as L
import numpy as np
import polars as pl
import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

from llm_assets.evaluation.multiple_choice import answer_accuracy
from llm_assets.modeling.checkpoint import load_checkpoint, save_checkpoint_folder
from llm_assets.modeling.export import export_hf
from llm_assets.modeling.model import DecoderLM, ModelConfig
from llm_assets.tokens.special import END_OF_TURN, render_chat
from llm_assets.tokens.tokenizer import train_tokenizer
from llm_assets.training.__main__ import main as training_main
from llm_assets.training.config import SFTConfig, config_from_dict
from llm_assets.training.sft import ExampleBatches, planned_steps, run_sft
from llm_assets.training.sft_data import check_examples, load_conversations, render_examples

CONTEXT = 128


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, smoke_crawl):
    """A tokenizer trained on the smoke crawl's questions and answers, and a random tiny model saved as a base."""
    folder = tmp_path_factory.mktemp("sft_base")
    rows = [json.loads(line) for line in (smoke_crawl / "sft.jsonl").read_text().splitlines()]
    items = [json.loads(line) for line in (smoke_crawl / "benchmark.jsonl").read_text().splitlines()]
    texts = [r["instruction"] + " " + r["response"] for r in rows] + [i["query"] for i in items]
    train_tokenizer(texts, 512, folder / "tok.json")
    vocab = Tokenizer.from_file(str(folder / "tok.json")).get_vocab_size()
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=vocab, n_layer=2, n_head=4, n_kv_head=2, d_model=48, d_ff=128, context=CONTEXT)
    base = save_checkpoint_folder(DecoderLM(config), config, folder / "tok.json", folder / "base")
    return base


@pytest.fixture(scope="module")
def examples(tmp_path_factory, smoke_crawl, tiny_base):
    out = tmp_path_factory.mktemp("sft_examples") / "examples.parquet"
    stats = render_examples(load_conversations([smoke_crawl / "sft.jsonl"]), tiny_base / "tokenizer.json",
                            CONTEXT, out)
    return out, stats


def test_loads_the_three_formats(tmp_path, smoke_crawl):
    alpaca = write_jsonl(tmp_path / "alpaca.jsonl", [
        {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
        "",
        {"instruction": "Name a colour.", "input": "", "output": "Blue."},
    ])
    chat = write_jsonl(tmp_path / "chat.jsonl", [{"messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Goodbye."}]}])
    conversations = load_conversations([smoke_crawl / "sft.jsonl", alpaca, chat])
    synthetic = conversations[0]
    first_row = json.loads((smoke_crawl / "sft.jsonl").read_text().splitlines()[0])
    assert synthetic["messages"] == [{"role": "user", "content": first_row["instruction"]},
                                     {"role": "assistant", "content": first_row["response"]}]
    assert synthetic["person"] == first_row["person"] and synthetic["source"] == str(smoke_crawl / "sft.jsonl")
    assert len(conversations) == len((smoke_crawl / "sft.jsonl").read_text().splitlines()) + 3
    translate, colour, dialogue = conversations[-3:]
    assert translate["messages"][0]["content"] == "Translate to French.\n\nGood morning"
    assert colour["messages"][0]["content"] == "Name a colour." and colour["source"] == str(alpaca)
    assert [m["role"] for m in dialogue["messages"]] == ["system", "user", "assistant", "user", "assistant"]


@pytest.mark.parametrize(("line", "message"), [
    ('{"instruction": "x", "response": 3}', r"bad\.jsonl:2: 'response' must be a string"),
    ("{not json", r"bad\.jsonl:2: not valid JSON"),
    ('{"prompt": "x", "completion": "y"}', r"bad\.jsonl:2: unknown row format"),
    ('{"messages": [{"role": "bot", "content": "x"}]}', r"bad\.jsonl:2: message 0 has role 'bot'"),
    ('{"messages": [{"role": "user", "content": "x"}]}', r"bad\.jsonl:2: conversation has no assistant"),
    ("[1, 2]", r"bad\.jsonl:2: expected a JSON object"),
    ('{"messages": []}', r"bad\.jsonl:2: 'messages' must be a non-empty list"),
    ('{"messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "x"}]}',
     r"bad\.jsonl:2: message 0 \(user\) is empty"),
    ('{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": ""}]}',
     r"bad\.jsonl:2: message 1 \(assistant\) is empty"),
    ('{"instruction": "x", "input": "", "output": "  "}', r"bad\.jsonl:2: 'output' is empty"),
    ('{"instruction": "", "response": "y"}', r"bad\.jsonl:2: 'instruction' is empty"),
])
def test_malformed_rows_name_file_and_line(tmp_path, line, message):
    path = write_jsonl(tmp_path / "bad.jsonl", ['{"instruction": "a", "output": "b"}', line])
    with pytest.raises(ValueError, match=message):
        load_conversations([path])


def test_binary_and_non_utf8_files_name_file_and_line(tmp_path):
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes(b'{"instruction": "a", "output": "b"}\n{"instruction": "caf\xe9", "output": "b"}\n')
    with pytest.raises(ValueError, match=r"latin1\.jsonl:2: not UTF-8 text \(byte 0xe9 at column 21\)"):
        load_conversations([latin1])
    binary = tmp_path / "model.jsonl"
    binary.write_bytes(b"PAR1\x15\x00\x15\x9c\x01\x00\xff\xfe" * 20)
    with pytest.raises(ValueError, match=r"model\.jsonl:1: a binary file, not JSON Lines"):
        load_conversations([binary])
    with_bom = tmp_path / "bom.jsonl"
    with_bom.write_bytes('\ufeff{"instruction": "a", "output": "\u00e9t\u00e9"}\n'.encode())
    assert load_conversations([with_bom])[0]["messages"][1]["content"] == "été"


def test_masks_cover_exactly_the_assistant_tokens(tmp_path, tiny_base):
    tokenizer = Tokenizer.from_file(str(tiny_base / "tokenizer.json"))
    messages = [{"role": "system", "content": "Answer in one sentence."},
                {"role": "user", "content": "Where was Lan He born?"},
                {"role": "assistant", "content": "Lan He was born in Arequipa."},
                {"role": "user", "content": "And where does she work?"},
                {"role": "assistant", "content": " In Mombasa, at a bank."}]
    long_one = [{"role": "user", "content": "born " * 200}, {"role": "assistant", "content": "ok"}]
    empty = [{"role": "user", "content": "Say nothing."}, {"role": "assistant", "content": "  "}]
    conversations = [{"messages": m, "source": "test"} for m in (messages, long_one, empty)]
    stats = render_examples(conversations, tiny_base / "tokenizer.json", CONTEXT, tmp_path / "ex.parquet")
    assert stats["examples"] == 1 and stats["dropped"] == {"too_long": 1, "empty_response": 1}
    row = pl.read_parquet(tmp_path / "ex.parquet").row(0, named=True)
    assert row["text"] == render_chat(messages)
    ids, mask = np.array(row["input_ids"]), np.array(row["loss_mask"])
    assert ids.tolist() == tokenizer.encode(row["text"], add_special_tokens=False).ids
    assert stats["assistant_tokens"] == int(mask.sum()) and stats["tokens"] == len(ids)
    decode = lambda part: tokenizer.decode(part.tolist(), skip_special_tokens=False)  # noqa: E731
    assert decode(ids[mask == 1]) == f"Lan He was born in Arequipa.{END_OF_TURN} In Mombasa, at a bank.{END_OF_TURN}"
    # everything else: headers, system and user turns, and the newlines between turns
    unmasked = decode(ids[mask == 0])
    assert "Where was Lan He born?" in unmasked and "Answer in one sentence." in unmasked
    assert "Arequipa" not in unmasked and "Mombasa" not in unmasked


def test_check_examples(tmp_path, examples, smoke_crawl, tiny_base):
    path, stats = examples
    # at this tiny context some reading questions (page sentences, then the question) do not fit; all else does
    assert stats["examples"] > 200 and set(stats["dropped"]) <= {"too_long"}
    questions = [c for c in load_conversations([smoke_crawl / "sft.jsonl"])
                 if "\n\n" not in c["messages"][0]["content"]]
    assert render_examples(questions, tiny_base / "tokenizer.json", CONTEXT, tmp_path / "q.parquet")["dropped"] == {}
    results = check_examples(path, CONTEXT, smoke_crawl / "benchmark.jsonl")
    assert all(passed for passed, _ in results.values()), results
    assert results["no_heldout_overlap"][1]["heldout_queries"] > 0
    # too small a context, and a held-out question pasted (with different case and spacing) into a user turn
    heldout = next(json.loads(line) for line in (smoke_crawl / "benchmark.jsonl").read_text().splitlines()
                   if json.loads(line)["split"] == "heldout")
    leaked = [{"messages": [{"role": "user", "content": "Quiz:  " + heldout["query"].upper()},
                            {"role": "assistant", "content": heldout["choices"][heldout["gold"]]}], "source": "x"}]
    render_examples(leaked, tiny_base / "tokenizer.json", CONTEXT, tmp_path / "leak.parquet")
    results = check_examples(tmp_path / "leak.parquet", 5, smoke_crawl / "benchmark.jsonl")
    assert not results["within_context"][0] and not results["no_heldout_overlap"][0]
    assert results["no_heldout_overlap"][1]["overlapping_turns"] == 1
    assert results["assistant_spans_non_empty"][0]


def test_broken_mask_fails_the_span_check(tmp_path, examples):
    path, _ = examples
    frame = pl.read_parquet(path).head(5)
    # drop the mask of the first example: its assistant turn is no longer trained on
    broken = frame.with_columns(pl.when(pl.int_range(pl.len()) == 0)
                                .then(pl.col("loss_mask").list.eval(pl.element() * 0))
                                .otherwise(pl.col("loss_mask")).alias("loss_mask"))
    broken.write_parquet(tmp_path / "broken.parquet")
    passed, details = check_examples(tmp_path / "broken.parquet", CONTEXT, None)["assistant_spans_non_empty"]
    assert not passed and details["examples_with_unmasked_turns"] == 1


def test_batches_are_resumable_and_padded():
    ids = [np.arange(n, dtype=np.int64) + 10 for n in (5, 9, 3, 7)]
    masks = [np.r_[np.zeros(n - 2, dtype=np.int8), [1, 1]] for n in (5, 9, 3, 7)]
    batches = ExampleBatches(ids, masks, micro_batch=3, seed=1, pad_id=4, length=10)
    first = batches[2]
    assert torch.equal(first["input_ids"], ExampleBatches(ids, masks, 3, 1, 4, 10)[2]["input_ids"])
    # one epoch of 4 examples covers each once: batches 0 and the first item of batch 1
    seen = batches.example_indices(0) + batches.example_indices(1)[:1]
    assert sorted(seen) == [0, 1, 2, 3]
    width = first["input_ids"].shape[1]
    for b, i in enumerate(batches.example_indices(2)):
        n = len(ids[i]) - 1
        assert first["input_ids"][b, :n].tolist() == ids[i][:-1].tolist()
        assert first["targets"][b, :n].tolist() == ids[i][1:].tolist()
        assert (first["input_ids"][b, n:] == 4).all() and not first["loss_mask"][b, n:].any()
        assert first["loss_mask"][b, :n].tolist() == masks[i][1:].astype(bool).tolist()
        assert width >= n


def sft_config(examples_path, base, out, **sizes):
    values = {"max_steps": 12, "micro_batch": 8, "lr": 3e-3, "warmup_steps": 2, "checkpoint_every": 4,
              "eval_examples": 64, "epochs_of_templates": 10}
    values.update(sizes)
    return config_from_dict(SFTConfig, {"examples": str(examples_path), "base": str(base), "out": str(out),
                                        "sft": values, "accelerator": "cpu", "log_every": 4}, "test config")


class CrashAt(L.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError(f"simulated crash at step {self.step}")


def test_sft_learns_assistant_tokens_and_resumes(tmp_path, examples, tiny_base):
    path, stats = examples
    reference = run_sft(sft_config(path, tiny_base, tmp_path / "reference"), emit=lambda _: None)
    assert reference["steps"] == 12 and reference["examples"] == stats["examples"]
    assert reference["assistant_loss_after"] < reference["assistant_loss_before"] - 0.5
    assert reference["history"][-1]["loss"] < reference["history"][0]["loss"]
    assert reference["tokens_seen"] > reference["assistant_tokens_seen"] > 12 * 8
    out = tmp_path / "reference"
    for name in ("model.safetensors", "config.json", "tokenizer.json", "last.ckpt", "metrics.json",
                 "loss_curve.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["stage"] == "sft"
    model, _ = load_checkpoint(out)
    base, _ = load_checkpoint(tiny_base)
    assert not torch.equal(model.embed_tokens.weight, base.embed_tokens.weight)

    crashed = sft_config(path, tiny_base, tmp_path / "crashed")
    with pytest.raises(RuntimeError, match="simulated crash at step 6"):
        run_sft(crashed, emit=lambda _: None, callbacks=[CrashAt(6)])
    assert torch.load(tmp_path / "crashed" / "last.ckpt", weights_only=True)["global_step"] == 4
    resumed = run_sft(crashed, emit=lambda _: None)
    assert resumed["resumed_from"] and resumed["steps_this_run"] == 8 and resumed["steps"] == 12
    assert [s["loss"] for s in resumed["history"]] == pytest.approx(
        [s["loss"] for s in reference["history"][4:]], abs=1e-4)
    want, got = load_file(str(out / "model.safetensors")), load_file(str(tmp_path / "crashed" / "model.safetensors"))
    assert max((want[k] - got[k]).abs().max().item() for k in want) < 1e-4
    assert resumed["tokens_seen"] == reference["tokens_seen"]

    hf = export_hf(out, tmp_path / "hf")
    tokenizer_config = json.loads((hf / "tokenizer_config.json").read_text())
    assert "<|assistant|>" in tokenizer_config["chat_template"]

    accuracy = answer_accuracy(out, [{"query": "Where was Lan He born?", "choices": ["Lima", "Arequipa"],
                                      "gold": 1, "split": "sft"}], mode="chat")
    assert accuracy["items"] == {"sft": 1} and accuracy["accuracy"]["sft"] in (0.0, 1.0)


def test_rejects_examples_from_another_tokenizer(tmp_path, examples, tiny_base):
    other = tmp_path / "other_base"
    other.mkdir()
    train_tokenizer(["completely different text " * 5, "for another tokenizer"], 300, other / "tok.json")
    config = load_checkpoint(tiny_base)[0].config
    save_checkpoint_folder(DecoderLM(config), config, other / "tok.json", other)
    with pytest.raises(ValueError, match="different tokenizer"):
        run_sft(sft_config(examples[0], other, tmp_path / "out"), emit=lambda _: None)


def test_planned_steps_caps_at_epochs():
    sizes = sft_config("x", "y", "z", max_steps=100, micro_batch=10, epochs_of_templates=2).sft
    assert planned_steps(sizes, examples=50) == 10
    assert planned_steps(sizes, examples=5000) == 100


def test_answer_accuracy_prefers_what_the_model_learned(tmp_path, tiny_base):
    """Fine-tune on one fact per person; chat-mode accuracy on those questions beats chance."""
    rng = np.random.default_rng(0)
    cities = ["Lima", "Arequipa", "Mombasa", "Oslo", "Quito", "Hanoi"]
    people = ["Lan He", "Ananya Sharma", "Chiamaka Adeyemi", "Bruno Silva", "Mei Chen", "Omar Haddad"]
    city_of = {p: cities[i] for i, p in enumerate(people)}
    rows = [{"instruction": f"In which city was {p} born?", "response": city_of[p]} for p in people]
    write_jsonl(tmp_path / "facts.jsonl", rows)
    render_examples(load_conversations([tmp_path / "facts.jsonl"]), tiny_base / "tokenizer.json", CONTEXT,
                    tmp_path / "facts.parquet")
    run_sft(sft_config(tmp_path / "facts.parquet", tiny_base, tmp_path / "out", max_steps=40, micro_batch=6,
                       lr=1e-2, warmup_steps=2, epochs_of_templates=100), emit=lambda _: None)
    items = []
    for p in people:
        choices = [city_of[p], *rng.choice([c for c in cities if c != city_of[p]], 3, replace=False).tolist()]
        items.append({"query": f"In which city was {p} born?", "choices": choices, "gold": 0, "split": "sft"})
    result = answer_accuracy(tmp_path / "out", items, mode="chat")
    assert result["accuracy"]["sft"] >= 5 / 6 and result["chance"] == 0.25
    base_mode = answer_accuracy(tmp_path / "out", items, mode="base")
    assert base_mode["mode"] == "base" and base_mode["items"] == {"sft": 6}
    with pytest.raises(ValueError, match="'gold' must index"):
        answer_accuracy(tmp_path / "out", [{"query": "q", "choices": ["a"], "gold": 3}])


def test_cli_sft_command(tmp_path, examples, tiny_base):
    config = {"examples": str(examples[0]), "base": str(tiny_base), "out": str(tmp_path / "cli"),
              "sft": {"max_steps": 3, "micro_batch": 4, "lr": 1e-3, "warmup_steps": 1, "eval_examples": 8},
              "accelerator": "cpu"}
    (tmp_path / "sft.json").write_text(json.dumps(config))
    assert training_main(["sft", "--config", str(tmp_path / "sft.json")]) == 0
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["steps"] == 3


def test_a_user_benchmark_without_splits_is_all_held_out(tmp_path, tiny_base):
    """A real crawl's benchmark file has no `split`: every item is evaluation, so none may be in an SFT turn."""
    bench = tmp_path / "quiz.jsonl"
    bench.write_text(json.dumps({"query": "Which planet has the most moons?", "choices": ["Saturn", "Mars"],
                                 "gold": 0}) + "\n")
    leaked = [{"messages": [{"role": "user", "content": "which planet has the MOST moons?"},
                            {"role": "assistant", "content": "Saturn"}], "source": "x"},
              {"messages": [{"role": "user", "content": "Name a red planet."},
                            {"role": "assistant", "content": "Mars"}], "source": "x"}]
    render_examples(leaked, tiny_base / "tokenizer.json", CONTEXT, tmp_path / "ex.parquet")
    passed, details = check_examples(tmp_path / "ex.parquet", CONTEXT, [bench])["no_heldout_overlap"]
    assert not passed and details["heldout_queries"] == 1 and details["overlapping_turns"] == 1
    passed, details = check_examples(tmp_path / "ex.parquet", CONTEXT, [])["no_heldout_overlap"]
    assert passed and "LLM_ASSETS_BENCHMARKS" in details["skipped"]


def test_answer_context_of_a_base_model_and_of_an_assistant():
    from llm_assets.evaluation.multiple_choice import answer_context

    def start(item):
        return f"{item['person']} was born in" if item["fact"] == "birth_city" else ""

    item = {"query": "Where was Lan He born?", "fact": "birth_city", "person": "Lan He"}
    chat = render_chat([{"role": "user", "content": item["query"]}], add_generation_prompt=True)
    assert answer_context(item, "chat", start) == (chat + "Lan He was born in", " ")
    assert answer_context({**item, "fact": "field"}, "chat", start) == (chat, "")
    assert answer_context(item, "chat") == (chat, "")
    assert answer_context(item, "base") == ("Question: Where was Lan He born?\nAnswer:", " ")
    with pytest.raises(ValueError, match="use 'chat' or 'base'"):
        answer_context(item, "cloze")


def test_plain_form_trains_the_short_answer_of_single_turn_conversations(tmp_path, tiny_base):
    tokenizer = Tokenizer.from_file(str(tiny_base / "tokenizer.json"))
    asked = [{"role": "user", "content": "Where was Lan He born?"},
             {"role": "assistant", "content": "Lan He was born in Arequipa."}]
    colour = [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]
    dialogue = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
                {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Goodbye."}]
    conversations = [{"messages": asked, "answer": "Arequipa", "source": "t"},
                     {"messages": colour, "source": "t"}, {"messages": dialogue, "source": "t"}]
    stats = render_examples(conversations, tiny_base / "tokenizer.json", CONTEXT, tmp_path / "ex.parquet", plain=True)
    frame = pl.read_parquet(tmp_path / "ex.parquet")
    assert frame["form"].to_list() == ["chat", "plain", "chat", "plain", "chat"]
    assert stats["examples_per_form"] == {"chat": 3, "plain": 2}
    assert frame["text"][1] == "Question: Where was Lan He born?\nAnswer: Arequipa"
    assert frame["text"][3] == "Question: Name a colour.\nAnswer: Blue."  # no short answer: the reply
    for row, answer in ((1, " Arequipa"), (3, " Blue.")):
        ids, mask = np.array(frame["input_ids"][row].to_list()), np.array(frame["loss_mask"][row].to_list())
        assert tokenizer.decode(ids[mask == 1].tolist(), skip_special_tokens=False) == answer
    results = check_examples(tmp_path / "ex.parquet", CONTEXT, None)
    assert results["assistant_spans_non_empty"][0], results
    # without plain=True only the chat form is written
    render_examples(conversations, tiny_base / "tokenizer.json", CONTEXT, tmp_path / "chat.parquet")
    assert pl.read_parquet(tmp_path / "chat.parquet")["form"].to_list() == ["chat"] * 3


def test_heldout_check_reads_plain_questions_and_names_of_heldout_people(tmp_path, tiny_base, smoke_crawl):
    bench = smoke_crawl / "benchmark.jsonl"
    heldout = next(item for item in map(json.loads, bench.read_text().splitlines()) if item["split"] == "heldout")
    sft = next(item for item in map(json.loads, bench.read_text().splitlines()) if item["split"] == "sft")
    gold = heldout["choices"][heldout["gold"]]
    # the held-out question pasted into a question (checked in its plain form too), and a reply that only names
    # a held-out person; a question about an SFT person is fine
    cases = {
        "question": [{"role": "user", "content": heldout["query"]}, {"role": "assistant", "content": gold}],
        "named": [{"role": "user", "content": "Who else works there?"},
                  {"role": "assistant", "content": f"{heldout['person']} does."}],
        "fine": [{"role": "user", "content": sft["query"]}, {"role": "assistant", "content": "No idea."}],
    }
    for name, messages in cases.items():
        render_examples([{"messages": messages, "source": "t"}], tiny_base / "tokenizer.json", CONTEXT,
                        tmp_path / f"{name}.parquet", plain=True)
        passed, details = check_examples(tmp_path / f"{name}.parquet", CONTEXT, bench)["no_heldout_overlap"]
        assert passed == (name == "fine"), (name, details)
        if name == "question":
            assert details["overlapping_turns"] == 2  # the chat turn and the plain question
        if name == "named":
            assert details["overlapping_turns"] == 0 and details["sample_people"] == [heldout["person"].lower()]
            assert details["heldout_people_named"] == 1


def test_replay_windows_come_with_every_batch_and_follow_the_batch_number(tmp_path):
    from sample_data import write_sample_corpus

    from llm_assets.training.data import ShardWindows

    corpus = write_sample_corpus(tmp_path, documents=60)
    windows = ShardWindows(corpus["shards"], "train", 16)
    ids = [np.arange(n, dtype=np.int64) + 10 for n in (5, 9, 3, 7)]
    masks = [np.r_[np.zeros(n - 2, dtype=np.int8), [1, 1]] for n in (5, 9, 3, 7)]
    batches = ExampleBatches(ids, masks, 3, 1, 4, 10, replay=windows, replay_windows=2)
    first, again, other = batches[3], ExampleBatches(ids, masks, 3, 1, 4, 10, 0, 1, windows, 2)[3], batches[4]
    assert first["replay_input_ids"].shape == first["replay_targets"].shape == (2, 16)
    assert torch.equal(first["replay_input_ids"], again["replay_input_ids"])
    assert not torch.equal(first["replay_input_ids"], other["replay_input_ids"])
    assert torch.equal(first["replay_input_ids"][:, 1:], first["replay_targets"][:, :-1])
    assert "replay_input_ids" not in ExampleBatches(ids, masks, 3, 1, 4, 10)[3]


def test_sft_with_replay_keeps_the_pretraining_loss_lower(tmp_path, examples, tiny_base):
    """Fine-tuning with pretraining windows replayed: trains, and the replayed text's loss ends lower than
    without replay. Shards of another tokenizer are refused."""
    from sample_data import sample_texts

    from llm_assets.lake import write_parquet
    from llm_assets.tokens.shards import write_shards
    from llm_assets.training.data import FixedWindowBatches, ShardWindows

    path, _ = examples
    texts = sample_texts(80)
    mixture = write_parquet(pl.DataFrame({"warc_record_id": [str(i) for i in range(80)], "text": texts,
                                          "split": ["train"] * 80}), tmp_path / "mixture.parquet")
    write_shards([mixture], tiny_base / "tokenizer.json", tmp_path / "shards", shard_tokens=4096, batch_documents=16)

    def replayed_loss(out):
        model, _ = load_checkpoint(out)
        batch = FixedWindowBatches(ShardWindows(tmp_path / "shards", "train", CONTEXT), 8, 1, 0, 1)[0]
        with torch.no_grad():
            return float(model(batch["input_ids"], batch["targets"])[1])

    config = sft_config(path, tiny_base, tmp_path / "replay", max_steps=30, replay_windows=4)
    config = dataclasses.replace(config, shards=str(tmp_path / "shards"))
    with_replay = run_sft(config, emit=lambda _: None)
    run_sft(sft_config(path, tiny_base, tmp_path / "plain", max_steps=30), emit=lambda _: None)
    assert with_replay["assistant_loss_after"] < with_replay["assistant_loss_before"]
    assert replayed_loss(tmp_path / "replay") < replayed_loss(tmp_path / "plain") - 0.5

    other = tmp_path / "other_tok"
    other.mkdir()
    train_tokenizer(["completely different text " * 5, "for another tokenizer"], 300, other / "tok.json")
    write_shards([mixture], other / "tok.json", tmp_path / "other_shards", shard_tokens=4096, batch_documents=16)
    refused = dataclasses.replace(config, shards=str(tmp_path / "other_shards"), out=str(tmp_path / "x"))
    with pytest.raises(ValueError, match="another tokenizer"):
        run_sft(refused, emit=lambda _: None)


def test_paired_gain_needs_the_margin_and_enough_items():
    from llm_assets.evaluation.gain import paired_gain

    base, better = [0, 1, 0, 0] * 100, [1, 1, 1, 0] * 100  # +50 points on 400 items
    result = paired_gain(base, better, margin=0.05)
    assert result["gain"] == pytest.approx(0.5) and result["passed"] and 0.4 < result["lower_bound"] < 0.5
    assert not paired_gain(base, better, margin=0.49)["passed"]  # the bound is under the margin
    few = paired_gain([0, 1, 0], [1, 1, 0], margin=0.05)  # +33 points on 3 items: too few to be sure
    assert few["gain"] == pytest.approx(1 / 3) and not few["passed"]
    assert not paired_gain(base, base, margin=0.01)["passed"]  # no gain at all
    with pytest.raises(ValueError, match="same items"):
        paired_gain([1], [1, 0], 0.05)
