"""The curation chain end to end on the smoke synthetic crawl, scored against its ground truth."""

from __future__ import annotations

import io
import shutil

import polars as pl
import pytest

from llm_assets.profiles import get_profile

pytest.importorskip("llm_assets.curation.extraction")
pytest.importorskip("llm_assets.curation.filtration")
synthetic = pytest.importorskip("llm_assets.synthetic.generate")

from llm_assets.curation.groundtruth import score_against_labels  # noqa: E402
from llm_assets.curation.pipeline import STAGES, curate  # noqa: E402
from llm_assets.lake import kept_path, part_files, removed_path  # noqa: E402


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    crawl = tmp_path_factory.mktemp("crawl")
    lake = tmp_path_factory.mktemp("lake")
    synthetic.generate_crawl(crawl, seed=0, size=get_profile("smoke").synthetic, profile_name="smoke")
    summaries = curate(sorted(str(p) for p in crawl.glob("crawl-*.warc.gz")), lake, "smoke",
                       [crawl / "benchmark.jsonl"])
    return crawl, lake, summaries


def test_every_stage_written(curated):
    crawl, lake, summaries = curated
    assert set(STAGES) <= set(summaries)
    # the crawl is detected as the synthetic one: its tuned settings and reference host apply
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


def test_a_crawl_without_text_pages_materializes_every_stage_empty(tmp_path):
    """Images, scripts and redirects only: every stage writes empty parts with reasons, nothing fails."""
    warcio = pytest.importorskip("warcio")
    from warcio.statusandheaders import StatusAndHeaders

    path = tmp_path / "assets.warc.gz"
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
