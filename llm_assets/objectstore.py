"""The lake on object storage: `s3://bucket/prefix` (or any fsspec URL) as well as a local folder.

A lake root that is a URL gives `UPath` paths (pathlib's API over fsspec), so the lake's code joins, globs,
tests and deletes the same way on both. Parquet is read by polars straight from the URL (`uri(path)`) and
written by `lake.write_parquet` as one PUT of a finished file, so a reader never sees half a file.

Files that a library needs on local disk (a tokenizer, memory-mapped token shards, checkpoints) live in a
local mirror of the asset's folder: `pull` brings the remote files that changed, `push` sends back the files
the step wrote and deletes the ones it removed. The mirror sits under `$LLM_ASSETS_CACHE_DIR` (default
`~/.cache/llm_assets`).

Credentials and the server come from the standard `AWS_*` variables (`AWS_ENDPOINT_URL` for an
S3-compatible server), read by both fsspec (s3fs) and polars.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path, PurePath

CACHE_ENV = "LLM_ASSETS_CACHE_DIR"
SYNC_STATE = ".lake-sync.json"  # in a mirror folder: what each file was when it was last pulled or pushed


def is_url(root: str | os.PathLike) -> bool:
    """True for `scheme://...` roots other than `file://`."""
    text = str(root)
    return "://" in text and not text.startswith("file://")


def lake_path(root: str | os.PathLike):
    """`root` as a path object: `Path` for a local folder, `UPath` for a URL."""
    if not isinstance(root, (str, PurePath)) and hasattr(root, "protocol"):
        return root  # already a UPath
    if is_url(root):
        try:
            from upath import UPath
        except ImportError as err:
            raise ImportError(f"the lake {root} is a URL, which needs universal-pathlib and s3fs: "
                              "pip install -e '.[s3]'") from err
        # no listing cache: other processes and hosts write the same prefixes while this one runs
        return UPath(str(root), use_listings_cache=False)
    return Path(str(root).removeprefix("file://"))


def is_remote(path) -> bool:
    return not isinstance(path, PurePath)


def uri(path) -> str:
    """What polars, pyarrow and the metadata get: the local path, or the full URL."""
    return str(path)


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "llm_assets")


def mirror_dir(remote) -> Path:
    """The local folder that mirrors the remote folder `remote`: `<cache>/<protocol>/<bucket>/<key...>`."""
    return cache_dir() / "lake" / remote.protocol / remote.path.strip("/")


def _remote_files(remote) -> dict[str, str]:
    """`{relative name: tag}` of every file under the remote folder (its ETag, else size and time; none when
    the folder does not exist)."""
    fs, base = remote.fs, remote.path.rstrip("/")
    try:
        found = fs.find(base, detail=True)
    except FileNotFoundError:
        return {}
    files = {}
    for name, info in found.items():
        if info.get("type") == "directory":
            continue
        tag = info.get("ETag") or info.get("etag") or f"{info.get('size')}-{info.get('LastModified')}"
        files[name[len(base):].lstrip("/")] = str(tag)
    return files


def _load_state(local: Path) -> dict:
    try:
        return json.loads((local / SYNC_STATE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _save_state(local: Path, state: dict) -> None:
    tmp = local / f"{SYNC_STATE}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(state, sort_keys=True))
    os.replace(tmp, local / SYNC_STATE)


def _local_stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _local_files(local: Path) -> dict[str, Path]:
    return {p.relative_to(local).as_posix(): p for p in local.rglob("*")
            if p.is_file() and p.name != SYNC_STATE and not p.name.endswith(".tmp")}


def pull(remote, local: Path | None = None) -> Path:
    """Bring the remote folder's files into its local mirror (only those whose tag changed since the last
    sync) and delete mirror files the remote no longer has. Returns the mirror folder."""
    local = local or mirror_dir(remote)
    local.mkdir(parents=True, exist_ok=True)
    state = _load_state(local)
    remote_files = _remote_files(remote)
    base = remote.path.rstrip("/")
    for name, tag in remote_files.items():
        target = local / name
        if target.exists() and state.get(name, {}).get("tag") == tag \
                and state[name].get("stamp") == _local_stamp(target):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        remote.fs.get_file(f"{base}/{name}", str(tmp))
        os.replace(tmp, target)
        state[name] = {"tag": tag, "stamp": _local_stamp(target)}
    for name, path in _local_files(local).items():
        if name not in remote_files:
            path.unlink()
            state.pop(name, None)
    _save_state(local, {k: v for k, v in state.items() if k in remote_files})
    return local


def push(local: Path, remote) -> dict[str, int]:
    """Send the mirror's new and changed files to the remote folder (each one PUT, so a file is there whole
    or not at all) and delete remote files the step removed from the mirror. Returns the counts."""
    state = _load_state(local)
    base = remote.path.rstrip("/")
    fs = remote.fs
    uploaded = deleted = 0
    files = _local_files(local)
    for name, path in sorted(files.items()):
        if state.get(name, {}).get("stamp") == _local_stamp(path):
            continue
        fs.put_file(str(path), f"{base}/{name}")
        uploaded += 1
        state[name] = {"tag": None, "stamp": _local_stamp(path)}
    remote_files = _remote_files(remote)
    for name in remote_files.keys() - files.keys():
        fs.rm_file(f"{base}/{name}")
        deleted += 1
    for name in files:  # the tags the server gave the uploads, so the next pull skips them
        if name in remote_files and state.get(name, {}).get("tag") is None:
            state[name]["tag"] = remote_files[name]
    _save_state(local, {k: v for k, v in state.items() if k in files})
    return {"uploaded": uploaded, "deleted": deleted}
