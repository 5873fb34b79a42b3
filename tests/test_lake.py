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


def test_lake_lock_refuses_a_second_run_and_dies_with_its_holder(tmp_path):
    import subprocess
    import sys
    import time

    import pytest

    from llm_assets.lake import LakeBusyError, lake_lock

    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom llm_assets.lake import lake_lock\n"
        f"with lake_lock({str(tmp_path)!r}, 'curate'):\n    print('held', flush=True)\n    time.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LakeBusyError, match=rf"in use by pid {holder.pid} \(curate"), \
                lake_lock(tmp_path, "build"):
            pass
    finally:
        holder.kill()
        holder.wait()
    deadline = time.monotonic() + 10
    while True:  # the kernel drops a killed process's lock: no stale lock file blocks the next run
        try:
            with lake_lock(tmp_path, "build"):
                break
        except LakeBusyError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
