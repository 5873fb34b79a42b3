"""Language: pages whose detected language is not kept, or detected with too little confidence."""

from __future__ import annotations

import polars as pl


class Language:
    """`language:<code>` for a page in a language not in `languages`, `language_score` for one whose
    detection confidence is under `min_score` (on the `language` and `language_score` columns)."""

    name = "language"

    def __init__(self, languages: tuple[str, ...], min_score: float):
        self.languages, self.min_score = languages, min_score

    def reasons(self, docs: pl.DataFrame) -> pl.Series:
        return docs.select(
            pl.when(~pl.col("language").is_in(list(self.languages))).then(pl.format("language:{}", pl.col("language")))
            .when(pl.col("language_score") < self.min_score).then(pl.lit("language_score"))
            .otherwise(pl.lit(None, pl.Utf8)).alias("reason"))["reason"]
