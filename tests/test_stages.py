"""The stage table: data-flow order, settings fields that cover the configuration, code versions that follow
a rule's source and settings."""

from __future__ import annotations

import dataclasses

import pytest

from llm_assets.curation.stages import STAGES, code_version, stage
from llm_assets.profiles import CurationConfig


def test_stages_are_in_data_flow_order_with_per_file_stages_first():
    seen: set[str] = set()
    for record in STAGES:
        assert record.name not in seen
        assert set(record.inputs) <= seen, f"{record.name} reads a stage that comes after it"
        seen.add(record.name)
    kinds = [record.per_file for record in STAGES]
    assert kinds == sorted(kinds, reverse=True), "per-file stages come before the global ones"


def test_every_curation_setting_is_read_by_a_stage():
    """A new CurationConfig field must be named by the stage that reads it, or its code version misses it."""
    named = {name for record in STAGES for name in record.fields}
    fields = {f.name for f in dataclasses.fields(CurationConfig)}
    assert named <= fields, f"unknown fields {sorted(named - fields)}"
    # which engine workers run the work and the label of the value set do not change any output
    assert fields - named == {"workers", "settings"}


def test_code_version_follows_the_settings_a_stage_reads():
    cfg = CurationConfig()
    versions = {record.name: code_version(record.name, cfg) for record in STAGES}
    assert versions == {record.name: code_version(record.name, cfg) for record in STAGES}  # stable
    assert all(v.startswith(f"{k}-") for k, v in versions.items())

    def changed(**fields) -> set[str]:
        other = dataclasses.replace(cfg, **fields)
        return {record.name for record in STAGES if code_version(record.name, other) != versions[record.name]}

    assert changed(nsfw_word_share=0.5) == {"filtered_documents"}
    assert changed(heuristic_overrides={"min_words": 10}) == {"quality_documents"}
    assert changed(minhash_ngram=3) == {"deduplicated_documents"}
    assert changed(languages=("en", "de")) == {"extracted_documents"}
    assert changed(workers=7) == set()


def test_code_version_follows_a_rules_source(monkeypatch):
    """Editing a rule's class gives its stage another version (no hand-bumped constant)."""
    from llm_assets.curation.filters import nsfw

    cfg = CurationConfig()
    before = code_version("filtered_documents", cfg)
    source = "class NsfwWords:\n    name = 'nsfw_words'  # edited\n"
    monkeypatch.setattr("inspect.getsource", lambda obj, real=__import__("inspect").getsource:
                        source if obj is nsfw.NsfwWords else real(obj))
    assert code_version("filtered_documents", cfg) != before
    assert code_version("extracted_documents", cfg) == code_version("extracted_documents", CurationConfig())


def test_unknown_stage_names_the_stages():
    with pytest.raises(ValueError, match="unknown curation stage 'dedup'; stages are raw_crawl, "):
        stage("dedup")


def test_switches_name_every_filter_and_stage_that_can_be_off():
    """`settings.SWITCHES`, which `curation.off` is checked against, lists exactly the filters' names and dedup."""
    from llm_assets.curation import filters
    from llm_assets.settings import SWITCHES

    cfg = CurationConfig(pii_action="drop")
    names = {f.name for f in [*filters.extraction_filters(cfg), *filters.filtration_filters(cfg),
                              *filters.heuristic_filters(filters.HeuristicThresholds()), filters.QualityModel(0.5)]}
    assert set(SWITCHES) == names | {"dedup"}


def test_every_switch_off_keeps_every_page_that_extraction_kept(smoke_crawl, tmp_path):
    """With every filter, the quality model and dedup off, each stage after extraction keeps every page
    (the mixture still decontaminates), and the metadata says the model was switched off."""
    from llm_assets.curation.pipeline import curate
    from llm_assets.profiles import apply_overrides, get_profile
    from llm_assets.settings import SWITCHES

    off = [name for name in SWITCHES if name != "language"]
    # no source weights either, so the mixture removes only benchmark leaks
    profile = apply_overrides(get_profile("smoke"), {"curation": {"off": off, "source_weights": {}}}, "test")
    warcs = sorted(str(p) for p in smoke_crawl.glob("crawl-*.warc.gz"))
    summary = curate(warcs, tmp_path / "lake", profile, synthetic=True)
    extracted = summary["extracted_documents"]["kept"]
    for name in ("filtered_documents", "deduplicated_documents", "quality_documents"):
        assert (summary[name]["kept"], summary[name]["removed"]) == (extracted, 0), name
    assert set(summary["training_mixture"]["removed_by_reason"]) <= {"contaminated"}
    assert summary["quality_classifier"]["skipped"] and "switched off" in summary["quality_classifier"]["skip_reason"]


def test_code_version_does_not_depend_on_where_the_project_is_installed(tmp_path, monkeypatch):
    """The same blocklist read from another folder gives the same version; other entries another one."""
    import shutil

    from llm_assets.curation import filters
    from llm_assets.curation.stages import _filters_of

    cfg = CurationConfig()
    here = code_version("filtered_documents", cfg)
    moved = tmp_path / "blocklist.txt"
    shutil.copyfile(filters.DEFAULT_BLOCKLIST, moved)
    monkeypatch.setattr(filters.url, "DEFAULT_BLOCKLIST", moved)
    assert _filters_of("filtered_documents", cfg)[0].path == moved
    assert code_version("filtered_documents", cfg) == here
    moved.write_text(moved.read_text() + "\nnew-spam-host.example\n")
    assert code_version("filtered_documents", cfg) != here
