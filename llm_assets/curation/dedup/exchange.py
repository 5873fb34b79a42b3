"""The scratch files through which the dedup tasks exchange hashes, ids and fetch times: one folder per
step, one Parquet file per part (map) or per bucket (reduce), combined per group of parts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from llm_assets.lake import PartLoader, PartWriter, lake_path, uri, write_parquet
from llm_assets.profiles import CurationConfig

# the shuffle's files are grouped by this many parts, both ways: a map step's per-part files are combined
# into one file per group (a row group per bucket), so a reduce task opens parts / 64 files, not one per
# part; reduce outputs that per-part tasks read back are filed per group, so a part's task reads its group's
# files, one per bucket
PARTS_PER_GROUP = 64


@dataclass(frozen=True)
class Shuffle:
    """What every dedup task needs, as plain values (a task may run in another process or on another host).

    Tasks exchange hashes, ids and fetch times through Parquet files under `scratch`; a map task writes one
    file per part with a `_bucket` column, a reduce task reads one bucket of every part's file."""

    parts: tuple[str, ...]
    load: PartLoader
    write: PartWriter
    cfg: CurationConfig
    scratch: str
    buckets: int
    group_parts: int = PARTS_PER_GROUP

    def folder(self, step: str):
        """The scratch folder of one step: a local path, or a URL when the scratch is in the object store."""
        return lake_path(self.scratch) / step

    def file(self, step: str, name: int | str) -> Path:
        return self.folder(step) / f"{name}.parquet"

    def scan(self, step: str) -> pl.LazyFrame:
        """Every file of one step's folder, as one lazy frame."""
        return pl.scan_parquet(uri(self.folder(step) / "*.parquet"))

    def put(self, step: str, name: int | str, frame: pl.DataFrame) -> None:
        write_parquet(frame, self.file(step, name))

    def put_buckets(self, step: str, name: int | str, frame: pl.DataFrame) -> None:
        """`frame` (with `_bucket`) as one Parquet row group per bucket, so that a reduce task's filter on
        its bucket reads its row group of each file and skips the others by their statistics."""
        write_parquet(frame, self.file(step, name), row_group_by="_bucket")

    def groups(self) -> list[int]:
        return list(range(math.ceil(len(self.parts) / self.group_parts)))

    def combined(self, step: str, group: int):
        """A step's one file for group `group` of parts, after `_combine_task` or `_gather_task`."""
        return self.file(step, group_name(group))

    def group_file(self, step: str, number: int):
        """The combined file of the group of part `number`."""
        return self.combined(step, number // self.group_parts)

    def bucket(self, step: str, bucket: int) -> pl.DataFrame:
        """One bucket's rows of a step: its row group of every file (of every group, once combined)."""
        return self.scan(step).filter(pl.col("_bucket") == bucket).collect()

    def put_by_part(self, step: str, name: int, frame: pl.DataFrame) -> None:
        """A reduce task's rows for the per-part tasks: one file per group of `PARTS_PER_GROUP` parts (every
        group gets one, empty or not), so a part's task reads its group's files and no other."""
        group = (pl.col("_part") // self.group_parts).alias("_group")
        rows = frame.with_columns(group)
        for number in self.groups():
            write_parquet(rows.filter(pl.col("_group") == number).drop("_group"),
                          self.folder(step) / group_name(number) / f"{name}.parquet")

    def of_part(self, step: str, number: int) -> pl.LazyFrame:
        """The rows of part `number` that reduce tasks wrote with `put_by_part`, once `_gather_task`
        combined its group's files into one."""
        return pl.scan_parquet(uri(self.group_file(step, number))).filter(pl.col("_part") == number)

    def keys_for(self, hosts: pl.Series) -> pl.DataFrame:
        """The boilerplate line keys of `hosts` (the small broadcast of this stage)."""
        wanted = pl.LazyFrame({"host": hosts.unique()})
        return (self.scan("keys").select("host", "_key")
                .join(wanted, on="host", how="semi").collect())


def group_name(group: int) -> str:
    return f"g{group:06d}"
