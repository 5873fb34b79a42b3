"""Hugging Face export: the exported folder loads offline and matches our logits and greedy generation."""

from __future__ import annotations

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from sample_data import sample_texts  # noqa: E402

from llm_assets.modeling.checkpoint import load_checkpoint, save_checkpoint_folder  # noqa: E402
from llm_assets.modeling.export import export_hf  # noqa: E402
from llm_assets.modeling.generate import generate, generate_ids  # noqa: E402
from llm_assets.modeling.model import DecoderLM, ModelConfig  # noqa: E402
from llm_assets.tokens.tokenizer import train_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    train_tokenizer(sample_texts(60), 320, path)
    return path


def make_checkpoint(folder, tokenizer_path, tie: bool, n_kv_head: int):
    torch.manual_seed(3)
    config = ModelConfig(vocab_size=320, n_layer=2, n_head=4, n_kv_head=n_kv_head, d_model=48, d_ff=96,
                         context=32, tie_embeddings=tie)
    model = DecoderLM(config)
    with torch.no_grad():  # non-trivial norm gains so a wrong mapping of them would show
        for name, param in model.named_parameters():
            if "norm" in name:
                param.uniform_(0.5, 1.5)
    return save_checkpoint_folder(model, config, tokenizer_path, folder)


@pytest.mark.parametrize(("tie", "n_kv_head"), [(True, 2), (False, 4)])
def test_exported_logits_match(tmp_path, tokenizer_path, tie, n_kv_head):
    checkpoint = make_checkpoint(tmp_path / "ckpt", tokenizer_path, tie, n_kv_head)
    out = export_hf(checkpoint, tmp_path / "hf")
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(out, local_files_only=True,
                                                                 dtype=torch.float32).eval()
    ours, _ = load_checkpoint(checkpoint)
    idx = torch.randint(0, 320, (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = hf_model(idx).logits
        actual, _ = ours(idx)
    assert (actual - expected).abs().max().item() <= 1e-4
    assert json.loads((out / "config.json").read_text())["tie_word_embeddings"] == tie


def test_exported_tokenizer_and_chat_template(tmp_path, tokenizer_path):
    out = export_hf(make_checkpoint(tmp_path / "ckpt", tokenizer_path, True, 2), tmp_path / "hf")
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(out, local_files_only=True)
    _, ours = load_checkpoint(tmp_path / "ckpt")
    text = "The cat sees a red boat near the sea."
    assert hf_tokenizer(text)["input_ids"] == ours.encode(text).ids
    assert hf_tokenizer.eos_token == "<|endoftext|>" and hf_tokenizer.pad_token == "<|pad|>"
    rendered = hf_tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                                add_generation_prompt=True)
    assert rendered == "<|user|>\nhi<|end|>\n<|assistant|>\n"


def test_greedy_generation_equals_transformers(tmp_path, tokenizer_path):
    checkpoint = make_checkpoint(tmp_path / "ckpt", tokenizer_path, True, 2)
    out = export_hf(checkpoint, tmp_path / "hf")
    model, tokenizer = load_checkpoint(checkpoint)
    prompt = "The old farmer"
    prompt_ids = tokenizer.encode(prompt).ids
    ours = list(generate_ids(model, prompt_ids, max_new_tokens=40, temperature=0.0, stop_ids=()))
    hf_model = transformers.AutoModelForCausalLM.from_pretrained(out, local_files_only=True,
                                                                 dtype=torch.float32).eval()
    hf = hf_model.generate(torch.tensor([prompt_ids]), max_new_tokens=40, do_sample=False,
                           eos_token_id=None, min_new_tokens=40, pad_token_id=4)[0, len(prompt_ids):].tolist()
    assert ours == hf
    # the streamed text pieces join to the decoded tokens
    pieces = list(generate(model, tokenizer, prompt, max_new_tokens=40, temperature=0.0, stop_ids=[]))
    assert "".join(pieces) == tokenizer.decode(ours, skip_special_tokens=False)


def test_sampling_is_seeded_and_respects_top_k(tmp_path, tokenizer_path):
    model, _ = load_checkpoint(make_checkpoint(tmp_path / "ckpt", tokenizer_path, True, 2))
    run = lambda seed: list(generate_ids(model, [5, 6, 7], 20, temperature=1.0, top_k=1, seed=seed))  # noqa: E731
    greedy = list(generate_ids(model, [5, 6, 7], 20, temperature=0.0))
    assert run(1) == run(2) == greedy  # top_k=1 leaves only the argmax
    sampled = [list(generate_ids(model, [5, 6, 7], 20, temperature=2.0, top_p=0.95, seed=s)) for s in (1, 1, 2)]
    assert sampled[0] == sampled[1] and sampled[0] != sampled[2]


def test_generation_stops_at_stop_id(tmp_path, tokenizer_path):
    model, _ = load_checkpoint(make_checkpoint(tmp_path / "ckpt", tokenizer_path, True, 2))
    greedy = list(generate_ids(model, [5, 6, 7], 20, temperature=0.0))
    stopped = list(generate_ids(model, [5, 6, 7], 20, temperature=0.0, stop_ids=[greedy[3]]))
    assert stopped == greedy[:greedy.index(greedy[3])]
