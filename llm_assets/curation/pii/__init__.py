"""PII detection and redaction with presidio, fast and exact: presidio's findings on each whole text.

How it works:

- **What is found.** presidio's six pattern recognizers (`PII_ENTITIES`: e-mail, phone, IP, credit card,
  IBAN, US SSN) with no NLP model, so nothing is downloaded and there is no context scoring. With a spaCy
  pipeline (`CurationConfig.pii_spacy_model`, see `resolve_spacy_model`) presidio also runs NER (names) over
  all text, batched through spaCy; nothing below applies to that path.
- **Pre-scan** (`prescan`). The pattern recognizers never match across a line break and see a neighbouring
  `\\n` like the start or end of the text; duplicates are merged per entity type. So a line can be analyzed
  on its own, and each type on its own. Per type, a cheap trigger written against the recognizer's own
  patterns fires wherever it could match; polars picks the texts worth scanning, and presidio analyzes
  only the windows where a trigger fired (tokens for e-mail and IP, lines for card, IBAN and SSN; for phone
  numbers, stretches around digit runs long enough for libphonenumber's metadata, bounded by letters its
  matcher never accepts). Windows are joined into batches by `\\n` and the spans mapped back.
- **Phone replay** (`phone_replay`, `phone_rules`). libphonenumber's matcher, run by presidio once per
  region, is the costly part; the replaying recognizer finds the same spans with a fraction of its parses,
  by skipping parses and regions that provably find nothing, or what another one finds. It reads
  libphonenumber internals, so it runs only on the tested libphonenumber version (else presidio's own
  recognizer runs, with the same findings); `find_pii(replay_phones=False)` turns it off.
- **Nothing global.** Importing this package changes nothing in the process. Building an analyzer hides
  presidio's optional NLP back ends only while presidio itself is imported, uses tldextract's bundled
  public suffix list through an extractor of its own (never the internet), quiets presidio's logger only
  during our calls, and turns on libphonenumber's documented compiled-pattern cache.
- **Checked.** tests/test_pii.py compares `find_pii` with presidio on every whole text
  (`find_pii_reference`) over generated near-misses and phone formats of many regions, and each replay
  shortcut with libphonenumber itself; bench/bench_pii.py and bench/bench_pii_replay.py time them.

Known difference: libphonenumber stops after 65,535 rejected candidates in one text; windows (and lines,
for phone numbers) restart that count, so on such a text we can only find more than presidio, never less.
"""

from __future__ import annotations

import bisect
import functools
import logging
from collections.abc import Sequence

import polars as pl

from llm_assets.curation.pii.analyzers import (
    PII_ENTITIES,
    SPACY_PIPELINES,
    PiiFinding,
    as_findings,
    build_analyzer,
    find_pii_with_ner,
    ner_analyzer,
    no_context_enhancer,
    pii_analyzer,
    presidio_quiet,
    resolve_spacy_model,
)
from llm_assets.curation.pii.prescan import batches, candidate_windows

__all__ = ["PII_ENTITIES", "SPACY_PIPELINES", "PiiFinding", "fast_pii_analyzer", "find_pii", "find_pii_reference",
           "merge_spans", "redact", "resolve_spacy_model", "scrub_pii"]

log = logging.getLogger(__name__)


def scrub_pii(docs: pl.DataFrame, score_threshold: float = 0.0, spacy_model: str | None = None,
              ner_entities: tuple[str, ...] = ("PERSON",)) -> pl.DataFrame:
    """`docs` with `text` redacted and `pii_count` (spans redacted) and `pii_types` (sorted) added."""
    texts = docs["text"].to_list()
    findings = find_pii(texts, score_threshold=score_threshold, spacy_model=spacy_model, ner_entities=ner_entities)
    redacted, counts, types = [], [], []
    for text, found in zip(texts, findings, strict=True):
        spans = merge_spans(found)
        redacted.append(redact(text, found) if spans else text)
        counts.append(len(spans))
        types.append(sorted({f.entity_type for f in spans}))
    return docs.with_columns(
        pl.Series("text", redacted, dtype=pl.Utf8),
        pl.Series("pii_count", counts, dtype=pl.Int32),
        pl.Series("pii_types", types, dtype=pl.List(pl.Utf8)),
    )


def find_pii(texts: Sequence[str], score_threshold: float = 0.0, spacy_model: str | None = None,
             ner_entities: tuple[str, ...] = ("PERSON",), replay_phones: bool = True) -> list[list[PiiFinding]]:
    """The findings presidio makes on each whole text, computed on the candidate windows only.

    With a `spacy_model` (see `resolve_spacy_model`) presidio also runs spaCy NER for `ner_entities`, over
    all text. `replay_phones=False` uses presidio's own phone recognizer on the windows (same findings).
    """
    if spacy_model:
        return find_pii_with_ner(texts, score_threshold, spacy_model, tuple(ner_entities))
    analyzer = fast_pii_analyzer(replay_phones)
    findings: list[list[PiiFinding]] = [[] for _ in texts]
    analyzed_chars = 0
    for entity, spans in candidate_windows(texts).items():
        for joined, starts, origins, shifts in batches(texts, spans):
            analyzed_chars += len(joined)
            for r in analyzer.analyze(joined, language="en", entities=[entity], score_threshold=score_threshold):
                seg = bisect.bisect_right(starts, r.start) - 1
                findings[origins[seg]].append(
                    PiiFinding(r.entity_type, r.start + shifts[seg], r.end + shifts[seg], float(r.score)))
    total = sum(len(t) for t in texts if t)
    log.debug("pii: presidio analyzed %d of %d characters (%.1f%%)", analyzed_chars, total,
              100.0 * analyzed_chars / max(total, 1))
    return [sorted(f) for f in findings]


def merge_spans(findings: Sequence[PiiFinding]) -> list[PiiFinding]:
    """Overlapping findings as one span, labelled with the type of its highest-scoring finding."""
    merged: list[PiiFinding] = []
    for f in sorted(findings, key=lambda f: (f.start, -f.score, -(f.end - f.start))):
        if merged and f.start < merged[-1].end:
            top = merged[-1]
            label = top.entity_type if top.score >= f.score else f.entity_type
            merged[-1] = PiiFinding(label, top.start, max(top.end, f.end), max(top.score, f.score))
        else:
            merged.append(f)
    return merged


def redact(text: str, findings: Sequence[PiiFinding]) -> str:
    """`text` with every finding replaced by a typed placeholder such as `<EMAIL_ADDRESS>`."""
    pieces = []
    cursor = 0
    for f in merge_spans(findings):
        pieces.append(text[cursor:f.start])
        pieces.append(f"<{f.entity_type}>")
        cursor = f.end
    pieces.append(text[cursor:])
    return "".join(pieces)


def find_pii_reference(texts: Sequence[str], score_threshold: float = 0.0, spacy_model: str | None = None,
                       ner_entities: tuple[str, ...] = ("PERSON",)) -> list[list[PiiFinding]]:
    """Presidio as commonly used: the analyzer over every whole text, one call each (the slow reference)."""
    analyzer = ner_analyzer(spacy_model, tuple(ner_entities)) if spacy_model else pii_analyzer()
    out = []
    with presidio_quiet():
        for text in texts:
            results = analyzer.analyze(text or "", language="en", score_threshold=score_threshold)
            out.append(sorted(as_findings(results)))
    return out


@functools.cache
def fast_pii_analyzer(replay_phones: bool = True):
    """`pii_analyzer` without the context enhancer (a no-op without an NLP model) and, with `replay_phones`,
    with the phone replay where it may run (`phone_replay.phone_recognizer`).

    Also keeps libphonenumber's compiled metadata patterns (its documented switch): it compiles them by
    pattern string on every use, and the hundreds it needs overflow the `re` module's own cache.
    """
    import phonenumbers

    from llm_assets.curation.pii.phone_replay import phone_recognizer

    phonenumbers.enable_pattern_cache()
    return build_analyzer(phone_recognizer(replay_phones), no_context_enhancer())
