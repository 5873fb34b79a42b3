"""What every defs module shares: check and metadata helpers, reading a stage's parts, the `gpu` pool."""

import contextlib
import json
import tempfile
from pathlib import Path

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from llm_assets.lake import kept_path, part_files
from llm_assets.objectstore import mirror_dir

from .resources import LakeResource

GPU_POOL = "gpu"  # training steps take its one slot, so two trainings never share the accelerator


def metadata_value(value):
    """`value` as Dagster metadata: scalars as they are, anything else as JSON (unknown types as strings)."""
    if isinstance(value, bool | int | float | str):
        return value
    return MetadataValue.json(json.loads(json.dumps(value, default=str)))


def check(name: str, passed: bool, blocking_severity: bool = True, description: str | None = None,
          **meta) -> AssetCheckResult:
    """A check result; `description` is the one sentence a user reads when it fails."""
    return AssetCheckResult(
        check_name=name, passed=bool(passed),
        severity=AssetCheckSeverity.ERROR if blocking_severity else AssetCheckSeverity.WARN,
        metadata={k: metadata_value(v) for k, v in meta.items()}, description=description,
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


def local_kept_files(lake: LakeResource, stage: str) -> list[Path]:
    """The kept part files of a global stage as local files, for readers that need a local path (the
    tokenizer, the shard writer, the evaluation): on an object-store lake, those of its synced mirror."""
    files = kept_files(lake, stage, stage_parts(lake, stage))
    if not lake.remote:
        return files
    folder = lake.fetch(stage) / "kept"
    return [folder / f.name for f in files]


@contextlib.contextmanager
def scratch_dir(lake: LakeResource, stage: str):
    """A scratch folder in the lake beside the stage's folder (readable by every task of the engine),
    removed after the step. A lake on an object store gets a local one (beside its mirror): the engine's
    tasks then share this host's disk, as a local Ray cluster does."""
    parent = mirror_dir(lake.path) if lake.remote else lake.path
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=f".{stage}-") as scratch:
        yield scratch
