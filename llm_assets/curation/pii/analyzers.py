"""Presidio set-up: the six pattern recognizers, with or without spaCy NER, and the settings that pick spaCy.

Everything here is built on first use and cached; nothing is changed for the rest of the process. Presidio
is imported without its optional NLP back ends (`import_presidio`), the e-mail recognizer checks domains
against the public suffix list bundled with tldextract instead of fetching it from the internet, and
presidio's INFO chatter is held back only while our own calls run (`presidio_quiet`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

PII_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN")
# English spaCy pipelines that "auto" looks for, most accurate first
SPACY_PIPELINES = ("en_core_web_trf", "en_core_web_lg", "en_core_web_md", "en_core_web_sm")
# NLP back ends presidio imports eagerly when they are installed, though pattern recognizers never use them
_NLP_BACKENDS = ("transformers", "torch", "stanza")


class PiiFinding(NamedTuple):
    entity_type: str
    start: int
    end: int
    score: float


def as_findings(results, offset: int = 0) -> list[PiiFinding]:
    """presidio's results as findings, shifted by `offset`."""
    return [PiiFinding(r.entity_type, r.start + offset, r.end + offset, float(r.score)) for r in results]


def resolve_spacy_model(setting: str | None) -> str | None:
    """The spaCy pipeline to use for NER: `"auto"` picks the first installed of `SPACY_PIPELINES` (None when
    there is none), `""`/`"none"` turns NER off, anything else must be an installed package or a pipeline
    folder. Nothing is ever downloaded."""
    # package metadata only: importing spaCy here would pull in thinc and, through it, torch
    def installed(name: str) -> bool:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            return False
        return True

    if setting in (None, "", "none"):
        return None
    if setting == "auto":
        return next((name for name in SPACY_PIPELINES if installed(name)), None)
    if installed(setting) or Path(setting).is_dir():
        return setting
    raise ValueError(f"CurationConfig.pii_spacy_model is {setting!r}: not an installed spaCy package or a "
                     f"pipeline folder; install it (pip install {setting}) or set it to \"auto\" or \"\"")


def import_presidio():
    """Import presidio_analyzer without its optional NLP back ends: 1 s instead of 6 s with torch around.

    presidio's module-level `try: import transformers` (and thinc's `import torch`) run even when no NLP
    engine is used. A `None` in `sys.modules` makes those imports fail fast, so presidio records the back
    ends as absent; the entries are removed right after presidio's import, so later imports of torch
    elsewhere work as usual. A back end that is already imported is left alone.
    """
    if "presidio_analyzer" in sys.modules:
        return sys.modules["presidio_analyzer"]
    hidden = [name for name in _NLP_BACKENDS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None
    try:
        import presidio_analyzer
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    return presidio_analyzer


@contextlib.contextmanager
def presidio_quiet() -> Iterator[None]:
    """presidio's logger at WARNING for the duration, then as it was.

    Without an NLP model its lemma context enhancer logs "skipping context extraction" at INFO on every
    call, and building an analyzer logs each recognizer it loads.
    """
    logger = logging.getLogger("presidio-analyzer")
    level = logger.level
    if logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


@functools.cache
@presidio_quiet()
def phone_recognizer_regions() -> tuple[str, ...]:
    """The regions presidio's PhoneRecognizer runs libphonenumber's matcher for."""
    import_presidio()
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    return tuple(PhoneRecognizer().supported_regions)


def _offline_email_recognizer():
    """presidio's e-mail recognizer, checking domains against the public suffix list bundled with tldextract.

    presidio's own asks tldextract's shared extractor, which fetches the live list from the internet on
    first use; this one has an extractor of its own that never does.
    """
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    extract = tldextract.TLDExtract(suffix_list_urls=())

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str):
            return extract(pattern_text).fqdn != ""

    return OfflineEmailRecognizer(name="EmailRecognizer")


def build_analyzer(phone_recognizer, context_aware_enhancer=None, spacy_model: str | None = None,
                   ner_entities: tuple[str, ...] = ()):
    """Presidio with the six pattern recognizers (`phone_recognizer` for phone numbers) and, with a
    `spacy_model`, its spaCy NLP engine and NER recognizer for `ner_entities`; else no NLP model."""
    import_presidio()
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        IbanRecognizer,
        IpRecognizer,
        UsSsnRecognizer,
    )

    with presidio_quiet():
        registry = RecognizerRegistry(supported_languages=["en"])
        for recognizer in (_offline_email_recognizer(), phone_recognizer, IpRecognizer(), CreditCardRecognizer(),
                           IbanRecognizer(), UsSsnRecognizer()):
            registry.add_recognizer(recognizer)
        if spacy_model:
            from presidio_analyzer.nlp_engine import SpacyNlpEngine
            from presidio_analyzer.predefined_recognizers import SpacyRecognizer

            registry.add_recognizer(SpacyRecognizer(supported_entities=list(ner_entities)))
            nlp_engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": spacy_model}])
            nlp_engine.load()
        else:
            nlp_engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
        return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"],
                              context_aware_enhancer=context_aware_enhancer)


@functools.cache
def no_context_enhancer():
    """A context enhancer that returns results as they are, for analyzers without an NLP model.

    presidio's default (lemma) enhancer raises a score only when a context word occurs in the lemmas of
    the words around a match; without an NLP model there are no tokens, the surrounding words are `[""]`,
    and no context word is a substring of "". It still deep-copies every result, which is a fifth of
    the analysis time on PII-dense text, so the fast analyzer skips it.
    """
    import_presidio()
    from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer

    class NoContextEnhancer(ContextAwareEnhancer):
        def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):
            return raw_results

    return NoContextEnhancer(context_similarity_factor=0.0, min_score_with_context_similarity=0.0,
                             context_prefix_count=0, context_suffix_count=0)


@functools.cache
@presidio_quiet()
def pii_analyzer():
    """Presidio with just the six pattern recognizers and no NLP model (nothing to download)."""
    import_presidio()
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    return build_analyzer(PhoneRecognizer())


@functools.cache
@presidio_quiet()
def ner_analyzer(spacy_model: str, ner_entities: tuple[str, ...] = ("PERSON",)):
    """Presidio with the six pattern recognizers plus spaCy NER (as commonly used, with a spaCy model)."""
    import_presidio()
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    log.info("pii: NER with spaCy pipeline %s for %s; every text goes through spaCy", spacy_model,
             ", ".join(ner_entities))
    return build_analyzer(PhoneRecognizer(), spacy_model=spacy_model, ner_entities=ner_entities)


def find_pii_with_ner(texts: Sequence[str], score_threshold: float, spacy_model: str,
                      ner_entities: tuple[str, ...]) -> list[list[PiiFinding]]:
    """presidio with spaCy over every whole text, batched through `nlp.pipe`.

    NER can find a name anywhere and the lemma context enhancer reads the words around every pattern
    match, so there is no window to narrow the text to; batching is the speed-up left.
    """
    from presidio_analyzer import BatchAnalyzerEngine

    engine = BatchAnalyzerEngine(ner_analyzer(spacy_model, tuple(ner_entities)))
    with presidio_quiet():
        results = engine.analyze_iterator([t or "" for t in texts], language="en", batch_size=64,
                                          score_threshold=score_threshold)
        return [sorted(as_findings(r)) for r in results]
