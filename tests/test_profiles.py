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


@pytest.mark.parametrize("text, field, allowed", [
    ('{"curation": {"minhash_ngram": "5"}}', 'curation.minhash_ngram = "5"', "must be an integer"),
    ('{"curation": {"toxicity_threshold": "high"}}', 'curation.toxicity_threshold = "high"', "must be a number"),
    ('{"curation": {"toxicity_threshold": 1.5}}', "curation.toxicity_threshold = 1.5", "in [0, 1]"),
    ('{"curation": {"languages": "en"}}', 'curation.languages = "en"', "must be a list of strings"),
    ('{"curation": {"languages": []}}', "curation.languages = []", "non-empty list"),
    ('{"curation": {"reference_hosts": "www.example.org"}}', "curation.reference_hosts", "a list of strings"),
    ('{"curation": {"minhash_bands": -3}}', "curation.minhash_bands = -3", "must be > 0"),
    ('{"curation": {"minhash_ngram": 5.0}}', "curation.minhash_ngram = 5.0", "must be an integer"),
    ('{"curation": {"max_body_bytes": 0}}', "curation.max_body_bytes = 0", "must be > 0"),
    ('{"curation": {"extractor": "lxml"}}', 'curation.extractor = "lxml"', "one of 'resiliparse', 'trafilatura'"),
    ('{"curation": {"pii_action": "mask"}}', 'curation.pii_action = "mask"', "one of 'redact', 'drop'"),
    ('{"curation": {"source_weights": {"wiki": "2"}}}', "curation.source_weights", "number values"),
    ('{"curation": {"source_weights": {"wiki": -1}}}', "curation.source_weights", "weight >= 0"),
    ('{"curation": {"workers": true}}', "curation.workers = true", "must be an integer"),
    ('{"curation": {"minhash_chunk_words": 3}}', "curation.minhash_chunk_words = 3", "at least minhash_ngram"),
    ('{"train": {"max_steps": 0}}', "train.max_steps = 0", "must be > 0"),
    ('{"train": {"lr": 0}}', "train.lr = 0", "must be > 0"),
    ('{"train": {"precision": "fp8"}}', 'train.precision = "fp8"', "'bf16-mixed'"),
    ('{"train": {"compile": 1}}', "train.compile = 1", "true or false"),
    ('{"train": {"devices": 0}}', "train.devices = 0", "a count >= 1"),
    ('{"model": {"n_head": 5}}', "model.d_model = 64 must be a multiple of n_head (5)", ""),
    ('{"eval": {"max_items": -1}}', "eval.max_items = -1", "must be > 0"),
    ('{"sft": {"warmup_steps": -1}}', "sft.warmup_steps = -1", "must be >= 0"),
    # nested overrides are checked at load against the threshold they replace, not after dedup has run
    ('{"curation": {"heuristic_overrides": {"min_wrds": "many"}}}', "curation.heuristic_overrides.min_wrds",
     "is not a field of HeuristicThresholds; fields are min_words"),
    ('{"curation": {"heuristic_overrides": {"min_words": "many"}}}',
     'curation.heuristic_overrides.min_words = "many"', "must be an integer"),
    ('{"curation": {"heuristic_overrides": {"max_dup_line_ratio": 3}}}',
     "curation.heuristic_overrides.max_dup_line_ratio = 3", "in [0, 1]"),
    ('{"curation": {"heuristic_overrides": {"max_top_ngram_char_ratio": [[2, 0.2, 1]]}}}',
     "curation.heuristic_overrides.max_top_ngram_char_ratio", "a list of [an integer, a number] lists"),
    ('{"curation": {"heuristic_overrides": {"max_dup_ngram_char_ratio": [[0, 0.2]]}}}',
     "curation.heuristic_overrides.max_dup_ngram_char_ratio", "[n in 1..64, share in [0, 1]] pairs"),
    ('{"curation": {"heuristic_overrides": [1]}}', "curation.heuristic_overrides", "must be an object"),
    ('{"curation": {"off": ["dedupe"]}}', 'curation.off = ["dedupe"]', "a list of names from language, url_blocklist"),
])
def test_bad_values_are_refused_naming_file_field_value_and_what_is_allowed(tmp_path, monkeypatch, text, field,
                                                                              allowed):
    cfg = tmp_path / "values.json"
    cfg.write_text(text)
    monkeypatch.setenv(profiles.CONFIG_ENV, str(cfg))
    with pytest.raises(ValueError) as err:
        profiles.get_profile("smoke")
    message = str(err.value)
    assert message.startswith(str(cfg)) and field in message and allowed in message


def test_good_values_of_every_kind_are_taken(tmp_path, monkeypatch):
    cfg = tmp_path / "good.json"
    cfg.write_text('{"curation": {"toxicity_threshold": 1, "max_body_bytes": null, "reference_hosts": ["a.org"],'
                   ' "source_weights": {"wiki": 2}, "pii_action": "drop", "minhash_chunk_words": 5},'
                   ' "train": {"devices": "auto", "precision": "bf16-mixed", "warmup_steps": 0, "compile": true},'
                   ' "eval": {"max_items": null, "shots": 0}}')
    monkeypatch.setenv(profiles.CONFIG_ENV, str(cfg))
    p = profiles.get_profile("smoke")
    assert p.curation.toxicity_threshold == 1.0 and isinstance(p.curation.toxicity_threshold, float)
    assert p.curation.max_body_bytes is None and p.curation.reference_hosts == ("a.org",)
    assert p.curation.source_weights == {"wiki": 2.0} and p.train.devices == "auto" and p.eval.max_items is None
    with pytest.raises(ValueError, match="minhash_chunk_words = 5 must be at least minhash_ngram"):
        profiles.apply_overrides(p, {"curation": {"minhash_ngram": 6}}, "second.json")


def test_heuristic_overrides_are_typed_when_taken(tmp_path, monkeypatch):
    cfg = tmp_path / "heuristics.json"
    cfg.write_text('{"curation": {"heuristic_overrides": {"min_words": 0, "max_top_ngram_char_ratio": [[2, 1]],'
                   ' "max_dup_line_ratio": 1}}}')
    monkeypatch.setenv(profiles.CONFIG_ENV, str(cfg))
    thresholds = profiles.HeuristicThresholds.from_config(profiles.get_profile("smoke").curation)
    assert thresholds.min_words == 0 and thresholds.max_top_ngram_char_ratio == ((2, 1.0),)
    assert thresholds.max_dup_line_ratio == 1.0 and isinstance(thresholds.max_dup_line_ratio, float)


def test_built_in_profiles_and_synthetic_settings_are_valid():
    for name, profile in profiles.PROFILES.items():
        assert profiles.validate_profile(profile, name) is profile
        for synthetic in (False, True):
            assert profiles.section_problems(profiles.curation_for(profile, synthetic)) == []
    broken = profiles.dataclasses.replace(profiles.PROFILES["smoke"], train=profiles.dataclasses.replace(
        profiles.PROFILES["smoke"].train, max_steps=0, lr="fast"))
    with pytest.raises(ValueError, match=r"^smoke: train.max_steps = 0 must be > 0; train.lr = \"fast\" must be"):
        profiles.validate_profile(broken, "smoke")
