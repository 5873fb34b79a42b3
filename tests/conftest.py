"""Shared fixtures: the smoke-profile synthetic crawl and one smoke build, each made once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from llm_assets import profiles

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke_profile() -> profiles.Profile:
    return profiles.get_profile("smoke")


@pytest.fixture(scope="session")
def smoke_crawl(tmp_path_factory, smoke_profile) -> Path:
    from llm_assets.synthetic import generate_crawl

    out = tmp_path_factory.mktemp("smoke_crawl")
    generate_crawl(out, 0, smoke_profile.synthetic, profile_name="smoke")
    return out


def make_dagster_home(folder: Path) -> Path:
    """A Dagster instance folder with the project's dagster.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", folder / "dagster.yaml")
    return folder


@pytest.fixture
def dagster_home(tmp_path) -> Path:
    return make_dagster_home(tmp_path / "dagster_home")


@dataclass
class Build:
    home: Path
    data_dir: Path
    proc: subprocess.CompletedProcess

    @property
    def lake(self) -> Path:
        return self.data_dir / "smoke"


def run_build(home: Path, data_dir: Path | str, *args: str, profile: str = "smoke",
              timeout: int = 1800, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m llm_assets build` into `data_dir` (a folder or an object-store URL); `env` adds variables."""
    env = {**os.environ, **(env or {}), "DAGSTER_HOME": str(home), "LLM_ASSETS_DATA_DIR": str(data_dir)}
    env.pop("LLM_ASSETS_PROFILE", None)
    return subprocess.run([sys.executable, "-m", "llm_assets", "build", "--profile", profile, *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def assert_every_check_ran_and_blocking_passed(instance, graph) -> None:
    """Every asset check of `graph` has an execution in `instance`, and every blocking one succeeded or failed
    only as a warning (a blocking check's WARN severity does not stop the build: the profile chose to warn)."""
    from dagster import AssetCheckSeverity

    check_keys = list(graph.asset_check_keys)
    executions = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
    missing = [k.to_user_string() for k in check_keys if k not in executions]
    assert not missing, f"checks never ran: {missing}"
    blocking = {k for k in check_keys if graph.get_check_spec(k).blocking}

    def warned(record) -> bool:
        event = record.event.dagster_event if record.event else None
        return event is not None and event.event_specific_data.severity == AssetCheckSeverity.WARN

    failed = {k.to_user_string(): r.status.value for k, r in executions.items()
              if k in blocking and r.status.value != "SUCCEEDED" and not warned(r)}
    assert not failed, failed


@pytest.fixture(scope="session")
def smoke_build(tmp_path_factory) -> Build:
    """`python -m llm_assets build --profile smoke` of the whole graph, in a temporary instance and lake."""
    tmp = tmp_path_factory.mktemp("smoke_build")
    home = make_dagster_home(tmp / "dagster_home")
    proc = run_build(home, tmp / "data")
    return Build(home, tmp / "data", proc)


# ---------------------------------------------------------------------------------------------- real crawls


@pytest.fixture(scope="session")
def real_site():
    """The documentation site of `tests/realweb.py` (real prose, see tests/data/backyard_sky.txt)."""
    import realweb

    return realweb.Site()


@pytest.fixture(scope="session")
def real_crawl(tmp_path_factory, real_site) -> dict[str, Path]:
    """Real WARC files of the site served on 127.0.0.1, in one folder: `{"warcio", "wget", "no_html"}`.

    `warcio`: warcio's capture_http around requests (chunked, gzip, redirects, 404, robots.txt, media);
    `wget`: GNU Wget's own --warc-file recording of the same site (absent where wget is not installed);
    `no_html`: images, a script, a stylesheet, a PDF and a redirect, not one HTML page.
    """
    import realweb

    return realweb.record_all(tmp_path_factory.mktemp("real_crawl"), real_site)


@pytest.fixture(scope="session")
def real_crawl_dir(real_crawl) -> Path:
    return real_crawl["warcio"].parent


@pytest.fixture
def real_wget_warc(real_crawl) -> Path:
    if "wget" not in real_crawl:
        pytest.skip("wget is not installed (apt-get install wget): no wget-recorded crawl")
    return real_crawl["wget"]
