"""The decoder model: shapes, loss masking, KV cache equivalence, checkpoint folders."""

from __future__ import annotations

import pytest
import torch
from sample_data import sample_texts

from llm_assets.modeling.checkpoint import load_checkpoint, save_checkpoint_folder
from llm_assets.modeling.model import IGNORE_INDEX, DecoderLM, KVCache, ModelConfig
from llm_assets.profiles import get_profile
from llm_assets.tokens.tokenizer import train_tokenizer


def tiny_config(**changes) -> ModelConfig:
    values = dict(vocab_size=97, n_layer=2, n_head=4, n_kv_head=2, d_model=32, d_ff=64, context=16)
    values.update(changes)
    return ModelConfig(**values)


def test_forward_shapes_and_loss_ignores_masked_targets():
    torch.manual_seed(0)
    model = DecoderLM(tiny_config())
    idx = torch.randint(0, 97, (3, 16))
    targets = torch.randint(0, 97, (3, 16))
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 16, 97)
    assert loss.item() == pytest.approx(torch.log(torch.tensor(97.0)).item(), abs=0.3)  # near uniform at init
    masked = targets.clone()
    masked[:, 8:] = IGNORE_INDEX
    _, half = model(idx, masked)
    expected = torch.nn.functional.cross_entropy(logits[:, :8].reshape(-1, 97), targets[:, :8].reshape(-1))
    assert half.item() == pytest.approx(expected.item(), rel=1e-5)


def test_config_from_profile_and_errors():
    config = ModelConfig.from_size(get_profile("smoke").model, vocab_size=1024)
    assert (config.n_layer, config.d_model, config.vocab_size) == (2, 64, 1024)
    with pytest.raises(ValueError, match="n_kv_head"):
        tiny_config(n_kv_head=3)
    with pytest.raises(ValueError, match="unknown fields"):
        ModelConfig.from_dict({**tiny_config().to_dict(), "dropout": 0.1})


@pytest.mark.parametrize("n_kv_head", [1, 4])
def test_kv_cache_decoding_matches_full_forward(n_kv_head):
    torch.manual_seed(1)
    model = DecoderLM(tiny_config(n_kv_head=n_kv_head)).eval()
    idx = torch.randint(0, 97, (2, 12))
    with torch.no_grad():
        full, _ = model(idx)
        cache = KVCache(model.config, batch=2, max_length=12, device="cpu", dtype=torch.float32)
        prefix, _ = model(idx[:, :5], cache=cache)  # prefill
        chunk, _ = model(idx[:, 5:8], cache=cache, start=5)  # several new tokens at once
        steps = [model(idx[:, t:t + 1], cache=cache, start=t)[0] for t in range(8, 12)]  # one at a time
    incremental = torch.cat([prefix, chunk, *steps], dim=1)
    assert torch.allclose(incremental, full, atol=1e-5)
    assert cache.length == 12


def test_positions_past_context_are_supported():
    model = DecoderLM(tiny_config(context=8)).eval()
    logits, _ = model(torch.randint(0, 97, (1, 20)))
    assert logits.shape == (1, 20, 97) and torch.isfinite(logits).all()


@pytest.mark.parametrize("tie", [True, False])
def test_checkpoint_folder_round_trip(tmp_path, tie):
    tokenizer_path = tmp_path / "tok" / "tokenizer.json"
    train_tokenizer(sample_texts(40), 300, tokenizer_path)
    torch.manual_seed(2)
    config = tiny_config(vocab_size=300, tie_embeddings=tie)
    model = DecoderLM(config)
    out = save_checkpoint_folder(model, config, tokenizer_path, tmp_path / "ckpt")
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "config.json", "tokenizer.json"}
    loaded, tokenizer = load_checkpoint(out)
    assert loaded.config == config
    assert (loaded.lm_head.weight is loaded.embed_tokens.weight) == tie
    idx = torch.randint(0, 300, (2, 10))
    with torch.no_grad():
        assert torch.equal(model.eval()(idx)[0], loaded(idx)[0])
    assert tokenizer.decode(tokenizer.encode("The cat sees a red boat.").ids) == "The cat sees a red boat."


def test_load_checkpoint_names_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_checkpoint(tmp_path)
