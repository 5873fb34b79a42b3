"""Quality model: pages whose classifier score is under the threshold (found over every part's scores)."""

from __future__ import annotations

import polars as pl

from .base import flag


class QualityModel:
    """`quality_model` for a page whose `quality_score` is under `threshold`."""

    name = "quality_model"

    def __init__(self, threshold: float):
        self.threshold = threshold

    def reasons(self, docs: pl.DataFrame) -> pl.Series:
        return flag(docs["quality_score"] < self.threshold, self.name)
