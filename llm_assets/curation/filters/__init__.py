"""Every keep/drop rule of curation, one small class per rule family, in one ordered list per stage.

A filter has a `name` and `reasons(docs) -> pl.Series`: a reason per row (`nsfw_words`,
`gopher_quality:too_few_words`, ...), null to keep it. `judge` runs a stage's list in order, each filter
seeing only the rows the ones before it kept, so a dropped page carries the reason of the first rule that
dropped it. Any rule can be switched off by name (`CurationConfig.off`). To add a rule: a class in a
module of this package (or an existing family's module), a line in its stage's list below, its name in
`settings.SWITCHES`, and a test.

| stage                 | list                   | rules, in order                                            |
|-----------------------|------------------------|------------------------------------------------------------|
| `extracted_documents` | `extraction_filters`   | `Language`                                                 |
| `filtered_documents`  | `filtration_filters`   | `UrlBlocklist`, `NsfwWords`, `Toxicity`, `PiiFound` (drop) |
| `quality_documents`   | `heuristic_filters`    | `GopherQuality`, `GopherRepetition`, `C4Rules`, `FineWebRules` |
|                       | then `QualityModel`    | the model's score under the threshold found over all parts |
"""

from __future__ import annotations

from pathlib import Path

from llm_assets.profiles import CurationConfig, HeuristicThresholds

from .base import Filter, TextFilter, judge, split
from .c4 import C4Rules
from .fineweb import FineWebRules
from .gopher import GopherQuality, GopherRepetition
from .language import Language
from .nsfw import NSFW_WORDS, NsfwWords
from .pii import PiiFound
from .quality_model import QualityModel
from .toxicity import Toxicity
from .url import DEFAULT_BLOCKLIST, UrlBlocklist


def extraction_filters(cfg: CurationConfig) -> list[Filter]:
    """The rules of `extracted_documents`, on pages with `language` and `language_score`."""
    return switched_on([Language(tuple(cfg.languages), cfg.min_language_score)], cfg)


def filtration_filters(cfg: CurationConfig, blocklist: str | Path | None = None) -> list[Filter]:
    """The rules of `filtered_documents`, on pages whose PII is already counted (`pii_count`)."""
    filters: list[Filter] = [UrlBlocklist(blocklist), NsfwWords(cfg.nsfw_min_words, cfg.nsfw_word_share),
                             Toxicity(cfg.toxicity_threshold, cfg.toxic_line_share)]
    return switched_on(filters + [PiiFound()] if cfg.pii_action == "drop" else filters, cfg)


def heuristic_filters(thresholds: HeuristicThresholds, off: tuple[str, ...] = ()) -> list[TextFilter]:
    """The heuristic families of `quality_documents`: Gopher, C4, FineWeb (all see the text before C4's
    line clean-up, which `C4Rules.cleaned` applies to the pages that pass)."""
    families = [GopherQuality(thresholds), GopherRepetition(thresholds), C4Rules(thresholds), FineWebRules(thresholds)]
    return [f for f in families if f.name not in off]


def switched_on(filters: list[Filter], cfg: CurationConfig) -> list[Filter]:
    """`filters` without those `cfg.off` names."""
    return [f for f in filters if f.name not in cfg.off]


__all__ = [
    "DEFAULT_BLOCKLIST",
    "NSFW_WORDS",
    "C4Rules",
    "Filter",
    "FineWebRules",
    "GopherQuality",
    "GopherRepetition",
    "Language",
    "NsfwWords",
    "PiiFound",
    "QualityModel",
    "TextFilter",
    "Toxicity",
    "UrlBlocklist",
    "extraction_filters",
    "filtration_filters",
    "heuristic_filters",
    "judge",
    "split",
    "switched_on",
]
