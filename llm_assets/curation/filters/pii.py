"""PII found: with `pii_action: "drop"`, a page in which redaction found any PII is dropped instead."""

from __future__ import annotations

import polars as pl

from .base import flag


class PiiFound:
    """Pages with at least one PII span (`pii_count` > 0, counted by the redaction that runs first)."""

    name = "pii"

    def reasons(self, docs: pl.DataFrame) -> pl.Series:
        return flag(docs["pii_count"] > 0, self.name)
