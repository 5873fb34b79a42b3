"""`python -m llm_assets build --profile smoke` materializes the whole graph in a real Dagster instance."""

from __future__ import annotations

import os

from conftest import run_build
from dagster import AssetKey, DagsterInstance

from llm_assets.definitions import defs


def test_build_smoke_materializes_every_asset(smoke_build, monkeypatch):
    proc = smoke_build.proc
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "build succeeded" in proc.stdout
    graph = defs.resolve_asset_graph()
    keys = sorted(graph.get_all_asset_keys())
    summary = proc.stdout[proc.stdout.index("asset "):]
    for key in keys:
        assert f"\n{key.to_user_string()} " in summary, f"no summary line for {key}"

    monkeypatch.setenv("DAGSTER_HOME", str(smoke_build.home))  # dagster.yaml keeps storage under it
    instance = DagsterInstance.get()
    try:
        for key in keys:
            record = instance.get_latest_materialization_event(key)
            assert record is not None, f"{key} was not materialized"
            meta = record.asset_materialization.metadata
            assert "path" in meta, f"{key} materialization has no path"
            assert os.path.exists(str(meta["path"].value)), meta["path"]
        assert sorted(instance.get_dynamic_partitions("warc_files")) == [
            "crawl-00000", "crawl-00001", "crawl-00002"]
        check_keys = list(graph.asset_check_keys)
        executions = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
        missing = [k.to_user_string() for k in check_keys if k not in executions]
        assert not missing, f"checks never ran: {missing}"
        blocking = {k for k in check_keys if graph.get_check_spec(k).blocking}
        failed = {k.to_user_string(): r.status.value for k, r in executions.items()
                  if k in blocking and r.status.value != "SUCCEEDED"}
        assert not failed, failed
        raw = instance.get_latest_materialization_event(AssetKey("raw_crawl")).asset_materialization
        assert raw.metadata["dagster/row_count"].value > 0
        runs = instance.get_runs()
        assert len(runs) == 4  # one per crawl partition, then the global stages
        assert all(r.tags.get("llm_assets/launched_by") == "cli-build" for r in runs)
    finally:
        instance.dispose()


def test_build_rejects_unknown_selection(dagster_home, tmp_path):
    proc = run_build(dagster_home, tmp_path / "data", "--select", "key:no_such_asset")
    assert proc.returncode != 0
    assert "no_such_asset" in (proc.stdout + proc.stderr)


def test_build_select_and_crawl_flags(dagster_home, tmp_path, smoke_crawl):
    proc = run_build(dagster_home, tmp_path / "data", "--crawl", str(smoke_crawl), "--select",
                     "key:raw_crawl", "--workers", "1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "raw_crawl" in proc.stdout and "extracted_documents" not in proc.stdout.split("asset ")[-1]
