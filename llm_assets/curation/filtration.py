"""Stage 2, `filtered_documents`: URL blocklist, NSFW words, toxicity, and PII redaction.

Each rule family is one small class whose `reasons(docs)` gives a reason per row (null = keep), so a
dropped page says which rule dropped it: `url_blocklist`, `nsfw_words`, `toxic`, `pii` (with
`cfg.pii_action="drop"`). Kept pages have their PII replaced by typed placeholders (`<EMAIL_ADDRESS>`) and
gain `pii_count` and `pii_types`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import polars as pl

from llm_assets.curation.pii import resolve_spacy_model, scrub_pii
from llm_assets.lake import removed_frame
from llm_assets.profiles import CurationConfig
from llm_assets.settings import PII_ACTIONS

log = logging.getLogger(__name__)

STAGE = "filtered_documents"
DEFAULT_BLOCKLIST = Path(__file__).with_name("blocklist.txt")


def pii_settings(cfg: CurationConfig) -> dict:
    """The keyword arguments of `pii.find_pii` / `scrub_pii` that the configuration sets."""
    return {"score_threshold": cfg.pii_score_threshold, "spacy_model": resolve_spacy_model(cfg.pii_spacy_model),
            "ner_entities": tuple(cfg.pii_ner_entities)}
# Explicit words whose density marks a page as pornographic (in the spirit of the LDNOOBW lists).
NSFW_WORDS = (
    "porn", "porno", "pornographic", "xxx", "nude", "nudes", "naked", "sex", "sexy", "hardcore", "horny",
    "milf", "hentai", "blowjob", "handjob", "cumshot", "creampie", "anal", "orgasm", "orgy", "erotic",
    "fetish", "bdsm", "stripper", "webcam", "cams", "camgirl", "nsfw", "uncensored", "explicit", "pussy",
    "dick", "cock", "boobs", "tits", "slut", "whore", "dildo", "masturbation", "masturbate", "threesome",
)


class UrlBlocklist:
    """Hosts on a blocklist: `domain.tld` lines match the domain and its subdomains, `*glob*` lines whole hosts."""

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
        return pl.select(pl.when(hit).then(pl.lit("url_blocklist")).otherwise(pl.lit(None, pl.Utf8))
                         .alias("reason"))["reason"]


class NsfwWords:
    """Pages where explicit words are both numerous and a noticeable share of all words."""

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
        return pl.select(pl.when(hit).then(pl.lit("nsfw_words")).otherwise(pl.lit(None, pl.Utf8))
                         .alias("reason"))["reason"]


class Toxicity:
    """alt-profanity-check per line; a page is toxic when enough of its words sit on toxic lines.

    Scoring lines rather than whole pages keeps one abusive comment from hiding in a long page and one
    curse word from condemning a long article.
    """

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
        return pl.select(pl.when(hit).then(pl.lit("toxic")).otherwise(pl.lit(None, pl.Utf8))
                         .alias("reason"))["reason"]


def _split(docs: pl.DataFrame, reasons: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows without a reason, removed-record of rows with one)."""
    staged = docs.with_columns(reasons.alias("_reason"))
    dropped = staged.filter(pl.col("_reason").is_not_null())
    return staged.filter(pl.col("_reason").is_null()).drop("_reason"), removed_frame(dropped, STAGE,
                                                                                     pl.col("_reason"))


def filter_documents(docs: pl.DataFrame, cfg: CurationConfig,
                     blocklist: str | Path | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`extracted_documents` to (kept with PII redacted + `pii_count`, `pii_types`; removed with reasons)."""
    missing = {"warc_record_id", "url", "host", "text"} - set(docs.columns)
    if missing:
        raise ValueError(f"documents frame lacks columns {sorted(missing)}; expected extracted_documents rows")
    if cfg.pii_action not in PII_ACTIONS:
        raise ValueError(f"CurationConfig.pii_action is {cfg.pii_action!r}; choose one of {', '.join(PII_ACTIONS)}")
    # redact first, so the samples kept with removed pages hold no PII either
    docs = scrub_pii(docs.with_columns(pl.col("text").fill_null("")), **pii_settings(cfg))
    removed = []
    for rule in (UrlBlocklist(blocklist), NsfwWords(cfg.nsfw_min_words, cfg.nsfw_word_share),
                 Toxicity(cfg.toxicity_threshold, cfg.toxic_line_share)):
        docs, dropped = _split(docs, rule.reasons(docs))
        log.info("%s removed %d pages", type(rule).__name__, dropped.height)
        removed.append(dropped)
    if cfg.pii_action == "drop":
        has_pii = docs.select(pl.when(pl.col("pii_count") > 0).then(pl.lit("pii"))
                              .otherwise(pl.lit(None, pl.Utf8)).alias("reason"))["reason"]
        docs, dropped = _split(docs, has_pii)
        removed.append(dropped)
    log.info("PII: %d spans in %d kept pages (%s)", docs["pii_count"].sum(),
             docs.filter(pl.col("pii_count") > 0).height, cfg.pii_action)
    return docs, pl.concat(removed, how="vertical_relaxed")
