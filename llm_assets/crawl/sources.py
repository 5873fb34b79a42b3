"""Where WARC files come from: local paths and globs, http(s) and s3 URLs, Common Crawl listings.

Every source resolves to `{partition_key: uri}`; the key is the file's name without `.warc[.gz]`, so a
crawl partition is named after the file it reads.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import os
import re
from pathlib import Path

COMMON_CRAWL_BASE_ENV = "LLM_ASSETS_COMMON_CRAWL_BASE"
COMMON_CRAWL_BASE = "https://data.commoncrawl.org/"
WARC_SUFFIXES = (".warc.gz", ".warc")


def _is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def open_uri(uri: str):
    """A binary file object for a local path or any fsspec URL (http, https, s3, gs...)."""
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if not _is_remote(uri):
        return open(uri, "rb")
    import fsspec

    try:
        return fsspec.open(uri, "rb").open()
    except ImportError as exc:
        raise ValueError(f"reading {uri} needs an fsspec backend: {exc} (for s3: pip install s3fs)") from exc


def _listing_lines(uri: str) -> list[str]:
    with open_uri(uri) as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return [line.strip() for line in io.StringIO(data.decode("utf-8")) if line.strip()]


def _expand(source: str) -> list[str]:
    """One source string to the WARC file URIs it names."""
    source = source.strip()
    if source.endswith(("paths.gz", ".paths", ".txt")):
        base = os.environ.get(COMMON_CRAWL_BASE_ENV, COMMON_CRAWL_BASE)
        return [line if "://" in line or line.startswith("/") else base + line
                for line in _listing_lines(source)]
    if _is_remote(source):
        if any(ch in source for ch in "*?["):
            import fsspec

            fs, _, paths = fsspec.get_fs_token_paths(source)
            protocol = source.split("://", 1)[0]
            return sorted(f"{protocol}://{p}" for p in paths)
        return [source]
    path = Path(source).expanduser()
    if path.is_dir():
        return sorted(str(p) for p in path.iterdir() if p.name.endswith(WARC_SUFFIXES))
    if any(ch in source for ch in "*?["):
        return sorted(glob.glob(str(path)))
    if not path.exists():
        raise FileNotFoundError(f"crawl source {source!r} does not exist")
    return [str(path)]


def partition_key(uri: str) -> str:
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    for suffix in WARC_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "warc"


def resolve_sources(sources: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`{partition_key: uri}` for every WARC file the sources name, in a stable order."""
    resolved: dict[str, str] = {}
    for source in sources:
        uris = _expand(source)
        if not uris:
            raise FileNotFoundError(f"crawl source {source!r} names no WARC files")
        for uri in uris:
            key = partition_key(uri)
            if key in resolved and resolved[key] != uri:
                key = f"{key}-{hashlib.sha1(uri.encode()).hexdigest()[:8]}"
            resolved[key] = uri
    return resolved
