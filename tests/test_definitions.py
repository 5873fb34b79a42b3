"""The code location loads and validates; every asset carries what the UI shows and at least one check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from llm_assets.definitions import defs

REPO = Path(__file__).resolve().parents[1]
EXPECTED = {
    "raw_crawl", "extracted_documents", "filtered_documents", "deduplicated_documents", "quality_classifier",
    "quality_documents", "training_mixture", "tokenizer", "token_shards", "base_checkpoint", "sft_examples",
    "assistant_checkpoint", "benchmark_suite", "benchmark_scores", "model_card",
}


def test_dagster_definitions_validate(tmp_path):
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run([str(dagster), "definitions", "validate", "-m", "llm_assets.definitions"], cwd=REPO,
                          env={**os.environ, "DAGSTER_HOME": str(tmp_path)}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_every_asset_is_described_versioned_and_checked():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == EXPECTED
    checked = {k.asset_key.to_user_string() for k in graph.asset_check_keys}
    assert checked == EXPECTED, EXPECTED - checked
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.code_version, key
        assert node.group_name and node.group_name != "default", key
        assert node.description and node.owners and node.kinds, key
    pools = {k.to_user_string(): graph.get(k).pools for k in graph.get_all_asset_keys()}
    assert pools["base_checkpoint"] == {"gpu"} and pools["assistant_checkpoint"] == {"gpu"}
    assert not pools["raw_crawl"]


def test_lineage_edges():
    graph = defs.resolve_asset_graph()

    def parents(name: str) -> set[str]:
        from dagster import AssetKey

        return {p.to_user_string() for p in graph.get(AssetKey(name)).parent_keys}

    assert parents("extracted_documents") == {"raw_crawl"}
    assert parents("token_shards") == {"tokenizer", "training_mixture"}
    assert parents("assistant_checkpoint") == {"base_checkpoint", "sft_examples", "token_shards"}  # replay
    assert {"base_checkpoint", "assistant_checkpoint", "benchmark_suite"} <= parents("benchmark_scores")


def test_automation_is_on_by_default_and_off_with_the_switch(monkeypatch):
    from dagster import DefaultSensorStatus

    from llm_assets.defs import build_definitions

    monkeypatch.delenv("LLM_ASSETS_AUTOMATION", raising=False)
    on = build_definitions()
    sensor = on.resolve_sensor_def("automation_conditions")
    assert sensor.default_status == DefaultSensorStatus.RUNNING
    graph = on.resolve_asset_graph()
    assert all(graph.get(k).automation_condition is not None for k in graph.get_all_asset_keys()
               if k.to_user_string() != "raw_crawl")
    monkeypatch.setenv("LLM_ASSETS_AUTOMATION", "off")
    off = build_definitions()
    assert "automation_conditions" not in {s.name for s in off.sensors}
    graph = off.resolve_asset_graph()
    assert all(graph.get(k).automation_condition is None for k in graph.get_all_asset_keys())
    # registering WARC files starts no run, so the sensor runs either way
    assert off.resolve_sensor_def("new_warc_files").default_status == DefaultSensorStatus.RUNNING


def _tick(sensor, instance, crawl):
    from dagster import build_sensor_context

    with build_sensor_context(instance=instance, resources={"crawl": crawl}) as context:
        return sensor(context)


def test_new_warc_files_registers_a_fresh_instance_without_building_it(smoke_crawl, tmp_path, monkeypatch):
    from dagster import DagsterInstance

    from llm_assets.defs import build_definitions
    from llm_assets.defs.resources import CrawlSource

    monkeypatch.delenv("LLM_ASSETS_AUTOMATION", raising=False)
    sensor = build_definitions().resolve_sensor_def("new_warc_files")
    crawl = CrawlSource(sources=[str(smoke_crawl)], profile="smoke", data_root=str(tmp_path))
    keys = sorted(crawl.resolve())
    with DagsterInstance.ephemeral() as instance:
        first = _tick(sensor, instance, crawl)
        # the first build is the user's one action: the sensor launches nothing that it would build twice
        assert not first.run_requests and "fresh instance" in first.skip_reason.skip_message
        assert [r.partition_keys for r in first.dynamic_partitions_requests] == [keys]
        instance.add_dynamic_partitions("warc_files", keys[:-1])  # one file appeared after the first build
        later = _tick(sensor, instance, crawl)
        assert [(r.partition_key, r.run_key) for r in later.run_requests] == [(keys[-1], f"warc:{keys[-1]}")]
        instance.add_dynamic_partitions("warc_files", keys[-1:])
        assert not _tick(sensor, instance, crawl).run_requests


def test_instance_settings_keep_the_first_visit_quiet():
    from dagster._core.instance.config import dagster_instance_config

    config, _ = dagster_instance_config(str(REPO / "dagster_home"))
    assert config["telemetry"] == {"enabled": False}
    assert config["nux"] == {"enabled": False}


def test_a_check_that_only_warns_in_a_profile_is_not_labelled_blocking_there(monkeypatch):
    from llm_assets.defs import training

    monkeypatch.setenv("LLM_ASSETS_PROFILE", "smoke")
    blocks, label = training._heldout_label()
    assert not blocks and label.startswith("A warning in the smoke profile")
    monkeypatch.setenv("LLM_ASSETS_PROFILE", "default")
    assert training._heldout_label() == (True, "Blocking")
    spec = defs.resolve_asset_graph().get_check_spec(
        next(k for k in defs.resolve_asset_graph().asset_check_keys if k.name == "beats_base_on_heldout"))
    assert spec.blocking == training.HELDOUT_BLOCKS and spec.description.startswith(training.HELDOUT_LABEL)
