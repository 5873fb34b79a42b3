"""Profiles and the JSON override file: unknown sections or fields fail naming the file and the field."""

from __future__ import annotations

import pytest

from llm_assets import profiles


def test_profiles_differ_only_in_sizes():
    names = set(profiles.PROFILES)
    assert names == {"smoke", "default", "gpu"}
    smoke, default = profiles.PROFILES["smoke"], profiles.PROFILES["default"]
    assert smoke.curation == default.curation  # the same curation logic at every size


def test_config_file_overrides(tmp_path, monkeypatch):
    cfg = tmp_path / "web.json"
    cfg.write_text('{"curation": {"minhash_ngram": 5, "heuristic_overrides": {}, "languages": ["en", "de"]},'
                   ' "train": {"max_steps": 7}}')
    monkeypatch.setenv(profiles.CONFIG_ENV, str(cfg))
    p = profiles.get_profile("smoke")
    assert p.curation.minhash_ngram == 5 and p.curation.heuristic_overrides == {}
    assert p.curation.languages == ("en", "de") and p.train.max_steps == 7
    assert p.model == profiles.PROFILES["smoke"].model


@pytest.mark.parametrize("text, message", [
    ('{"curation": {"minhash_gram": 5}}', "unknown field"),
    ('{"curashun": {}}', "unknown section"),
    ('{"curation": [1]}', "must be an object"),
    ("{not json", "not valid JSON"),
])
def test_malformed_config_names_file_and_problem(tmp_path, monkeypatch, text, message):
    cfg = tmp_path / "bad.json"
    cfg.write_text(text)
    monkeypatch.setenv(profiles.CONFIG_ENV, str(cfg))
    with pytest.raises(ValueError, match=message) as err:
        profiles.get_profile("smoke")
    assert "bad.json" in str(err.value)


def test_unknown_profile():
    with pytest.raises(ValueError, match="choose one of"):
        profiles.get_profile("huge")
