"""A checkpoint folder resumes only the run of the same inputs; changed inputs start fresh."""

from __future__ import annotations

import json

import pytest

from llm_assets.training.resume import FINGERPRINT, reset_if_inputs_changed


def test_same_inputs_keep_last_ckpt_changed_inputs_drop_it(tmp_path):
    out = tmp_path / "base_checkpoint"
    assert reset_if_inputs_changed(out, {"shards": "abc", "steps": 10}) is False
    (out / "last.ckpt").write_bytes(b"weights")
    # a retry after a crash: same inputs, the checkpoint stays for resuming
    assert reset_if_inputs_changed(out, {"steps": 10, "shards": "abc"}) is False
    assert (out / "last.ckpt").exists()
    # upstream data changed: the old run must not be resumed
    assert reset_if_inputs_changed(out, {"shards": "def", "steps": 10}) is True
    assert not (out / "last.ckpt").exists()
    assert '"def"' in (out / FINGERPRINT).read_text()


def test_shard_fingerprint_covers_content_not_timing(tmp_path):
    """Two tokenizations of the same mixture fingerprint alike (no wall-clock field decides a resume); one more
    document changes the fingerprint."""
    from sample_data import write_sample_corpus

    from llm_assets.tokens.shards import MANIFEST
    from llm_assets.training.resume import json_content_digest

    first = write_sample_corpus(tmp_path / "a", documents=60, vocab_size=300)["shards"]
    again = write_sample_corpus(tmp_path / "b", documents=60, vocab_size=300)["shards"]
    more = write_sample_corpus(tmp_path / "c", documents=61, vocab_size=300)["shards"]
    manifest = json.loads((first / MANIFEST).read_text())
    assert "seconds" not in manifest
    assert (first / MANIFEST).read_bytes() == (again / MANIFEST).read_bytes()
    assert json_content_digest(first / MANIFEST) == json_content_digest(again / MANIFEST)
    assert json_content_digest(first / MANIFEST) != json_content_digest(more / MANIFEST)
    # a manifest of an earlier version with its timing: the timing does not count, the content does
    manifest["seconds"] = 12.5
    (tmp_path / "old.json").write_text(json.dumps(manifest))
    assert json_content_digest(tmp_path / "old.json") == json_content_digest(first / MANIFEST)
    manifest["tokens"]["train"] += 1
    (tmp_path / "old.json").write_text(json.dumps(manifest))
    assert json_content_digest(tmp_path / "old.json") != json_content_digest(first / MANIFEST)


def test_rerun_of_a_finished_training_keeps_its_losses(tmp_path):
    """A rerun with the same inputs finds last.ckpt at the last step: it trains nothing and must still report
    the training's final loss and whole loss curve (the history travels in last.ckpt)."""
    from sample_data import write_sample_corpus

    from llm_assets.training.config import PretrainConfig, config_from_dict
    from llm_assets.training.pretrain import run_pretraining

    corpus = write_sample_corpus(tmp_path / "corpus", documents=120, vocab_size=300)
    config = config_from_dict(PretrainConfig, {
        "shards": str(corpus["shards"]), "tokenizer": str(corpus["tokenizer"]), "out": str(tmp_path / "run"),
        "model": {"n_layer": 1, "n_head": 2, "n_kv_head": 1, "d_model": 32, "d_ff": 64, "context": 32},
        "train": {"max_steps": 6, "micro_batch": 4, "lr": 3e-3, "warmup_steps": 1, "grad_accum": 1,
                  "checkpoint_every": 3, "eval_every": 3, "eval_batches": 1},
        "accelerator": "cpu", "peak_flops": 1e10, "log_every": 1}, "test config")
    first = run_pretraining(config, emit=lambda _: None)
    lines = []
    again = run_pretraining(config, emit=lines.append)
    assert "resumed from last.ckpt at step 6/6" in lines
    assert again["resumed_at_step"] == 6 and again["steps_this_run"] == 0 and again["steps"] == 6
    assert again["train_loss"] == first["train_loss"] and again["val_loss"] == first["val_loss"]
    assert again["tokens_per_s"] == pytest.approx(first["tokens_per_s"])


class RunsACommand:
    """Pickles as a call to os.system: what a crafted last.ckpt would carry."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("damage", ["truncated", "crafted pickle"])
def test_an_unreadable_last_ckpt_is_set_aside_and_training_starts_fresh(tmp_path, damage):
    import torch
    from sample_data import write_sample_corpus

    from llm_assets.training.__main__ import materialization_metadata
    from llm_assets.training.config import PretrainConfig, config_from_dict
    from llm_assets.training.pretrain import run_pretraining

    corpus = write_sample_corpus(tmp_path / "corpus", documents=80, vocab_size=300)
    out = tmp_path / "run"
    config = config_from_dict(PretrainConfig, {
        "shards": str(corpus["shards"]), "tokenizer": str(corpus["tokenizer"]), "out": str(out),
        "model": {"n_layer": 1, "n_head": 2, "n_kv_head": 1, "d_model": 16, "d_ff": 32, "context": 16},
        "train": {"max_steps": 3, "micro_batch": 2, "lr": 3e-3, "warmup_steps": 1, "grad_accum": 1,
                  "checkpoint_every": 3, "eval_every": 3, "eval_batches": 1},
        "accelerator": "cpu", "peak_flops": 1e10, "log_every": 1}, "test config")
    run_pretraining(config, emit=lambda _: None)
    last, marker = out / "last.ckpt", tmp_path / "executed"
    if damage == "truncated":
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    else:
        torch.save({"state_dict": {}, "payload": RunsACommand(marker)}, last)
    lines = []
    again = run_pretraining(config, emit=lines.append)
    assert not marker.exists()  # the pickle was refused, never run
    [aside] = out.glob("last.ckpt.corrupt-*")
    notes = [line for line in lines if "set aside" in line]
    assert notes == [f"{last} is unreadable ({again['last_ckpt_set_aside'].split(': ', 1)[1]}); set aside as "
                     f"{aside.name}, training from scratch"]
    assert again["last_ckpt_set_aside"].startswith(f"{aside}: ")
    assert again["resumed_from"] is None and again["steps_this_run"] == 3 and last.is_file()
    metrics = {**again, "loss_curve": str(out / "loss_curve.png")}
    assert materialization_metadata(metrics)["last_ckpt_set_aside"] == again["last_ckpt_set_aside"]
    assert json.loads((out / "metrics.json").read_text())["last_ckpt_set_aside"] == again["last_ckpt_set_aside"]
