"""`python -m llm_assets build --profile smoke` materializes the whole graph in a real Dagster instance."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, DagsterInstance

from llm_assets.definitions import defs

REPO = Path(__file__).resolve().parents[1]


def run_build(dagster_home, data_dir, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "LLM_ASSETS_DATA_DIR": str(data_dir)}
    env.pop("LLM_ASSETS_PROFILE", None)
    return subprocess.run([sys.executable, "-m", "llm_assets", "build", "--profile", "smoke", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)


def test_build_smoke_materializes_every_asset(dagster_home, tmp_path):
    proc = run_build(dagster_home, tmp_path / "lake")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "build succeeded" in proc.stdout
    keys = sorted(defs.resolve_asset_graph().get_all_asset_keys())
    for key in keys:
        assert key.to_user_string() in proc.stdout  # every asset has a summary line

    instance = DagsterInstance.from_config(str(dagster_home))
    try:
        for key in keys:
            record = instance.get_latest_materialization_event(key)
            assert record is not None, f"{key} was not materialized"
            meta = record.asset_materialization.metadata
            assert "path" in meta, f"{key} materialization has no path"
            assert os.path.exists(str(meta["path"].value))
        partitions = instance.get_dynamic_partitions("warc_files")
        assert len(partitions) == 3  # smoke crawl: three WARC files
        check_keys = list(defs.resolve_asset_graph().asset_check_keys)
        executions = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
        missing = [k.to_user_string() for k in check_keys if k not in executions]
        assert not missing, f"checks never ran: {missing}"
        statuses = {k.to_user_string(): r.status.value for k, r in executions.items()}
        assert all(s == "SUCCEEDED" for s in statuses.values()), statuses
        raw = instance.get_latest_materialization_event(AssetKey("raw_crawl")).asset_materialization
        assert raw.metadata["dagster/row_count"].value > 0
    finally:
        instance.dispose()


def test_build_rejects_unknown_selection(dagster_home, tmp_path):
    proc = run_build(dagster_home, tmp_path / "lake", "--select", "key:no_such_asset")
    assert proc.returncode != 0
    assert "no_such_asset" in (proc.stdout + proc.stderr)
