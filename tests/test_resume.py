"""A checkpoint folder resumes only the run of the same inputs; changed inputs start fresh."""

from __future__ import annotations

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
