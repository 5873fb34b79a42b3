"""The Kubernetes deployment profile loads and validates: k8s step executor, Pipes pods with GPU requests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dagster_k8s")

REPO = Path(__file__).resolve().parents[1]


def test_kubernetes_definitions_validate(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "LLM_ASSETS_GPUS": "2", "LLM_ASSETS_NUM_NODES": "2",
           "LLM_ASSETS_STRATEGY": "fsdp", "LLM_ASSETS_DATA_DIR": "/lake"}
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run([str(dagster), "definitions", "validate", "-m", "llm_assets.deploy.kubernetes"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Validation successful" in proc.stdout + proc.stderr


def test_kubernetes_profile_settings(monkeypatch):
    monkeypatch.setenv("LLM_ASSETS_GPUS", "4")
    monkeypatch.setenv("LLM_ASSETS_NUM_NODES", "2")
    monkeypatch.setenv("LLM_ASSETS_STRATEGY", "fsdp")
    import importlib

    import llm_assets.deploy.kubernetes as k8s

    k8s = importlib.reload(k8s)
    resources = k8s.defs.resources
    launcher, trainer = resources["launcher"], resources["trainer"]
    assert launcher.backend == "kubernetes" and launcher.gpus == 4 and launcher.image
    assert trainer.runtime() == {"accelerator": "gpu", "devices": 4, "num_nodes": 2, "strategy": "fsdp"}
    job = k8s.defs.resolve_implicit_global_asset_job_def()
    assert job.executor_def.name == "k8s"
    asset_keys = {k.to_user_string() for k in k8s.defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"raw_crawl", "base_checkpoint", "model_card"} <= asset_keys
