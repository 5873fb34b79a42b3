"""Stage 2, `filtered_documents`: PII redaction, then the rules of `filters.filtration_filters`.

The rules (URL blocklist, NSFW words, toxicity, and with `cfg.pii_action="drop"` PII found) live in
`curation.filters`; a dropped page says which rule dropped it: `url_blocklist`, `nsfw_words`, `toxic`,
`pii`. Kept pages have their PII replaced by typed placeholders (`<EMAIL_ADDRESS>`) and gain `pii_count`
and `pii_types`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from llm_assets.curation.filters import filtration_filters, judge, split
from llm_assets.curation.pii import resolve_spacy_model, scrub_pii
from llm_assets.profiles import CurationConfig
from llm_assets.settings import PII_ACTIONS

log = logging.getLogger(__name__)

STAGE = "filtered_documents"


def pii_settings(cfg: CurationConfig) -> dict:
    """The keyword arguments of `pii.find_pii` / `scrub_pii` that the configuration sets."""
    return {"score_threshold": cfg.pii_score_threshold, "spacy_model": resolve_spacy_model(cfg.pii_spacy_model),
            "ner_entities": tuple(cfg.pii_ner_entities)}


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
    docs, removed = split(docs, judge(docs, filtration_filters(cfg, blocklist)), STAGE)
    log.info("PII: %d spans in %d kept pages (%s)", docs["pii_count"].sum(),
             docs.filter(pl.col("pii_count") > 0).height, cfg.pii_action)
    return docs, removed
