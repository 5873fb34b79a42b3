"""The curation chain end to end on the smoke synthetic crawl, scored against its ground truth."""

from __future__ import annotations

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
