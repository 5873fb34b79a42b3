"""Toxicity: alt-profanity-check's probability per line, and the share of a page's words on toxic lines."""

from __future__ import annotations

import polars as pl

from .base import flag


class Toxicity:
    """alt-profanity-check per line; a page is toxic when enough of its words sit on toxic lines.

    Scoring lines rather than whole pages keeps one abusive comment from hiding in a long page and one
    curse word from condemning a long article.
    """

    name = "toxic"

    def __init__(self, threshold: float, min_share: float):
        self.threshold, self.min_share = threshold, min_share

    def shares(self, docs: pl.DataFrame) -> pl.Series:
        from profanity_check import predict_prob

        lines = (docs.select(pl.int_range(pl.len()).alias("doc"), pl.col("text").str.split("\n").alias("line"))
                 .explode("line")
                 .with_columns(pl.col("line").str.count_matches(r"\w+").alias("words"))
                 .filter(pl.col("words") > 0))
        probs = predict_prob(lines["line"].to_list()) if lines.height else []
        per_doc = (lines.with_columns(pl.Series("prob", probs, dtype=pl.Float64))
                   .group_by("doc")
                   .agg((pl.col("words").filter(pl.col("prob") >= self.threshold).sum()
                         / pl.col("words").sum()).alias("share")))
        share = (pl.DataFrame({"doc": pl.int_range(docs.height, eager=True)})
                 .join(per_doc, on="doc", how="left").sort("doc")["share"].fill_null(0.0))
        return share.alias("toxic_share")

    def reasons(self, docs: pl.DataFrame) -> pl.Series:
        hit = self.shares(docs) >= self.min_share
        return flag(hit, self.name)
