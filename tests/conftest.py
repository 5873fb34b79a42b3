"""Shared fixtures: the smoke-profile synthetic crawl, made once per test session."""

from __future__ import annotations

import shutil
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


@pytest.fixture
def dagster_home(tmp_path) -> Path:
    """A temporary Dagster instance with the project's dagster.yaml."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return home
