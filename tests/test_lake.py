"""The lake's part files: listing, scanning parts with differing columns, pruning parts of earlier runs."""

from __future__ import annotations

import polars as pl

from llm_assets.lake import kept_path, part_files, prune_parts, removed_path, scan_parts, write_parquet


def test_parts_scan_and_prune(tmp_path):
    write_parquet(pl.DataFrame({"warc_record_id": ["a"], "x": [1]}), kept_path(tmp_path, "stage", "crawl-1"))
    write_parquet(pl.DataFrame({"warc_record_id": ["b"]}), kept_path(tmp_path, "stage", "crawl-0"))
    write_parquet(pl.DataFrame({"warc_record_id": ["old"]}), kept_path(tmp_path, "stage", "all"))
    write_parquet(pl.DataFrame({"warc_record_id": ["gone"]}), removed_path(tmp_path, "stage", "all"))
    assert [f.stem for f in part_files(tmp_path, "stage")] == ["all", "crawl-0", "crawl-1"]

    stale = prune_parts(tmp_path, "stage", ["crawl-0", "crawl-1"])
    assert sorted(f.parent.name for f in stale) == ["kept", "removed"]
    assert [f.stem for f in part_files(tmp_path, "stage")] == ["crawl-0", "crawl-1"]
    assert part_files(tmp_path, "stage", "removed") == []

    frame = scan_parts(part_files(tmp_path, "stage")).collect()
    assert frame.sort("warc_record_id").rows() == [("a", 1), ("b", None)]
    assert scan_parts([]).collect().height == 0
