"""What a new user does in the web UI, in headless Chromium driven by Playwright: a fresh instance (automation on,
the smoke profile), one action that builds everything once, the checks and the model card in the browser, then
the global stages following a rematerialized crawl partition by themselves. Everything is read back through
the webserver's GraphQL API, the same data the UI shows."""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from pathlib import Path

import pytest
from test_webserver import LOCATION, REPOSITORY, dagster_dev, graphql

from llm_assets.definitions import defs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium with apt-get): the browser tests "
                "are skipped", allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402 - only where a browser exists

# a system Chromium that reaches nothing but the webserver; Playwright never downloads a browser
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
BUILD_TIMEOUT_S = 1800  # the smoke graph takes minutes; a shared CI machine may be several times slower
AUTOMATION_TICK_S = 30  # the automation_conditions sensor's interval
GRAPH = defs.resolve_asset_graph()
PARTITIONED = sorted(k.to_user_string() for k in GRAPH.get_all_asset_keys() if GRAPH.get(k).partitions_def)
GLOBAL = sorted(k.to_user_string() for k in GRAPH.get_all_asset_keys() if not GRAPH.get(k).partitions_def)
DOWNSTREAM_GLOBAL = sorted(set(GLOBAL) - {"benchmark_suite"})  # everything that reads the crawl


def wait_for(what: str, probe, timeout: float, every: float = 3.0):
    """Poll `probe()` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def registered_partitions(url: str) -> list[str]:
    data = graphql(url, """{ assetNodeOrError(assetKey: {path: ["raw_crawl"]}) { ... on AssetNode {
        partitionKeys } } }""")
    return data["assetNodeOrError"]["partitionKeys"]


def backfills(url: str) -> list[dict]:
    data = graphql(url, """{ partitionBackfillsOrError { ... on PartitionBackfills { results { id status } } } }""")
    return data["partitionBackfillsOrError"]["results"]


def runs(url: str) -> list[dict]:
    data = graphql(url, """{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }""")
    return [{**r, "tags": {t["key"]: t["value"] for t in r["tags"]}} for r in data["runsOrError"]["results"]]


def materializations(url: str, asset: str) -> list[dict]:
    data = graphql(url, """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
        assetMaterializations(limit: 1000) { partition runId } } } }""", {"key": {"path": [asset]}})
    return data["assetNodeOrError"]["assetMaterializations"]


def per_partition(url: str, asset: str) -> Counter:
    return Counter(m["partition"] for m in materializations(url, asset))


def check_statuses(url: str, asset: str) -> dict[str, str | None]:
    data = graphql(url, """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
        assetChecksOrError { ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } }
        } } }""", {"key": {"path": [asset]}})
    checks = data["assetNodeOrError"]["assetChecksOrError"]["checks"]
    return {c["name"]: (c["executionForLatestMaterialization"] or {}).get("status") for c in checks}


def save(page, name: str) -> None:
    artifacts = os.environ.get("LLM_ASSETS_TEST_ARTIFACTS")
    if artifacts:
        page.screenshot(path=str(Path(artifacts) / f"ui_{name}.png"))


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """`dagster dev` on a fresh instance with automation on (the default), once the sensor registered the
    smoke crawl's WARC files."""
    with dagster_dev(tmp_path_factory.mktemp("ui_browser"), LLM_ASSETS_AUTOMATION="") as (url, _home):
        wait_for("the new_warc_files sensor to register the crawl", lambda: registered_partitions(url), 300)
        yield url


@pytest.fixture(scope="module")
def page(ui, tmp_path_factory):
    with sync_playwright() as driver:
        browser = driver.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium_profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1600, "height": 1000})
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_fresh_instance_is_quiet_and_starts_no_work(ui, page):
    assert graphql(ui, "{ shouldShowNux }")["shouldShowNux"] is False
    page.goto(f"{ui}/asset-groups")
    page.get_by_role("button", name="Materialize all").wait_for(timeout=120_000)
    page.wait_for_timeout(3000)  # the pop-up would open after the first queries
    assert page.get_by_text("Join the Dagster community").count() == 0
    save(page, "1_graph")
    # the sensor registered the files and launched nothing: the first build is the user's
    assert sorted(registered_partitions(ui)) == ["crawl-00000", "crawl-00001", "crawl-00002"]
    assert runs(ui) == []


def test_one_action_builds_every_asset_once(ui, page):
    page.goto(f"{ui}/asset-groups")
    page.get_by_role("button", name="Materialize all").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("All", exact=True).click()
    dialog.get_by_text("3 partitions").wait_for()
    save(page, "2_build_action")
    started = time.time()
    dialog.get_by_role("button", name="Launch backfill").click()
    backfill = wait_for("the backfill to be created", lambda: backfills(ui), 120, every=1)[0]
    done = wait_for("the backfill to finish", lambda: [b for b in backfills(ui) if b["status"] != "REQUESTED"],
                    BUILD_TIMEOUT_S, every=5)[0]
    print(f"\nUI build (Materialize all, backfill {backfill['id']}): {time.time() - started:.1f}s")
    assert done["status"] == "COMPLETED_SUCCESS", done
    page.goto(f"{ui}/runs")
    page.get_by_text("Success").first.wait_for()
    save(page, "3_finished_runs")

    # automation saw the backfill's materializations as handled: two ticks later, no other run started
    time.sleep(2 * AUTOMATION_TICK_S + 5)
    all_runs = runs(ui)
    assert {r["tags"].get("dagster/backfill") for r in all_runs} == {backfill["id"]}, all_runs
    partitions = sorted(registered_partitions(ui))
    # one run per crawl partition, one for benchmark_suite (a root, so in the backfill's first step), one for the rest
    assert len(all_runs) == len(partitions) + 2, all_runs
    for asset in PARTITIONED:
        assert per_partition(ui, asset) == Counter(partitions), asset
    for asset in GLOBAL:
        assert per_partition(ui, asset) == Counter([None]), asset
    for asset in PARTITIONED + GLOBAL:
        statuses = check_statuses(ui, asset)
        assert statuses and all(s in ("SUCCEEDED", "FAILED") for s in statuses.values()), (asset, statuses)


def test_checks_and_model_card_show_in_the_browser(ui, page):
    page.goto(f"{ui}/assets/training_mixture?view=checks")
    for name in ("splits_nonempty", "split_by_document", "decontaminated"):
        page.get_by_text(name).first.wait_for(timeout=60_000)
    save(page, "4_checks")

    page.goto(f"{ui}/assets/model_card")
    page.get_by_text("[Show Markdown]").first.click()
    dialog = page.get_by_role("dialog")
    title = dialog.get_by_role("heading", name="Model card: llm_assets-smoke")
    title.wait_for()
    assert title.bounding_box()["y"] >= dialog.bounding_box()["y"], "the card did not open at its title"
    images = dialog.locator("img")
    assert images.count() == 2  # the training curves and the benchmark scores
    for i in range(images.count()):
        images.nth(i).scroll_into_view_if_needed()
        loaded = page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=images.nth(i).element_handle())
        assert loaded
        box, frame = images.nth(i).bounding_box(), dialog.bounding_box()
        assert box["x"] + box["width"] <= frame["x"] + frame["width"] + 1, "the image is wider than the dialog"
    lineage = dialog.locator("table").last.inner_text()
    assert "raw_crawl" in lineage and "benchmark_scores" in lineage
    save(page, "5_model_card")
    page.keyboard.press("Escape")
    page.goto(f"{ui}/asset-groups")
    page.get_by_role("button", name="Materialize all").wait_for()
    page.wait_for_timeout(3000)
    save(page, "6_graph_after_build")


def test_global_stages_follow_a_rematerialized_crawl_partition(ui):
    before = {asset: len(materializations(ui, asset)) for asset in DOWNSTREAM_GLOBAL}
    assert set(before.values()) == {1}, before  # the build above
    repo = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    # what the weekly schedule or a new WARC file starts: the crawl-side job for one partition
    launched = graphql(ui, """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
                       {"params": {"selector": {**repo, "jobName": "crawl_partition_job"},
                                   "executionMetadata": {"tags": [{"key": "dagster/partition",
                                                                   "value": "crawl-00001"}]}}})
    assert launched["launchRun"]["__typename"] == "LaunchRunSuccess", launched
    wait_for("the global stages to follow", lambda: all(
        len(materializations(ui, a)) == 2 for a in DOWNSTREAM_GLOBAL), BUILD_TIMEOUT_S, every=10)
    automated = [r for r in runs(ui) if r["tags"].get("dagster/sensor_name") == "automation_conditions"
                 or r["tags"].get("dagster/from_automation_condition") == "true"]
    assert automated and all(r["status"] == "SUCCESS" for r in automated), automated
    assert per_partition(ui, "raw_crawl") == Counter({"crawl-00000": 1, "crawl-00001": 2, "crawl-00002": 1})
    assert len(materializations(ui, "benchmark_suite")) == 1  # it reads no crawl: nothing to follow
    for asset in DOWNSTREAM_GLOBAL:
        data = graphql(ui, """query($key: AssetKeyInput!) { assetConditionEvaluationRecordsOrError(
            assetKey: $key, limit: 100) { ... on AssetConditionEvaluationRecords { records { numRequested
            evaluationNodes { userLabel expandedLabel numTrue } } } } }""", {"key": {"path": [asset]}})
        records = data["assetConditionEvaluationRecordsOrError"]["records"]
        requested = [r for r in records if r["numRequested"]]
        assert len(requested) == 1, (asset, [r["numRequested"] for r in records])
        # why it ran, as the Automation page shows it: an input was updated (or requested in the same tick)
        why = {n["userLabel"] or " ".join(n["expandedLabel"]) for n in requested[0]["evaluationNodes"]
               if n["numTrue"]}
        assert any("updated" in label for label in why), (asset, why)
