"""The filter interface: `reasons(docs)` per rule, `judge` for a stage's ordered list, `split` by the verdict."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import polars as pl

from llm_assets.lake import removed_frame

log = logging.getLogger(__name__)


class Filter(Protocol):
    """A keep/drop rule: `reasons(docs)` is a Utf8 series, one reason per row of `docs`, null = keep."""

    name: str

    def reasons(self, docs: pl.DataFrame) -> pl.Series: ...


def flag(hit: pl.Series, reason: str) -> pl.Series:
    """`reason` where `hit` is true, else null."""
    return pl.select(pl.when(hit).then(pl.lit(reason)).otherwise(pl.lit(None, pl.Utf8)).alias("reason"))["reason"]


class TextFilter:
    """A rule judged one text at a time: a subclass sets `name` and answers `__call__(text)` with a reason or
    None; `reasons(docs)` applies it to the `text` column."""

    name = "text_filter"

    def __call__(self, text: str) -> str | None:
        raise NotImplementedError

    def reasons(self, docs: pl.DataFrame) -> pl.Series:
        return pl.Series("reason", [self(text) for text in docs["text"].fill_null("").to_list()], dtype=pl.Utf8)


def judge(docs: pl.DataFrame, filters: Sequence[Filter]) -> pl.Series:
    """The reason of the first filter that drops each row (null: every filter keeps it). Each filter sees only
    the rows that the filters before it kept."""
    verdict = np.full(docs.height, None, dtype=object)
    open_rows = np.arange(docs.height)
    for rule in filters:
        if len(open_rows) == 0:
            break
        rows = docs if len(open_rows) == docs.height else docs[open_rows]
        reasons = rule.reasons(rows)
        hit = reasons.is_not_null().to_numpy()
        verdict[open_rows[hit]] = reasons.drop_nulls().to_list()
        open_rows = open_rows[~hit]
        log.info("%s removed %d pages", rule.name, int(hit.sum()))
    return pl.Series("reason", verdict.tolist(), dtype=pl.Utf8)


def split(docs: pl.DataFrame, reasons: pl.Series, stage: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`(kept, removed)`: rows without a reason, and the removed-record (`removed_frame`) of those with one,
    both in input order."""
    staged = docs.with_columns(reasons.alias("_reason"))
    dropped = staged.filter(pl.col("_reason").is_not_null())
    return staged.filter(pl.col("_reason").is_null()).drop("_reason"), removed_frame(dropped, stage,
                                                                                     pl.col("_reason"))


def word_list(text: str) -> list[str]:
    """The words of `text` as the heuristic families count them: split on whitespace."""
    return text.split()


def duplicates(items: list[str]) -> tuple[int, int]:
    """(count, characters) of items that already occurred earlier in the list."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars
