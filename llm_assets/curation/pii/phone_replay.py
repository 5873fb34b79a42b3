"""The phone replay: presidio's PhoneRecognizer, finding the same spans with the same scores with far fewer
libphonenumber parses. `phone_recognizer` is its one switch.

presidio runs libphonenumber's matcher once per region (8 of them) on the whole text. The replaying
recognizer runs it line by line, which changes nothing: a candidate never holds a line break, and the
matcher treats one next to a candidate like the start or end of the text. On a line, a first pass
(`Recorder`) records the candidates (with their offsets) the matcher tries when every answer is "no
match": every region's matcher tries exactly these, in this order, until one of its answers is a match. A
region whose answers are all provably "no match" finds nothing on the line and is not run, nor is one that
provably answers as another region does (`Line.regions`). The others get their answers from libphonenumber
(`_parse_and_verify`, once per candidate, offset and region, or once for all regions where the region
cannot matter), and their spans are replayed from the recorded pass (`Matcher.replay`), or the real
matcher runs where the replay cannot tell. The proofs are in `phone_rules`.

It subclasses libphonenumber's matcher and overrides its private `_parse_and_verify` and
`_extract_inner_match`, and reads `_max_tries`: internals that may change in any release. So it is used
only with the libphonenumber version it was tested on (`TESTED_PHONENUMBERS`), and only after a self-check
passes; anywhere else presidio's own recognizer runs (same findings, slower). What it buys, measured with
bench/bench_pii_replay.py: ~3× on the PII step for real documentation crawls and ~4× on the synthetic
forum, whose text is dense in digit runs.
"""

from __future__ import annotations

import functools
import logging
from typing import NamedTuple

from phonenumbers import PhoneNumberMatcher

from llm_assets.curation.pii import phone_rules
from llm_assets.curation.pii.analyzers import import_presidio, presidio_quiet

log = logging.getLogger(__name__)

# the libphonenumber release whose matcher internals the replay was written and tested against
TESTED_PHONENUMBERS = "9.0.43"


@presidio_quiet()
def phone_recognizer(replay: bool = True):
    """The phone recognizer for the fast analyzer: the replaying one where `replay` is set, the installed
    libphonenumber is `TESTED_PHONENUMBERS` and a self-check passes; else presidio's PhoneRecognizer."""
    import phonenumbers

    import_presidio()
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    if not replay:
        return PhoneRecognizer()
    if phonenumbers.__version__ != TESTED_PHONENUMBERS:
        log.warning("pii: libphonenumber %s is not %s, the version the phone replay was tested on; using "
                    "presidio's phone recognizer unchanged (same findings, slower)", phonenumbers.__version__,
                    TESTED_PHONENUMBERS)
        return PhoneRecognizer()
    try:
        recognizer = _replaying_recognizer_class(PhoneRecognizer)()
        # touch every libphonenumber internal the replay uses, so a changed library shows here
        recognizer.analyze("call 212 734 5521 or +44 20 7946 0958", ["PHONE_NUMBER"])
        phone_rules.plain_digits_may_be_valid("2127345521", next(iter(phone_rules.phone_parse_rules().values())))
    except (ImportError, AttributeError, TypeError) as exc:
        log.warning("pii: libphonenumber %s lacks what the phone replay relies on (%s); using presidio's "
                    "phone recognizer unchanged (same findings, slower)", phonenumbers.__version__, exc)
        return PhoneRecognizer()
    return recognizer


class Span(NamedTuple):
    start: int
    end: int


@functools.cache
def _replaying_recognizer_class(base: type) -> type:
    """`base` (presidio's PhoneRecognizer) with `analyze` answered by `phone_spans`."""

    class ReplayingPhoneRecognizer(base):
        def analyze(self, text, entities, nlp_artifacts=None):
            # the region only words the explanation, which findings do not carry
            results = [self._get_recognizer_result(span, text, region, nlp_artifacts)
                       for span, region in phone_spans(text, list(self.supported_regions), self.leniency)]
            return self.remove_duplicates(results)

    return ReplayingPhoneRecognizer


def phone_spans(text: str, regions: list[str], leniency) -> list[tuple[Span, str]]:
    """Each span libphonenumber's matcher finds in `text` for any of `regions`, once, with a region that
    finds it (a span found in several regions gives equal results, which presidio would merge)."""
    results = []
    known = Candidates(regions)
    start = 0
    for text_line in text.split("\n"):
        calls: list = []
        recorder = Recorder(text_line, leniency, calls)
        for _ in recorder:
            pass
        if calls:
            line = Line(text_line, leniency, known)
            spans = set()
            for region in line.regions(calls, regions):
                matcher = Matcher(line, region)
                found = None if recorder.ran_out() else matcher.replay(calls)
                if found is None:
                    found = [(m.start, m.end) for m in matcher]
                for a, b in found:
                    span = Span(start + a, start + b)
                    if span not in spans:
                        spans.add(span)
                        results.append((span, region))
        start += len(text_line) + 1
    return results


class Candidates:
    """What is known of the candidates met in one `analyze` call, by candidate text."""

    def __init__(self, regions):
        self.rules = phone_rules.phone_parse_rules()
        self.plain = phone_rules.plain_candidate()
        self.kinds: dict = {}  # candidate -> (digits, kind)
        # the first region of each parse class gets a bit: the digit strings of national candidates are
        # judged for all of them at once; the other regions, seldom asked, one by one
        firsts = {}
        for region in regions:
            firsts.setdefault(self.rules[region].parse_class, region)
        self.bits = {region: 1 << i for i, region in enumerate(firsts.values())}
        self.judged = [(bit, self.rules[region]) for region, bit in self.bits.items()]
        self.masks: dict = {}  # digits -> bits of the regions where a national number may be valid
        self.valid: dict = {}  # (digits, region without a bit) -> whether it may be valid there

    def kind(self, candidate) -> tuple[str, str]:
        try:
            return self.kinds[candidate]
        except KeyError:
            pass
        m = self.plain.match(candidate)
        if m is None:
            digits, kind = "", "other"
        else:
            digits = phone_rules.NON_DIGITS.sub("", m.group(2))
            kind = "plus" if m.group(1) else "national"
            if kind == "plus" and not phone_rules.plus_parse_is_regional(digits):
                kind = "international"
        self.kinds[candidate] = digits, kind
        return digits, kind

    def mask(self, digits) -> int:
        try:
            return self.masks[digits]
        except KeyError:
            pass
        mask = 0
        n = len(digits)
        for bit, rule in self.judged:
            # the length bound of `plain_digits_may_be_valid`, inlined: most digit strings end here
            if n < rule.min_length and (rule.idd is None or rule.idd.match(digits) is None):
                continue
            if phone_rules.plain_digits_may_be_valid(digits, rule):
                mask |= bit
        self.masks[digits] = mask
        return mask

    def may_be_valid(self, digits, region) -> bool:
        bit = self.bits.get(region)
        if bit is not None:
            return bool(self.mask(digits) & bit)
        try:
            return self.valid[digits, region]
        except KeyError:
            found = self.valid[digits, region] = phone_rules.plain_digits_may_be_valid(digits, self.rules[region])
            return found

class Line:
    """The answers of `_parse_and_verify` on one line, per (candidate, offset, region), as far as known.

    The answer depends on the line, the candidate, its offset and the region only; the region is
    stored as None where the answer provably does not depend on it.
    """

    def __init__(self, text: str, leniency, known: Candidates):
        self.text = text
        self.leniency = leniency
        self.known = known
        self.answers: dict = {}

    def answer(self, matcher, candidate, offset):
        digits, kind = self.known.kind(candidate)
        region = None if kind == "international" else matcher.preferred_region
        key = (candidate, offset, region)
        try:
            return self.answers[key]
        except KeyError:
            pass
        if kind == "national" and not self.known.may_be_valid(digits, region):
            found = None
        else:
            found = PhoneNumberMatcher._parse_and_verify(matcher, candidate, offset)
        self.answers[key] = found
        return found

    def regions(self, calls, regions):
        """The regions to run here: together they find everything every region would find.

        A region where no national candidate may be valid ("silent") answers "no match" to all of
        those, and answers an international candidate as every region does: all silent regions find
        the same numbers (none, unless an international candidate matches), so one of them stands for
        all. A region whose national candidates all parse as in the first region of its parse class
        answers everything as that region does, and is covered by it.
        """
        national = {}
        mask = 0
        international_match = False
        for candidate, offset, _ in calls:
            digits, kind = self.known.kind(candidate)
            if kind == "national":
                national[digits] = None
                mask |= self.known.mask(digits)
            elif kind == "international":
                international_match = international_match or self.answer(
                    PhoneNumberMatcher(self.text, regions[0], leniency=self.leniency), candidate, offset
                ) is not None
            else:  # a plus sign whose parse may depend on the region, or an unusual candidate
                return regions
        chosen, silent = [], []
        for region in regions:
            bit = self.known.bits.get(region)
            if bit is not None:
                valid = mask & bit
            elif all(phone_rules.parses_alike(digits, self.known.rules[region]) for digits in national):
                continue
            else:
                valid = any(self.known.may_be_valid(digits, region) for digits in national)
            (chosen if valid else silent).append(region)
        return chosen + silent[:1] if international_match else chosen

class Recorder(PhoneNumberMatcher):
    """The matcher answering "no match" to everything, noting what it tried: (candidate, offset, whether
    it is an inner match of the candidate before)."""

    def __init__(self, text, leniency, calls: list):
        super().__init__(text, None, leniency=leniency)
        self._calls = calls
        self._inner = False

    def _extract_inner_match(self, candidate, offset):
        self._inner = True
        try:
            return super()._extract_inner_match(candidate, offset)
        finally:
            self._inner = False

    def _parse_and_verify(self, candidate, offset):
        self._calls.append((candidate, offset, self._inner))
        return None

    def ran_out(self) -> bool:
        """Whether the matcher gave up at its budget of tries (or keeps it where we cannot see)."""
        return getattr(self, "_max_tries", 0) <= 0

class Matcher(PhoneNumberMatcher):
    def __init__(self, line: Line, region):
        super().__init__(line.text, region, leniency=line.leniency)
        self._line = line

    def _parse_and_verify(self, candidate, offset):
        return self._line.answer(self, candidate, offset)

    def replay(self, calls) -> list | None:
        """The spans this matcher finds, from the recorded calls, or None where they cannot tell.

        The matcher tries candidates in the recorded order. After a match it goes on searching where
        the candidate ends, as after a "no match" once the candidate's inner matches are tried, so it
        meets the same next candidates and only skips those inner matches. An inner match would make it
        search on from inside the candidate: then only a real run can tell.
        """
        spans: list = []
        matched = False
        for candidate, offset, inner in calls:
            if inner:
                if not matched and self._parse_and_verify(candidate, offset) is not None:
                    return None
                continue
            found = self._parse_and_verify(candidate, offset)
            matched = found is not None
            if matched:
                spans.append((found.start, found.end))
        return spans
