"""The curation chain end to end on the smoke synthetic crawl, scored against its ground truth."""

from __future__ import annotations

import io
import shutil

import polars as pl
import pytest

from llm_assets.profiles import get_profile

pytest.importorskip("llm_assets.curation.extraction")
pytest.importorskip("llm_assets.curation.filtration")
synthetic = pytest.importorskip("llm_assets.synthetic.crawl_folder")

from llm_assets.curation.groundtruth import score_against_labels  # noqa: E402
from llm_assets.curation.pipeline import STAGE_INPUTS, STAGES, curate  # noqa: E402
from llm_assets.lake import kept_path, part_files, removed_path  # noqa: E402


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    crawl = tmp_path_factory.mktemp("crawl")
    lake = tmp_path_factory.mktemp("lake")
    synthetic.generate_crawl(crawl, seed=0, size=get_profile("smoke").synthetic, profile_name="smoke")
    summaries = curate(sorted(str(p) for p in crawl.glob("crawl-*.warc.gz")), lake, "smoke",
                       [crawl / "benchmark.jsonl"], synthetic=True)
    return crawl, lake, summaries


def test_every_stage_written(curated):
    crawl, lake, summaries = curated
    assert set(STAGES) <= set(summaries)
    # the crawl is the synthetic one: its tuned settings and reference host apply
    assert summaries["curation_settings"] == "synthetic-web"
    assert not summaries["quality_classifier"]["skipped"]
    parts = [p.stem for p in part_files(lake, "raw_crawl")]
    assert len(parts) == 3
    # every stage, the global ones too, writes one kept and one removed part per WARC file
    for stage in ("extracted_documents", "filtered_documents", "deduplicated_documents", "quality_documents",
                  "training_mixture"):
        for part in parts:
            assert kept_path(lake, stage, part).exists() and removed_path(lake, stage, part).exists(), stage
    assert not list(lake.glob(".quality-*")), "the quality stage's scratch folder was left behind"
    assert (lake / "quality_classifier" / "quality_model.safetensors").exists()
    assert (lake / "quality_classifier" / "metrics.json").exists()
    mixture = pl.read_parquet(part_files(lake, "training_mixture"))
    assert {"text", "split", "warc_record_id", "url", "host", "copy"} <= set(mixture.columns)
    assert summaries["training_mixture"]["kept"] == mixture.height > 0


def test_survival_goals_and_no_pii_against_labels(curated):
    crawl, lake, _ = curated
    scores = score_against_labels(lake, crawl / "labels.parquet")
    survival = scores["survival"]
    assert survival["goals"]["encyclopedia"]["share"] >= 0.9, survival["sites"]
    for site in ("spam", "junk", "adult"):
        assert survival["goals"][site]["share"] <= 0.02, (site, survival["sites"][site])
    assert scores["pii"]["leaked_strings"] == 0, scores["pii"]["leaked_examples"]
    assert scores["filters"]["duplicate"]["recall"] >= 0.8
    assert scores["filters"]["contaminated"]["excluded"] == 1.0


def test_a_real_crawl_gets_published_settings_and_the_quality_model_is_skipped_without_reference(
        curated, tmp_path):
    """The same WARC files outside their synthetic folder are an ordinary crawl: published thresholds, no
    reference host, so the model is skipped and only the heuristics filter; with reference files it trains."""
    crawl, lake, _ = curated
    real = tmp_path / "real"
    real.mkdir()
    for warc in crawl.glob("crawl-*.warc.gz"):
        shutil.copy(warc, real / warc.name)
    summaries = curate([str(real)], tmp_path / "lake", "smoke")
    assert summaries["curation_settings"] == "published"
    model = summaries["quality_classifier"]
    assert model["skipped"] and model["skip_reason"].startswith("no reference text")
    assert not (tmp_path / "lake" / "quality_classifier" / "quality_model.safetensors").exists()
    quality = summaries["quality_documents"]
    assert "quality_model" not in quality["removed_by_reason"] and quality["kept"] > 0
    # published Gopher/C4 thresholds remove the synthetic encyclopedia's short stubs that SYNTHETIC_WEB keeps
    assert quality["removed_by_reason"].get("gopher_quality:too_few_words", 0) > 0
    assert summaries["training_mixture"]["kept"] > 0 and summaries["training_mixture"]["validation_documents"] > 0

    # reference text from a file (here the synthetic encyclopedia's extracted pages, as JSONL)
    pages = pl.read_parquet(part_files(lake, "extracted_documents")).filter(pl.col("host") == "www.wikiverse.org")
    reference = tmp_path / "reference.jsonl"
    pages.select("text").write_ndjson(reference)
    summaries = curate([str(real)], tmp_path / "lake", "smoke", reference_files=[reference])
    model = summaries["quality_classifier"]
    assert not model["skipped"] and model["reference_from_files"] == model["reference_documents"] > 0
    assert model["reference_files"] == [str(reference)]
    assert (tmp_path / "lake" / "quality_classifier" / "quality_model.safetensors").exists()


def _assets_only_warc(path):
    """A real WARC (written by warcio) of an image, a script and a redirect: no text page at all."""
    warcio = pytest.importorskip("warcio")
    from warcio.statusandheaders import StatusAndHeaders

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        writer = warcio.WARCWriter(handle, gzip=True)
        for url, content_type, status, body in [
                ("https://img.example/logo.png", "image/png", "200 OK", b"\x89PNG\r\n\x1a\n" + bytes(64)),
                ("https://img.example/app.js", "application/javascript", "200 OK", b"var x = 1;"),
                ("https://img.example/old", "text/html", "301 Moved Permanently", b"")]:
            headers = StatusAndHeaders(status, [("Content-Type", content_type),
                                                ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body),
                                                          http_headers=headers))
    return path


def test_a_crawl_without_text_pages_materializes_every_stage_empty(tmp_path):
    """Images, scripts and redirects only: every stage writes empty parts with reasons, nothing fails."""
    path = _assets_only_warc(tmp_path / "assets.warc.gz")
    summaries = curate([str(path)], tmp_path / "lake", "smoke")
    assert summaries["raw_crawl"]["kept"] == 3 and summaries["extracted_documents"]["kept"] == 0
    assert sum(summaries["extracted_documents"]["removed_by_reason"].values()) == 3
    for stage in STAGES[2:]:
        assert summaries[stage]["kept"] == 0, stage
    assert summaries["quality_classifier"]["skipped"]
    assert summaries["training_mixture"]["train_documents"] == 0
    for stage in ("deduplicated_documents", "quality_documents", "training_mixture"):
        (part,) = part_files(tmp_path / "lake", stage)
        assert pl.read_parquet(part).height == 0 and "text" in pl.read_parquet(part).columns


def _materialize_curation(sources: list[str], root) -> dict:
    """raw_crawl and the curation assets through Dagster, as `build` runs them; checks by (asset, name)."""
    from dagster import DagsterInstance, materialize

    from llm_assets.defs.crawl import raw_crawl
    from llm_assets.defs.curation import GLOBAL, PARTITIONED
    from llm_assets.defs.resources import CrawlSource, EngineResource, LakeResource

    resources = {"lake": LakeResource(root=str(root), profile="smoke"),
                 "crawl": CrawlSource(sources=sources, profile="smoke", data_root=str(root)),
                 "engine": EngineResource()}
    instance = DagsterInstance.ephemeral()
    keys = list(resources["crawl"].resolve())
    instance.add_dynamic_partitions("warc_files", keys)
    results = [materialize([raw_crawl, *PARTITIONED], partition_key=key, resources=resources, instance=instance,
                           raise_on_error=False) for key in keys]
    results.append(materialize(GLOBAL, resources=resources, instance=instance, raise_on_error=False))
    checks, metadata = {}, {}
    for result in results:
        for failure in result.get_step_failure_events():  # only a blocking check may stop a step
            assert failure.step_failure_data.error.cls_name == "DagsterAssetCheckFailedError", failure
        for evaluation in result.get_asset_check_evaluations():
            key = (evaluation.asset_key.to_user_string(), evaluation.check_name)
            if evaluation.passed and key in checks:  # per partition: keep a failure over a pass
                continue
            checks[key] = evaluation
        for event in result.get_asset_materialization_events():
            mat = event.step_materialization_data.materialization
            metadata.setdefault(mat.asset_key.to_user_string(), []).append(
                {k: v.value for k, v in mat.metadata.items()})
    return {"checks": checks, "metadata": metadata, "success": all(r.success for r in results)}


def test_dagster_assets_on_a_real_crawl_with_an_empty_partition(curated, tmp_path):
    """A non-synthetic crawl with one file of text pages and one of images only: every asset materializes;
    published settings; the skipped quality model and the image-only file are warnings, not failures."""
    crawl, _, _ = curated
    real = tmp_path / "real"
    real.mkdir()
    shutil.copy(crawl / "crawl-00000.warc.gz", real / "crawl-00000.warc.gz")
    _assets_only_warc(real / "assets.warc.gz")
    run = _materialize_curation([str(real)], tmp_path / "lake")
    checks, metadata = run["checks"], run["metadata"]
    assert run["success"]
    for stage in ("extracted_documents", "filtered_documents", "deduplicated_documents", "quality_classifier",
                  "quality_documents", "training_mixture"):
        assert {m["curation_settings"] for m in metadata[stage]} == {"published"}, stage
    images = [m for m in metadata["extracted_documents"] if m["dagster/row_count"] == 0]
    assert len(images) == 1
    failed = {key: c for key, c in checks.items() if not c.passed}
    assert set(failed) == {("extracted_documents", "has_documents"), ("quality_classifier", "reference_text")}
    assert all(c.severity.value == "WARN" for c in failed.values())
    assert "has no text page" in failed[("extracted_documents", "has_documents")].description
    assert "no reference text" in failed[("quality_classifier", "reference_text")].description
    assert metadata["quality_classifier"][0]["skipped"].startswith("quality model skipped: no reference text")
    assert metadata["quality_documents"][0]["dagster/row_count"] > 0
    assert checks[("training_mixture", "splits_nonempty")].passed


def test_dagster_assets_on_a_crawl_without_text_pages(tmp_path):
    """Every asset materializes empty; the one failure is the mixture's gate, in one sentence."""
    _assets_only_warc(tmp_path / "crawl" / "assets.warc.gz")
    run = _materialize_curation([str(tmp_path / "crawl")], tmp_path / "lake")
    assert not run["success"]  # the blocking gate stops the run before the tokenizer
    failed = {key: c for key, c in run["checks"].items() if not c.passed}
    gate = failed.pop(("training_mixture", "splits_nonempty"))
    assert gate.severity.value == "ERROR"
    assert gate.description.startswith("training_mixture has 0 train documents: nothing to train the tokenizer on")
    assert all(c.severity.value == "WARN" for c in failed.values()), failed
    assert run["metadata"]["training_mixture"][0]["dagster/row_count"] == 0


def test_the_assets_and_curate_share_one_stage_table():
    """The curation assets take their inputs from `STAGE_INPUTS`, and its order is the asset graph's."""
    from dagster import AssetKey

    from llm_assets.defs import build_definitions

    graph = build_definitions().resolve_asset_graph()
    for stage, inputs in STAGE_INPUTS.items():
        assert {k.to_user_string() for k in graph.get(AssetKey(stage)).parent_keys} == set(inputs), stage
    order = [k.to_user_string() for k in graph.toposorted_asset_keys if k.to_user_string() in STAGE_INPUTS]
    assert order == list(STAGES)
