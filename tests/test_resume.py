"""A checkpoint folder resumes only the run of the same inputs; changed inputs start fresh."""

from __future__ import annotations

import json

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
    from llm_assets.tokens.shards import MANIFEST
    from llm_assets.training.resume import json_content_digest
    from llm_assets.training.sample_data import write_sample_corpus

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
