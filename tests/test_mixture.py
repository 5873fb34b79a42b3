"""Training mixture: decontamination by 13-grams, deterministic weights, a document-level split."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from llm_assets.curation.mixture import build_mixture, build_mixture_parts, read_benchmark_items, site_of_host
from llm_assets.profiles import CurationConfig

QUERY = "Which city was the chemist Marta Oduya born in before she moved to the coast to study"


def _benchmark(tmp_path: Path) -> Path:
    path = tmp_path / "bench.jsonl"
    items = [{"query": QUERY, "choices": ["Velmora", "Tarsk", "Quillon", "Brask"], "gold": 0},
             {"query": "Who founded Brightwell Dynamics?", "choices": ["Ada Fenn", "Ole Brun"], "gold": 1}]
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    return path


def _docs(n: int, hosts: list[str] | None = None) -> pl.DataFrame:
    return pl.DataFrame({
        "warc_record_id": [f"<urn:uuid:{i:06d}>" for i in range(n)],
        "url": [f"https://h/{i}" for i in range(n)],
        "host": hosts or ["www.wikiverse.org"] * n,
        "text": [f"Document number {i} talks about the weather and the harvest in the valley." for i in range(n)],
    })


def test_site_names():
    assert site_of_host("www.wikiverse.org") == "wikiverse"
    assert site_of_host("127.0.0.1") == "127.0.0.1" and site_of_host("127.0.0.1:8080") == "127.0.0.1"
    assert site_of_host("[::1]:8080") == "::1" and site_of_host("localhost") == "localhost"
    assert site_of_host("forum.example.com") == "example"
    assert site_of_host("news.bbc.co.uk") == "bbc"
    assert site_of_host("www.wikiverse.org", {"www.wikiverse.org": "encyclopedia"}) == "encyclopedia"


def test_planted_13gram_is_removed_and_near_misses_stay(tmp_path):
    words = QUERY.split()
    planted = "Forum post: " + " ".join(words[2:15]).upper() + "!!! what do you think?"   # 13 words, any case
    near_miss = "Forum post: " + " ".join(words[2:14]) + " and other things"             # only 12 in a row
    whole_short = "Quiz: who founded brightwell dynamics? Ole Brun, of course."          # short item, whole
    docs = _docs(4).with_columns(pl.Series("text", [planted, near_miss, whole_short, "A clean page."]))
    kept, removed = build_mixture(docs, CurationConfig(validation_fraction=0.0), [_benchmark(tmp_path)])
    assert sorted(removed.filter(pl.col("reason") == "contaminated")["warc_record_id"]) == [
        "<urn:uuid:000000>", "<urn:uuid:000002>"]
    assert set(kept["warc_record_id"]) == {"<urn:uuid:000001>", "<urn:uuid:000003>"}


def test_weights_and_split_are_deterministic_and_by_document(tmp_path):
    hosts = ["www.wikiverse.org"] * 300 + ["talk.forumhub.net"] * 300 + ["shop.spamzone.biz"] * 300
    docs = _docs(900, hosts)
    cfg = CurationConfig(source_weights={"wikiverse": 2.5, "forumhub": 0.5, "spamzone": 0.0},
                         validation_fraction=0.1)
    kept, removed = build_mixture(docs, cfg, [])
    again, _ = build_mixture(docs.reverse(), cfg, [])
    assert kept.sort("warc_record_id", "copy").equals(again.sort("warc_record_id", "copy"))
    assert set(kept.columns) >= {"text", "split", "warc_record_id", "url", "host", "copy"}
    # every copy of a document is on one side of the split
    assert kept.group_by("warc_record_id").agg(pl.col("split").n_unique())["split"].max() == 1
    val_share = (kept.filter(pl.col("split") == "validation")["warc_record_id"].n_unique()
                 / kept["warc_record_id"].n_unique())
    assert 0.05 < val_share < 0.16
    train = kept.filter(pl.col("split") == "train")
    copies = train.group_by("site").agg(pl.len().alias("rows"), pl.col("warc_record_id").n_unique().alias("docs"))
    per_site = {r["site"]: r for r in copies.iter_rows(named=True)}
    assert 2.3 < per_site["wikiverse"]["rows"] / per_site["wikiverse"]["docs"] < 2.7
    assert per_site["forumhub"]["rows"] == per_site["forumhub"]["docs"]
    assert 0.35 < per_site["forumhub"]["docs"] / 300 < 0.65
    assert "spamzone" not in per_site
    assert kept.filter(pl.col("split") == "validation")["copy"].max() == 0
    assert set(removed["reason"]) == {"downsampled"}
    assert removed.height == 900 - kept["warc_record_id"].n_unique()


def test_bad_benchmark_file_is_named(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"query": "fine", "choices": ["a", "b"], "gold": 0}\n{not json}\n')
    with pytest.raises(ValueError, match="broken.jsonl:2"):
        read_benchmark_items([path])


def test_parts_give_the_same_mixture_as_one_frame(tmp_path):
    hosts = ["www.wikiverse.org"] * 40 + ["talk.forumhub.net"] * 40
    docs = _docs(80, hosts).with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("Forum: " + QUERY)).otherwise(pl.col("text")).alias("text"))
    cfg = CurationConfig(source_weights={"wikiverse": 1.5, "forumhub": 0.5}, validation_fraction=0.1)
    bench = [_benchmark(tmp_path)]
    kept_one, removed_one = build_mixture(docs, cfg, bench)
    parts = {f"p{i}": docs.slice(i * 20, 20) for i in range(4)}
    written = {}
    build_mixture_parts(list(parts), parts.__getitem__, lambda p, k, r: written.__setitem__(p, (k, r)), cfg, bench)
    kept = pl.concat([k for k, _ in written.values()])
    removed = pl.concat([r for _, r in written.values()])
    assert kept.sort("warc_record_id", "copy").equals(kept_one.sort("warc_record_id", "copy"))
    assert removed.sort("warc_record_id").equals(removed_one.sort("warc_record_id"))
    assert "contaminated" in set(removed["reason"])


def _mix_parts(parts: dict[str, pl.DataFrame], cfg: CurationConfig) -> tuple[dict, dict]:
    written: dict = {}
    counts = build_mixture_parts(list(parts), parts.__getitem__, lambda p, k, r: written.__setitem__(p, (k, r)), cfg)
    return counts, written


def test_empty_and_single_document_mixtures():
    cfg = CurationConfig(validation_fraction=0.05)
    counts, written = _mix_parts({"images": _docs(0), "none": pl.DataFrame()}, cfg)
    assert {k: v for k, v in counts.items() if k != "parts"} == {"train_documents": 0, "validation_documents": 0,
                                                            "moved_to_validation": None}
    assert counts["parts"] == {"images": (0, 0, {}), "none": (0, 0, {})}
    assert all(k.height == 0 and r.height == 0 for k, r in written.values())
    assert {"text", "split", "warc_record_id", "site", "copy"} <= set(written["images"][0].columns)
    counts, written = _mix_parts({"one": _docs(1)}, cfg)
    # one document cannot be on both sides: it trains, and validation stays empty
    assert counts["train_documents"] + counts["validation_documents"] == 1
    assert counts["moved_to_validation"] is None


def test_a_tiny_crawl_still_gets_one_validation_document():
    """With 5 % validation, a hash puts none of a few documents in validation; the lowest-hash one moves."""
    cfg = CurationConfig(validation_fraction=0.05)
    docs = _docs(6)
    kept, _ = build_mixture(docs, cfg)
    assert set(kept["split"]) == {"train"}  # what the hash alone gives
    parts = {"a": docs.head(3), "b": docs.tail(3)}
    counts, written = _mix_parts(parts, cfg)
    assert counts["train_documents"] == 5 and counts["validation_documents"] == 1
    mixed = pl.concat([k for k, _ in written.values()])
    validation = mixed.filter(pl.col("split") == "validation")
    assert validation["warc_record_id"].to_list() == [counts["moved_to_validation"]]
    assert validation["copy"].to_list() == [0]
    assert _mix_parts(parts, cfg)[0] == counts  # the same document every run
    assert _mix_parts(parts, CurationConfig(validation_fraction=0.0))[0]["validation_documents"] == 0
