"""The lake: Parquet files under a root folder, one folder per asset, written atomically.

Every stage writes `<root>/<asset_key>/kept/<part>.parquet` for the rows it keeps and
`<root>/<asset_key>/removed/<part>.parquet` for the rows it drops (each with `stage` and `reason`), so
"why is this URL not in my training data?" is one DuckDB query over `<root>/*/removed/*.parquet`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import polars as pl

REMOVED_COLUMNS = ("warc_record_id", "url", "stage", "reason")


def asset_dir(root: str | os.PathLike, asset_key: str) -> Path:
    return Path(root) / asset_key


def kept_path(root: str | os.PathLike, asset_key: str, part: str = "all") -> Path:
    return asset_dir(root, asset_key) / "kept" / f"{part}.parquet"


def removed_path(root: str | os.PathLike, asset_key: str, part: str = "all") -> Path:
    return asset_dir(root, asset_key) / "removed" / f"{part}.parquet"


def write_parquet(frame: pl.DataFrame, path: str | os.PathLike) -> Path:
    """Write `frame` as zstd Parquet to a temporary name, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_parts(folder: str | os.PathLike) -> pl.DataFrame:
    """All Parquet files of a folder as one frame (empty frame when the folder has none)."""
    files = sorted(Path(folder).glob("*.parquet"))
    if not files:
        return pl.DataFrame()
    return pl.read_parquet(files)


def removed_frame(rows: pl.DataFrame, stage: str, reason: pl.Expr | str) -> pl.DataFrame:
    """The removed-rows record for `rows`: ids, url, stage, reason, plus a short text sample if present."""
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
    cols = [pl.col("warc_record_id"), pl.col("url"), pl.lit(stage).alias("stage"),
            reason_expr.cast(pl.Utf8).alias("reason")]
    if "text" in rows.columns:
        cols.append(pl.col("text").str.slice(0, 300).alias("sample"))
    return rows.select(cols)
