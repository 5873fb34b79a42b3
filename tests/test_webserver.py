"""The real web UI: `dagster dev` on a free localhost port, driven through its GraphQL API and a browser."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

LOCATION = "llm_assets"
REPOSITORY = "__repository__"
PARTITION = "crawl-00000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        payload = json.load(resp)
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


@contextlib.contextmanager
def dagster_dev(tmp: Path, **env_vars: str):
    """`dagster dev` (webserver and daemon) on a fresh instance in `tmp` (the project's dagster.yaml, a lake in
    `tmp`, the smoke profile), bound to 127.0.0.1 on a free port; yields (url, DAGSTER_HOME). `env_vars` add
    to the environment; a value of "" removes the variable."""
    home = tmp / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "LLM_ASSETS_DATA_DIR": str(tmp / "lake"),
           "LLM_ASSETS_PROFILE": "smoke", **env_vars}
    env = {k: v for k, v in env.items() if v != ""}
    dagster = Path(sys.executable).with_name("dagster")
    log_path = tmp / "dagster_dev.log"
    log = log_path.open("w")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen([str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            try:
                data = graphql(url, "{ workspaceOrError { __typename } }")
                if data and _location_loaded(url):
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("dagster dev did not come up:\n" + log_path.read_text()[-3000:])
            time.sleep(2)
        yield url, home
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    with dagster_dev(tmp_path_factory.mktemp("ui"), LLM_ASSETS_AUTOMATION="off") as (url, _home):
        yield url


def _location_loaded(url: str) -> bool:
    data = graphql(url, """{ workspaceOrError { ... on Workspace { locationEntries {
        name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }""")
    entries = data["workspaceOrError"]["locationEntries"]
    for entry in entries:
        err = entry["locationOrLoadError"]
        if err and err["__typename"] == "PythonError":
            raise RuntimeError(f"code location failed to load: {err['message']}")
    return any(e["loadStatus"] == "LOADED" and e["locationOrLoadError"] for e in entries)


def test_graph_has_every_asset_and_its_edges(webserver):
    data = graphql(webserver, """{ assetNodes { assetKey { path } dependencyKeys { path } groupName
        description kinds owners { ... on TeamAssetOwner { team } } } }""")
    nodes = {n["assetKey"]["path"][-1]: n for n in data["assetNodes"]}
    from llm_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    assert set(nodes) == {k.path[-1] for k in graph.get_all_asset_keys()}
    for key in graph.get_all_asset_keys():
        want = {p.path[-1] for p in graph.get(key).parent_keys}
        got = {d["path"][-1] for d in nodes[key.path[-1]]["dependencyKeys"]}
        assert got == want, key
        node = nodes[key.path[-1]]
        assert node["groupName"] and node["description"] and node["kinds"] and node["owners"]
    assert {d["path"][-1] for d in nodes["extracted_documents"]["dependencyKeys"]} == {"raw_crawl"}


def test_launch_crawl_side_materialization_and_read_results(webserver):
    repo = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    added = graphql(webserver, """mutation($repo: RepositorySelector!, $key: String!) {
        addDynamicPartition(repositorySelector: $repo, partitionsDefName: "warc_files", partitionKey: $key)
        { __typename } }""", {"repo": repo, "key": PARTITION})
    # the new_warc_files sensor registers the crawl's files too (it launches nothing with automation off)
    assert added["addDynamicPartition"]["__typename"] in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError")
    launched = graphql(webserver, """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
                       {"params": {"selector": {**repo, "jobName": "crawl_partition_job"},
                                   "executionMetadata": {"tags": [{"key": "dagster/partition",
                                                                   "value": PARTITION}]}}})
    assert launched["launchRun"]["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["launchRun"]["run"]["runId"]
    deadline = time.time() + 600
    status = None
    while time.time() < deadline:
        status = graphql(webserver, """query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }""",
                         {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(3)
    assert status == "SUCCESS"
    for key in ("raw_crawl", "extracted_documents", "filtered_documents"):
        data = graphql(webserver, """query($key: AssetKeyInput!, $part: String!) {
            assetNodeOrError(assetKey: $key) { ... on AssetNode {
              assetMaterializations(partitions: [$part]) { runId metadataEntries { label } }
              assetChecksOrError { ... on AssetChecks { checks { name
                executionForLatestMaterialization { status runId } } } } } } }""",
                       {"key": {"path": [key]}, "part": PARTITION})
        node = data["assetNodeOrError"]
        mats = [m for m in node["assetMaterializations"] if m["runId"] == run_id]
        assert mats, f"{key}: no materialization from run {run_id}"
        assert "path" in {e["label"] for e in mats[0]["metadataEntries"]}
        checks = node["assetChecksOrError"]["checks"]
        assert checks, f"{key} has no checks"
        for c in checks:
            execution = c["executionForLatestMaterialization"]
            assert execution and execution["runId"] == run_id, (key, c)
            assert execution["status"] == "SUCCEEDED", (key, c)


def test_asset_graph_page_renders_in_chromium(webserver, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian chromium is not installed (.ci/run installs it)")
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1600,1000",
            "--virtual-time-budget=20000"]
    page = f"{webserver}/locations/{LOCATION}/asset-groups/curation"
    dom = subprocess.run([*args, "--dump-dom", page], capture_output=True, text=True, timeout=120).stdout
    shot = tmp_path / "asset_graph.png"
    subprocess.run([*args, f"--screenshot={shot}", page], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000
    # one node per curation asset (long names are shortened with an ellipsis when zoomed out)
    assert dom.count("AssetNode_assetName") >= 6, "asset nodes did not render"
    for name in ("filtered_documents", "quality_classifier", "quality_documents", "training_mixture"):
        assert name in dom, f"asset node {name} did not render"
    artifacts = os.environ.get("LLM_ASSETS_TEST_ARTIFACTS")
    if artifacts:
        shutil.copy(shot, Path(artifacts) / "asset_graph.png")
