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
    assert profiles.curation_for(p, synthetic=True).minhash_ngram == 5  # the user's values win there too
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


def test_synthetic_settings_only_for_a_synthetic_crawl(monkeypatch):
    monkeypatch.delenv(profiles.CONFIG_ENV, raising=False)
    for name in profiles.PROFILES:
        p = profiles.get_profile(name)
        real, synthetic = profiles.curation_for(p, synthetic=False), profiles.curation_for(p, synthetic=True)
        # a real crawl gets the published values whatever the profile
        assert real == p.curation and real.settings == "published"
        assert real.minhash_ngram == 5 and real.heuristic_overrides == {} and real.reference_hosts == ()
        assert real.source_weights == {}
        assert synthetic.settings == "synthetic-web"
        assert synthetic.minhash_ngram == 3 and synthetic.reference_hosts == ("www.wikiverse.org",)
        assert synthetic.heuristic_overrides["min_words"] == 15 and synthetic.source_weights["wikiverse"] == 2.0
        assert synthetic.workers == real.workers  # sizes still come from the profile


def test_user_config_wins_over_synthetic_settings(tmp_path, monkeypatch):
    cfg = tmp_path / "mine.json"
    cfg.write_text('{"curation": {"minhash_ngram": 4, "reference_files": ["wiki.parquet"]}}')
    monkeypatch.setenv(profiles.CONFIG_ENV, str(cfg))
    p = profiles.get_profile("smoke")
    for synthetic in (False, True):
        c = profiles.curation_for(p, synthetic)
        assert c.minhash_ngram == 4 and c.reference_files == ("wiki.parquet",)
    assert profiles.curation_for(p, True).heuristic_overrides["min_words"] == 15  # not overridden: synthetic
    assert profiles.curation_for(p, False).settings == "published + overrides: minhash_ngram, reference_files"
    assert profiles.curation_for(p, True).settings == "synthetic-web + overrides: minhash_ngram, reference_files"
    cfg.write_text('{"curation": {"settings": "synthetic-web"}}')
    with pytest.raises(ValueError, match="curation.settings is set from the kind of crawl"):
        profiles.get_profile("smoke")
