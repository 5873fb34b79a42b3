"""The lake: Parquet files under a root folder or object-store URL, one folder per asset, written atomically.

Every stage writes `<root>/<asset_key>/kept/<part>.parquet` for the rows it keeps and
`<root>/<asset_key>/removed/<part>.parquet` for the rows it drops (each with `stage` and `reason`), so
"why is this URL not in my training data?" is one DuckDB query over `<root>/*/removed/*.parquet`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from llm_assets.objectstore import is_remote, lake_path, mirror_dir, uri

REMOVED_COLUMNS = ("warc_record_id", "url", "stage", "reason")


def asset_dir(root: str | os.PathLike, asset_key: str) -> Path:
    """`<root>/<asset_key>`: a `Path`, or a `UPath` when the root is a URL (`s3://bucket/prefix`)."""
    return lake_path(root) / asset_key


def kept_path(root: str | os.PathLike, asset_key: str, part: str = "all") -> Path:
    return asset_dir(root, asset_key) / "kept" / f"{part}.parquet"


def removed_path(root: str | os.PathLike, asset_key: str, part: str = "all") -> Path:
    return asset_dir(root, asset_key) / "removed" / f"{part}.parquet"


@contextmanager
def atomic_target(path: str | os.PathLike):
    """A local temporary file to write `path`'s bytes into. When the block ends without error the file
    becomes `path` (a rename on disk; one PUT, all or nothing, on an object store); on error it is deleted,
    so a crash never leaves half a file where readers look."""
    path = lake_path(path)
    with contextlib.ExitStack() as stack:
        if is_remote(path):
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lake-put-")))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            folder = path.parent
        tmp = folder / f".{path.name}.{uuid.uuid4().hex}.tmp"
        try:
            yield tmp
            if is_remote(path):
                path.fs.put_file(str(tmp), path.path)
            else:
                os.replace(tmp, path)
        except Exception as exc:
            if _disk_full(exc):  # writers (polars, Arrow) say "os error 28" without the file: name it
                raise OSError(errno.ENOSPC, "No space left on device", str(path)) from exc
            raise
        finally:
            tmp.unlink(missing_ok=True)


def _disk_full(exc: BaseException) -> bool:
    while exc is not None:
        if getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def write_parquet(frame: pl.DataFrame, path: str | os.PathLike, metadata: dict[bytes, bytes] | None = None,
                  row_group_by: str | None = None) -> Path:
    """Write `frame` as zstd Parquet through `atomic_target`: a crash never leaves half a file.

    `metadata` goes into the file's key-value metadata (read back with `pyarrow.parquet.read_schema`).
    `row_group_by` writes one row group per value of that column, so a reader's filter on it skips the
    other row groups by their statistics.
    """
    with atomic_target(path) as tmp:
        if row_group_by:
            frame = frame.sort(row_group_by)
            schema = frame.to_arrow().schema
            with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                if frame.height == 0:
                    writer.write_table(frame.to_arrow())
                for _, rows in frame.group_by(row_group_by, maintain_order=True):
                    writer.write_table(rows.to_arrow().cast(schema))
        elif metadata:
            table = frame.to_arrow()
            pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata}), tmp,
                           compression="zstd")
        else:
            frame.write_parquet(tmp, compression="zstd", statistics=True)
    return lake_path(path)


def parquet_file(path: str | os.PathLike) -> pq.ParquetFile:
    """pyarrow's reader of a Parquet file on disk or in the object store (opened through fsspec)."""
    path = lake_path(path)
    return pq.ParquetFile(path.open("rb") if is_remote(path) else path)


def parquet_schema(path: str | os.PathLike):
    """The Arrow schema (with key-value metadata) of a Parquet file on disk or in the object store."""
    return parquet_file(path).schema_arrow


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, as hex: the checksum manifests and resume records compare."""
    digest = hashlib.sha256()
    with lake_path(path).open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# a global stage's access to the parts of a crawl: read one part's rows, write one part's kept and removed rows
PartLoader = Callable[[str], pl.DataFrame]
PartWriter = Callable[[str, pl.DataFrame, pl.DataFrame], None]


def read_json(path: str | os.PathLike, missing: str, label: str | None = None,
              error: type[Exception] = ValueError, missing_error: type[Exception] = FileNotFoundError):
    """The JSON value in `path`. A missing file raises `missing_error(missing)`; a file that is not JSON raises
    `error` naming it (`label`, default the path) and the parser's reason. No chained traceback: the message
    says it all."""
    path = lake_path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise missing_error(missing) from None
    except json.JSONDecodeError as err:
        raise error(f"{label or path}: not valid JSON ({err})") from None


def read_part(root: str | os.PathLike, asset_key: str, part: str) -> pl.DataFrame:
    """The kept rows of one part of a stage."""
    return pl.read_parquet(uri(kept_path(root, asset_key, part)))


def write_part(root: str | os.PathLike, asset_key: str, part: str, kept: pl.DataFrame,
               removed: pl.DataFrame) -> None:
    """Write one part of a stage: its kept rows and its removed rows."""
    write_parquet(kept, kept_path(root, asset_key, part))
    write_parquet(removed, removed_path(root, asset_key, part))


def part_files(root: str | os.PathLike, asset_key: str, side: str = "kept") -> list[Path]:
    """The Parquet part files of a stage's `kept` or `removed` rows, in part-name order."""
    return sorted((asset_dir(root, asset_key) / side).glob("*.parquet"), key=str)


def scan_parts(files: list[Path]) -> pl.LazyFrame:
    """A lazy frame over part files whose schemas may differ by missing columns (filled with nulls)."""
    if not files:
        return pl.LazyFrame()
    return pl.concat([pl.scan_parquet(uri(f)) for f in files], how="diagonal_relaxed")


def prune_parts(root: str | os.PathLike, asset_key: str, parts: list[str]) -> list[Path]:
    """Delete a stage's part files not named in `parts` (left by an earlier crawl or layout); return them."""
    wanted = {f"{p}.parquet" for p in parts}
    stale = [f for side in ("kept", "removed") for f in part_files(root, asset_key, side) if f.name not in wanted]
    for f in stale:
        f.unlink(missing_ok=True)
    return stale


def removed_frame(rows: pl.DataFrame, stage: str, reason: pl.Expr | str) -> pl.DataFrame:
    """The removed-rows record for `rows`: ids, url, stage, reason, plus a short text sample if present."""
    reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
    cols = [pl.col("warc_record_id"), pl.col("url"), pl.lit(stage).alias("stage"),
            reason_expr.cast(pl.Utf8).alias("reason")]
    if "text" in rows.columns:
        cols.append(pl.col("text").str.slice(0, 300).alias("sample"))
    return rows.select(cols)


def reason_counts(removed: pl.DataFrame) -> dict[str, int]:
    """Removed rows per `reason` (empty when nothing was removed or the frame has no reasons)."""
    if removed.height == 0 or "reason" not in removed.columns:
        return {}
    return dict(removed["reason"].value_counts().iter_rows())


LOCK_FILE = ".llm_assets.lock"


class LakeBusyError(RuntimeError):
    """Another run holds the lock of the output folder this run would write."""


@contextmanager
def lake_lock(root: str | os.PathLike, command: str):
    """Hold an exclusive lock on `root` for one run, or raise `LakeBusyError` naming the holder.

    Two runs writing the same lake overwrite and prune each other's parts; the lock turns that into a
    clear refusal. It is an advisory `flock`, released by the kernel when the process dies (so a killed
    run never leaves a stale lock behind); the file records who holds it, for the message only.
    An object store has no such lock: for a lake at a URL the lock is taken on its local mirror folder, so
    it guards the runs of this host only.
    """
    root = lake_path(root)
    if is_remote(root):
        root = mirror_dir(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    with open(path, "a+") as handle:  # closing the descriptor releases the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LakeBusyError(f"{root} is in use by {holder}; wait for that run to finish or write to "
                                "another folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} ({command}, since {time.strftime('%Y-%m-%d %H:%M:%S')})")
        handle.flush()
        yield path
