"""What every defs module shares: check and metadata helpers, reading a stage's parts, the `gpu` pool."""

import base64
import contextlib
import io
import json
import tempfile
import uuid
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
)

from llm_assets.lake import kept_path, part_files
from llm_assets.objectstore import mirror_dir, uri

from .resources import LakeResource

UI_IMAGE_WIDTH = 760  # pixels: an image this wide fits the web UI's metadata dialog
GPU_POOL = "gpu"  # training steps take its one slot, so two trainings never share the accelerator


def metadata_value(value, as_text: bool = False):
    """`value` as Dagster metadata: scalars as they are, anything else as JSON (unknown types as strings).
    `as_text` turns numbers into text: the UI plots numbers over time, which per-partition values are not."""
    if as_text and isinstance(value, int | float) and not isinstance(value, bool):
        return MetadataValue.text(f"{value:,}" if isinstance(value, int) else f"{value:.4g}")
    if isinstance(value, bool | int | float | str):
        return value
    return MetadataValue.json(json.loads(json.dumps(value, default=str)))


def png_data_uri(png: Path, max_width: int = UI_IMAGE_WIDTH) -> str:
    """A PNG file as a `data:` URI, scaled down to `max_width` pixels: a browser shows it without access to
    the file, and it fits the UI's metadata dialog."""
    from PIL import Image

    with Image.open(png) as image:
        if image.width > max_width:
            image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def image_markdown(png: Path, alt: str) -> MetadataValue:
    """A PNG file as markdown metadata (the image inline), so the UI shows it without file access."""
    return MetadataValue.md(f"![{alt}]({png_data_uri(png)})")


def table(rows: list[dict], columns: dict[str, str], descriptions: dict[str, str] | None = None) -> MetadataValue:
    """Rows as Dagster table metadata; `columns` names each column's type (string, int, float, bool), in order."""
    schema = TableSchema(columns=[TableColumn(name, kind, description=(descriptions or {}).get(name))
                                  for name, kind in columns.items()])
    records = [TableRecord({name: _cell(row.get(name), kind) for name, kind in columns.items()}) for row in rows]
    return MetadataValue.table(records, schema)


def counts_table(counts: dict, name: str = "value") -> MetadataValue:
    """A `{value: count}` dict as a table, largest first."""
    rows = [{name: str(k), "count": v} for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]
    return table(rows, {name: "string", "count": "int"})


def _cell(value, kind: str):
    if value is None:
        return None
    if kind == "string":
        return value if isinstance(value, str) else json.dumps(value, default=str)
    return {"int": int, "float": float, "bool": bool}[kind](value)


def check(name: str, passed: bool, blocking_severity: bool = True, description: str | None = None,
          per_partition: bool = False, **meta) -> AssetCheckResult:
    """A check result; `description` is the one sentence a user reads when it fails. `per_partition`: the
    check runs once per crawl partition, so its numbers are text (no time series across partitions)."""
    return AssetCheckResult(
        check_name=name, passed=bool(passed),
        severity=AssetCheckSeverity.ERROR if blocking_severity else AssetCheckSeverity.WARN,
        metadata={k: metadata_value(v, as_text=per_partition) for k, v in meta.items()}, description=description,
    )


def spec(asset_key: str, name: str, description: str, blocking: bool = False) -> AssetCheckSpec:
    return AssetCheckSpec(name, asset=asset_key, blocking=blocking, description=description)


def kept_files(lake: LakeResource, stage: str, parts: list[str]) -> list[Path]:
    """The kept part files of `stage` for `parts`; a clear error when any is not materialized."""
    files = [kept_path(lake.path, stage, p) for p in parts]
    missing = [str(f) for f in files if not f.exists()]
    if missing or not files:
        raise FileNotFoundError(f"{stage} is not materialized for {len(missing) or 'any'} partition(s): "
                                f"{missing[:3]}; materialize it first")
    return files


def stage_parts(lake: LakeResource, stage: str) -> list[str]:
    """The parts a global stage wrote (one per crawl partition); an error when there are none."""
    parts = [f.stem for f in part_files(lake.path, stage)]
    if not parts:
        raise FileNotFoundError(f"{stage} has no part files under {lake.asset_dir(stage)}; materialize it first")
    return parts


def global_kept_files(lake: LakeResource, stage: str) -> list[Path]:
    """The kept part files of a global stage (paths, or URLs on an object-store lake)."""
    return kept_files(lake, stage, stage_parts(lake, stage))


@contextlib.contextmanager
def scratch_dir(lake: LakeResource, stage: str, engine):
    """A scratch folder for the tasks of `engine`, removed after the step: in the lake beside the stage's
    folder, which every task reaches. On an object-store lake, a prefix of the bucket when the tasks may run
    on other hosts (the `ray` engine), else a local folder beside the lake's mirror (faster: no requests)."""
    if lake.remote and engine.name != "local":
        scratch = lake.path / f".scratch-{stage}-{uuid.uuid4().hex[:12]}"
        try:
            yield uri(scratch)
        finally:
            with contextlib.suppress(FileNotFoundError):  # no task wrote anything
                scratch.fs.rm(scratch.path, recursive=True)
        return
    parent = mirror_dir(lake.path) if lake.remote else lake.path
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=f".{stage}-") as scratch:
        yield scratch
