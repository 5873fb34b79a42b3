"""URL blocklist: pages of listed hosts (a domain and its subdomains, or a host glob)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from .base import flag

DEFAULT_BLOCKLIST = Path(__file__).resolve().parent.parent / "blocklist.txt"


class UrlBlocklist:
    """Hosts on a blocklist: `domain.tld` lines match the domain and its subdomains, `*glob*` lines whole hosts."""

    name = "url_blocklist"

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else DEFAULT_BLOCKLIST
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise FileNotFoundError(f"URL blocklist {self.path} cannot be read ({exc}); pass an existing file "
                                    f"or None for the built-in list") from None
        domains, globs = [], []
        for number, line in enumerate(lines, 1):
            entry = line.split("#", 1)[0].strip().lower()
            if not entry:
                continue
            if "/" in entry or " " in entry:
                raise ValueError(f"{self.path}:{number}: {line.strip()!r} is not a host or host glob")
            if "*" in entry:
                globs.append("^" + ".*".join(re.escape(part) for part in entry.split("*")) + "$")
            else:
                domains.append(re.escape(entry.strip(".")))
        alternatives = ([f"(?:^|\\.)(?:{'|'.join(domains)})$"] if domains else []) + globs
        self.pattern = "|".join(alternatives) if alternatives else None
        self.entries = len(domains) + len(globs)

    def reasons(self, docs: pl.DataFrame) -> pl.Series:
        host = pl.coalesce(pl.col("host"), pl.col("url").str.extract(r"^[a-zA-Z][a-zA-Z0-9+.-]*://([^/:?#]+)", 1))
        host = host.str.to_lowercase().str.strip_chars_end(".")
        if self.pattern is None:
            return pl.Series("reason", [None] * docs.height, dtype=pl.Utf8)
        hit = docs.select(host.fill_null("").str.contains(self.pattern).alias("hit"))["hit"]
        return flag(hit, self.name)
