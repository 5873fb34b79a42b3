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
