"""Pretraining with Lightning: schedule, resumable data, a short run, crash + resume, DDP on 2 CPU processes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sample_data import write_sample_corpus

from llm_assets.modeling.checkpoint import load_checkpoint
from llm_assets.tokens.shards import load_manifest, read_tokens
from llm_assets.training.__main__ import materialization_metadata
from llm_assets.training.checks import loss_is_finite, unigram_entropy
from llm_assets.training.config import PretrainConfig, config_from_dict
from llm_assets.training.data import FixedWindowBatches, RandomWindowBatches, ShardWindows
from llm_assets.training.flops import flops_per_token, matmul_parameters, measure_matmul_peak
from llm_assets.training.module import lr_factor
from llm_assets.training.pretrain import run_pretraining


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_sample_corpus(tmp_path_factory.mktemp("corpus"), documents=300, vocab_size=320)


def config_for(corpus, out, **train):
    values = {"max_steps": 12, "micro_batch": 4, "grad_accum": 1, "lr": 3e-3, "warmup_steps": 3,
              "checkpoint_every": 4, "eval_every": 6, "eval_batches": 2, "accelerator": "cpu"}
    values.update(train)
    return config_from_dict(PretrainConfig, {
        "shards": str(corpus["shards"]), "tokenizer": str(corpus["tokenizer"]), "out": str(out),
        "model": {"n_layer": 2, "n_head": 4, "n_kv_head": 2, "d_model": 32, "d_ff": 64, "context": 32},
        "train": values, "peak_flops": 1e10, "log_every": 4}, "test config")


def test_lr_schedule_warms_up_then_decays_to_floor():
    factors = [lr_factor(s, warmup_steps=10, max_steps=100, min_lr_ratio=0.1) for s in range(101)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:], strict=False))
    assert factors[100] == pytest.approx(0.1)


def test_windows_are_reproducible_and_inside_shards(corpus):
    windows = ShardWindows(corpus["shards"], "train", context=32)
    assert windows.windows == sum(max(0, len(a) - 32) for a in windows.arrays)
    batches = RandomWindowBatches(windows, micro_batch=6, seed=7, rank=0, length=100)
    first, again = batches[42], batches[42]
    assert torch.equal(first["input_ids"], again["input_ids"])
    assert not torch.equal(batches[42]["input_ids"], batches[43]["input_ids"])
    assert not torch.equal(first["input_ids"], RandomWindowBatches(windows, 6, 7, 1, 100)[42]["input_ids"])
    assert torch.equal(first["input_ids"][:, 1:], first["targets"][:, :-1])
    # every row is a real slice of some shard
    all_tokens = np.concatenate([np.asarray(a) for a in windows.arrays])
    row = first["input_ids"][0].numpy()
    hits = np.flatnonzero(all_tokens[:-32] == row[0])
    assert any(np.array_equal(all_tokens[h:h + 32], row) for h in hits)


def test_validation_windows_split_across_ranks(corpus):
    windows = ShardWindows(corpus["shards"], "validation", context=32)
    ranks = [FixedWindowBatches(windows, micro_batch=2, batches=3, rank=r, world=2) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 3
    assert not np.intersect1d(ranks[0].batches, ranks[1].batches).size


def test_window_longer_than_every_shard_is_a_clear_error(corpus):
    with pytest.raises(ValueError, match="no shard longer than context"):
        RandomWindowBatches(ShardWindows(corpus["shards"], "train", context=10_000), 2, 0, 0, 10)


def test_checks_and_flops(corpus):
    manifest = load_manifest(corpus["shards"])
    tokens = np.concatenate([np.asarray(read_tokens(Path(corpus["shards"]) / e["file"]))
                             for e in manifest["splits"]["train"]])
    probs = np.bincount(tokens) / len(tokens)
    probs = probs[probs > 0]
    assert unigram_entropy(corpus["shards"]) == pytest.approx(float(-(probs * np.log(probs)).sum()))
    assert loss_is_finite(2.0, 3.0)[0] and not loss_is_finite(2.0, math.nan)[0]
    config = config_for(corpus, "unused")
    from llm_assets.modeling.model import DecoderLM, ModelConfig

    model_config = ModelConfig.from_size(config.model, vocab_size=320)
    model = DecoderLM(model_config)
    norms = sum(p.numel() for n, p in model.named_parameters() if "norm" in n)
    assert matmul_parameters(model_config) == model.num_parameters() - norms  # tied: head counted once
    assert flops_per_token(model_config) == 6 * matmul_parameters(model_config) + 12 * 2 * 32 * 32
    assert measure_matmul_peak("cpu", size=128, seconds=0.05) > 1e6


def test_pretraining_writes_checkpoint_folder_and_learns(corpus, tmp_path):
    lines = []
    metrics = run_pretraining(config_for(corpus, tmp_path / "run", max_steps=30, eval_every=15), emit=lines.append)
    out = tmp_path / "run"
    assert {"last.ckpt", "model.safetensors", "config.json", "tokenizer.json", "metrics.json",
            "loss_curve.png"} <= {p.name for p in out.iterdir()}
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["steps"] == 30 and saved["tokens_seen"] == 30 * 4 * 32
    assert saved["loss_finite"] and saved["parameters"] == metrics["parameters"]
    history = [s["loss"] for s in saved["history"]]
    assert np.mean(history[-5:]) < np.mean(history[:5]) - 0.5  # it learns
    assert saved["val_loss"] < math.log(320)  # better than uniform over the vocabulary
    assert saved["mfu"] > 0 and saved["tokens_per_s"] > 0
    assert any(line.startswith("step 4/30 loss") and "MFU" in line for line in lines)
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    model, _ = load_checkpoint(out)
    assert model.num_parameters() == saved["parameters"]
    metadata = materialization_metadata(saved)
    assert metadata["path"] == {"raw_value": str(out), "type": "path"} and metadata["val_loss"] == saved["val_loss"]


def test_max_epochs_cuts_the_steps_on_a_small_corpus(corpus, tmp_path):
    """A corpus smaller than max_steps of tokens trains max_epochs passes, with a warmup that still fits."""
    train_tokens = ShardWindows(corpus["shards"], "train", 32).tokens
    lines = []
    metrics = run_pretraining(config_for(corpus, tmp_path / "run", max_steps=10_000, warmup_steps=500,
                                         max_epochs=0.5, eval_every=10_000), emit=lines.append)
    expected = math.ceil(0.5 * train_tokens / (4 * 32))
    assert expected < 10_000
    assert metrics["steps"] == expected and metrics["steps_cut_by_epochs"].startswith("max_steps 10000 cut to")
    assert metrics["epochs"] == pytest.approx(0.5, abs=4 * 32 / train_tokens)
    assert any(f"{expected} steps of 128 tokens (max_steps 10000 cut" in line for line in lines)
    assert metrics["val_loss"] is not None and math.isfinite(metrics["val_loss"])
    # a budget that fits keeps its steps
    kept = run_pretraining(config_for(corpus, tmp_path / "kept", max_epochs=1000.0), emit=lambda _: None)
    assert kept["steps"] == 12 and kept["steps_cut_by_epochs"] is None


def test_max_epochs_must_be_positive(corpus, tmp_path):
    from llm_assets.profiles import apply_overrides, get_profile

    with pytest.raises(ValueError, match=r"train\.max_epochs = 0 must be > 0"):
        apply_overrides(get_profile("smoke"), {"train": {"max_epochs": 0}}, "config.json")


class CrashAt(L.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            raise RuntimeError(f"simulated crash at step {self.step}")


def test_resume_after_crash_matches_uninterrupted_run(corpus, tmp_path):
    reference = run_pretraining(config_for(corpus, tmp_path / "reference", grad_accum=2), emit=lambda _: None)
    crashed = config_for(corpus, tmp_path / "crashed", grad_accum=2)
    with pytest.raises(RuntimeError, match="simulated crash at step 7"):
        run_pretraining(crashed, emit=lambda _: None, callbacks=[CrashAt(7)])
    assert not (tmp_path / "crashed" / "model.safetensors").exists()
    assert torch.load(tmp_path / "crashed" / "last.ckpt", weights_only=True)["global_step"] == 4
    mid_run, _ = load_checkpoint(tmp_path / "crashed")  # config.json + last.ckpt are enough mid-run
    assert mid_run.config.d_model == 32
    resumed = run_pretraining(crashed, emit=lambda _: None)
    assert resumed["resumed_from"] and resumed["steps_this_run"] == 8
    assert resumed["steps"] == reference["steps"] == 12
    assert resumed["val_loss"] == pytest.approx(reference["val_loss"], abs=1e-4)
    assert [s["loss"] for s in resumed["history"]] == pytest.approx(
        [s["loss"] for s in reference["history"][4:]], abs=1e-4)
    want = load_file(str(tmp_path / "reference" / "model.safetensors"))
    got = load_file(str(tmp_path / "crashed" / "model.safetensors"))
    assert max((want[k] - got[k]).abs().max().item() for k in want) < 1e-4


def test_sft_mode_counts_only_masked_targets():
    from llm_assets.modeling.model import ModelConfig
    from llm_assets.training.module import LanguageModelTask, OptimizerConfig

    torch.manual_seed(0)
    config = ModelConfig(vocab_size=50, n_layer=1, n_head=2, n_kv_head=1, d_model=16, d_ff=32, context=8)
    task = LanguageModelTask(config, OptimizerConfig(lr=1e-3, warmup_steps=1, max_steps=10), mode="sft")
    batch = {"input_ids": torch.randint(0, 50, (2, 8)), "targets": torch.randint(0, 50, (2, 8)),
             "loss_mask": torch.zeros(2, 8, dtype=torch.bool)}
    batch["loss_mask"][:, 5:] = True
    logits, _ = task.model(batch["input_ids"])
    expected = torch.nn.functional.cross_entropy(logits[:, 5:].reshape(-1, 50), batch["targets"][:, 5:].reshape(-1))
    _, loss = task(batch["input_ids"], task._targets(batch))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    del batch["loss_mask"]
    with pytest.raises(ValueError, match="loss_mask"):
        task._targets(batch)


def test_mfu_never_exceeds_the_device():
    """A peak measured while the cores were busy understates the device: a faster step raises it, so the
    MFU it reports stays at most 100 %."""
    from llm_assets.training.callbacks import ProgressReporter

    lines: list[str] = []
    reporter = ProgressReporter(lines.append, tokens_per_step=1000, flops_per_token=6_000_000, peak_flops=1e9)
    reporter._raise_peak(3e9)
    assert reporter.peak_flops == 3e9 and len(lines) == 1 and "busy" in lines[0]
    reporter._raise_peak(2e9)  # slower steps leave the better estimate alone
    reporter._raise_peak(4e9)
    assert reporter.peak_flops == 4e9 and len(lines) == 1


def test_program_configs_share_one_checked_loader(tmp_path):
    """Both programs' JSON configs: the profile's sizes, top-level runtime keys, every field checked by name."""
    from llm_assets.defs.training import TrainerResource
    from llm_assets.profiles import RUNTIME_FIELDS
    from llm_assets.training.config import SFTConfig, load_config

    paths = {"examples": "e.parquet", "base": "base", "out": "out"}
    sft = config_from_dict(SFTConfig, {**paths, "profile": "smoke", "devices": 2, "sft": {"max_steps": 3}}, "sft.json")
    assert sft.runtime.devices == 2 and sft.runtime.precision == "32-true" and sft.sft.max_steps == 3
    pretrain = config_from_dict(PretrainConfig, {"shards": "s", "tokenizer": "t.json", "out": "o", "profile": "smoke",
                                                 "accelerator": "cpu"}, "pretrain.json")
    assert pretrain.runtime.accelerator == "cpu" and pretrain.model.context == 128
    for values, message in [({**paths, "sft": {"max_step": 3}}, r"sft.json: unknown field\(s\) \['max_step'\]"),
                            ({**paths, "sft": {"max_steps": 3}}, r"needs field\(s\) \['micro_batch', 'lr'\]"),
                            ({**paths, "profile": "smoke", "precision": "fp8"}, "runtime.precision = \"fp8\""),
                            ({**paths, "profile": "smoke", "epochs": 1}, r"unknown key\(s\) \['epochs'\]"),
                            ({"examples": "e", "base": "b"}, "'out' is required")]:
        with pytest.raises(ValueError, match=message):
            config_from_dict(SFTConfig, values, "sft.json")
    (tmp_path / "sft.json").write_text("{not json")
    with pytest.raises(ValueError, match="sft config .*sft.json: not valid JSON"):
        load_config(SFTConfig, tmp_path / "sft.json")
    # the Dagster resource sets the same runtime fields the programs read
    assert tuple(TrainerResource.model_fields) == RUNTIME_FIELDS
