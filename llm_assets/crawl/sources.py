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
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

COMMON_CRAWL_BASE_ENV = "LLM_ASSETS_COMMON_CRAWL_BASE"
COMMON_CRAWL_BASE = "https://data.commoncrawl.org/"
WARC_SUFFIXES = (".warc.gz", ".warc")


# query parameters that carry a credential or a signature (S3/GCS/Azure presigned URLs, API tokens)
_SECRET_PARAM = re.compile(
    r"^(x-(amz|goog)-(signature|credential|security-token)|signature|sig|token|access_token|api_?key|key"
    r"|password|passwd|secret|auth|policy|key-pair-id)$", re.I)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
REDACTED = "REDACTED"


def _is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def redact_url(uri: str) -> str:
    """`uri` safe to log or store: userinfo and secret-bearing query parameters replaced by REDACTED.

    `http://user:secret@host/a.warc.gz?X-Amz-Signature=...&part=1` ->
    `http://REDACTED@host/a.warc.gz?X-Amz-Signature=REDACTED&part=1`. Local paths pass unchanged.
    """
    if not _is_remote(uri):
        return uri
    try:
        parts = urlsplit(uri)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_PARAM.match(k) for k, _ in pairs):
            query = urlencode([(k, REDACTED if _SECRET_PARAM.match(k) else v) for k, v in pairs], safe="/:")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """`text` (an error or log message) with every URL in it passed through `redact_url`."""
    def one(match: re.Match) -> str:
        url = match.group(0)
        core = url.rstrip(".,;:)]}")  # punctuation of the sentence around the URL
        return redact_url(core) + url[len(core):]

    return _URL_IN_TEXT.sub(one, text)


def source_file_name(uri: str) -> str:
    """The WARC file's name as stored in `warc_file`: for a URL, its path's last segment (never the query
    string of a presigned URL, nor userinfo)."""
    if _is_remote(uri):
        uri = urlsplit(uri).path
    return uri.rstrip("/").rsplit("/", 1)[-1]


def _has_glob(source: str) -> bool:
    """Whether a source is a pattern. In http(s) URLs `?` starts the query (presigned URLs), never a
    wildcard, and nothing after it is a pattern."""
    if source.startswith(("http://", "https://")):
        return any(ch in source.split("?", 1)[0] for ch in "*[")
    return any(ch in source for ch in "*?[")


def open_uri(uri: str):
    """A binary file object for a local path or any fsspec URL (http, https, s3, gs...)."""
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if not _is_remote(uri):
        return open(uri, "rb")
    import fsspec

    # http(s): send the URL byte for byte as given (a presigned URL's %2F must not be decoded)
    options = {"encoded": True} if uri.startswith(("http://", "https://")) else {}
    try:
        return fsspec.open(uri, "rb", **options).open()
    except ImportError as exc:
        raise ValueError(f"reading {redact_url(uri)} needs an fsspec backend: {exc} "
                         "(for s3: pip install s3fs)") from exc


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
        if _has_glob(source):
            import fsspec

            fs, _, paths = fsspec.get_fs_token_paths(source)
            protocol = source.split("://", 1)[0]
            # some filesystems (http) list full URLs, others (s3, gs) bare paths
            return sorted(p if "://" in p else f"{protocol}://{p}" for p in paths)
        return [source]
    path = Path(source).expanduser()
    if path.is_dir():
        return sorted(str(p) for p in path.iterdir() if p.name.endswith(WARC_SUFFIXES))
    if _has_glob(source):
        return sorted(glob.glob(str(path)))
    if not path.exists():
        raise FileNotFoundError(f"crawl source {source!r} does not exist")
    return [str(path)]


def partition_key(uri: str) -> str:
    """The file's name without `.warc[.gz]`; for a URL, without its query string or fragment (a presigned
    URL's signature must never become a partition key)."""
    if _is_remote(uri):
        uri = urlsplit(uri).path or uri.split("://", 1)[1].split("?", 1)[0]
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
            raise FileNotFoundError(f"crawl source {redact_url(source)!r} names no WARC files")
        for uri in uris:
            key = partition_key(uri)
            if key in resolved and resolved[key] != uri:
                key = f"{key}-{hashlib.sha1(uri.encode()).hexdigest()[:8]}"
            resolved[key] = uri
    return resolved
