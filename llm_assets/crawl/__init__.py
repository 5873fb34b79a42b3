"""Reading web crawls: WARC files from local disk, http(s), s3 and Common Crawl listings."""

from .sources import open_uri, partition_key, redact_text, redact_url, resolve_sources
from .warc import RAW_SCHEMA, UnreadableWarcError, WarcRead, iter_warc_batches, read_warc

__all__ = [
    "RAW_SCHEMA",
    "UnreadableWarcError",
    "WarcRead",
    "iter_warc_batches",
    "open_uri",
    "partition_key",
    "read_warc",
    "redact_text",
    "redact_url",
    "resolve_sources",
]
