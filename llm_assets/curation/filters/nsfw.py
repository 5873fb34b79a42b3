"""NSFW words: pages where explicit words are both numerous and a noticeable share of the words."""

from __future__ import annotations

import re

import polars as pl

from .base import flag

# Explicit words whose density marks a page as pornographic (in the spirit of the LDNOOBW lists).
NSFW_WORDS = (
    "porn", "porno", "pornographic", "xxx", "nude", "nudes", "naked", "sex", "sexy", "hardcore", "horny",
    "milf", "hentai", "blowjob", "handjob", "cumshot", "creampie", "anal", "orgasm", "orgy", "erotic",
    "fetish", "bdsm", "stripper", "webcam", "cams", "camgirl", "nsfw", "uncensored", "explicit", "pussy",
    "dick", "cock", "boobs", "tits", "slut", "whore", "dildo", "masturbation", "masturbate", "threesome",
)


class NsfwWords:
    """Pages where explicit words are both numerous and a noticeable share of all words."""

    name = "nsfw_words"

    def __init__(self, min_words: int, min_share: float, words: tuple[str, ...] = NSFW_WORDS):
        self.min_words, self.min_share = min_words, min_share
        self.pattern = r"\b(?:" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + r")\b"

    def counts(self, docs: pl.DataFrame) -> pl.DataFrame:
        text = pl.col("text").str.to_lowercase()
        return docs.select(text.str.count_matches(self.pattern).alias("nsfw"),
                           text.str.count_matches(r"\w+").alias("words"))

    def reasons(self, docs: pl.DataFrame) -> pl.Series:
        c = self.counts(docs)
        hit = (c["nsfw"] >= self.min_words) & (c["nsfw"] >= self.min_share * c["words"])
        return flag(hit, self.name)
