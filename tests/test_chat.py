"""The terminal chat: multi-turn history, streamed replies that end at `<|end|>`, one-shot answers."""

from __future__ import annotations

import io
import json

import pytest
import torch
from tokenizers import Tokenizer

from llm_assets.modeling.chat import answer_once, chat_loop, fitting_prompt
from llm_assets.modeling.checkpoint import load_checkpoint, save_checkpoint_folder
from llm_assets.modeling.model import DecoderLM, ModelConfig
from llm_assets.tokens.special import render_chat
from llm_assets.tokens.tokenizer import encode_text, train_tokenizer
from llm_assets.training.config import SFTConfig, config_from_dict
from llm_assets.training.sft import run_sft
from llm_assets.training.sft_data import load_conversations, render_examples

FACTS = {"Lan He": "Lima", "Ananya Sharma": "Arequipa", "Bruno Silva": "Mombasa", "Mei Chen": "Oslo"}


@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    """A tiny model fine-tuned until it answers four questions and ends its turn."""
    folder = tmp_path_factory.mktemp("chat")
    rows = [{"instruction": f"Where was {p} born?", "response": f"{p} was born in {c}."} for p, c in FACTS.items()]
    (folder / "facts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    train_tokenizer([r["instruction"] + " " + r["response"] for r in rows] * 3, 300, folder / "tok.json")
    vocab = Tokenizer.from_file(str(folder / "tok.json")).get_vocab_size()
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=vocab, n_layer=2, n_head=4, n_kv_head=2, d_model=48, d_ff=128, context=64)
    save_checkpoint_folder(DecoderLM(config), config, folder / "tok.json", folder / "base")
    render_examples(load_conversations([folder / "facts.jsonl"]), folder / "base" / "tokenizer.json", 64,
                    folder / "facts.parquet")
    run_sft(config_from_dict(SFTConfig, {
        "examples": str(folder / "facts.parquet"), "base": str(folder / "base"), "out": str(folder / "sft"),
        "accelerator": "cpu", "sft": {"max_steps": 60, "micro_batch": 4, "lr": 1e-2, "warmup_steps": 2,
                                      "epochs_of_templates": 1000, "eval_examples": 4}}), emit=lambda _: None)
    return folder / "sft"


class RecordingOutput(io.StringIO):
    def __init__(self):
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


def test_answer_once(assistant):
    answer = answer_once(assistant, "Where was Lan He born?", max_new_tokens=30)
    assert isinstance(answer, str)
    assert answer == "Lan He was born in Lima."
    with pytest.raises(ValueError, match="prompt is empty"):
        answer_once(assistant, "  ")


def test_chat_loop_two_turns_streams_and_keeps_history(assistant):
    output = RecordingOutput()
    history = chat_loop(assistant, max_new_tokens=30, temperature=0.0,
                        input=io.StringIO("Where was Mei Chen born?\n\nWhere was Bruno Silva born?\n"), output=output)
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[1]["content"] == "Mei Chen was born in Oslo."
    assert history[3]["content"] == "Bruno Silva was born in Mombasa."
    transcript = output.getvalue()
    assert transcript.count("assistant> ") == 2
    assert "assistant> Bruno Silva was born in Mombasa.\n" in transcript
    assert transcript.endswith("you> \n")  # the second turn ended and the loop asked for more
    assert "<|end|>" not in transcript
    # the reply arrived in several pieces, not as one string at the end
    reply_pieces = output.writes[output.writes.index("assistant> ") + 1:]
    assert len(reply_pieces[:reply_pieces.index("\n")]) >= 3


def test_chat_loop_commands_and_sampling(assistant):
    output = io.StringIO()
    history = chat_loop(assistant, max_new_tokens=8, temperature=0.8, top_k=20, top_p=0.9, seed=3,
                        input=io.StringIO("Where was Lan He born?\n/reset\nhello\n/exit\nnever read\n"), output=output)
    assert [m["role"] for m in history] == ["user", "assistant"] and history[0]["content"] == "hello"
    assert "(history cleared)" in output.getvalue() and "never read" not in output.getvalue()


def test_long_history_keeps_the_latest_turns(assistant):
    _, tokenizer = load_checkpoint(assistant)
    history = []
    for i in range(10):
        history += [{"role": "user", "content": f"question number {i}"}, {"role": "assistant", "content": "answer"}]
    history.append({"role": "user", "content": "last"})
    prompt = fitting_prompt(history, tokenizer, budget=40, system=[])
    assert prompt.endswith(render_chat([{"role": "user", "content": "last"}], add_generation_prompt=True))
    # counted as the model gets it: the template's markers are one id each
    assert "question number 0" not in prompt and len(encode_text(tokenizer, prompt)) <= 40
    with pytest.raises(ValueError, match="too long"):
        fitting_prompt([{"role": "user", "content": "word " * 100}], tokenizer, budget=40, system=[])
