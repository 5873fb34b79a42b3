"""The pre-scan: which stretches of which texts presidio must analyze for each entity type, found cheaply.

Presidio's pattern recognizers never match across a line break and see a neighbouring `\\n` exactly like
the start or end of the text, so a line (or a token, for patterns without whitespace) can be analyzed on
its own, or joined with other lines by `\\n`, and give the findings it gives in the whole text. Each entity
type has a trigger written against its recognizer's own patterns that fires wherever the recognizer could
match; polars (Rust regex) first picks the texts worth scanning, then Python places the windows. Phone
numbers get narrower windows from libphonenumber's metadata (`phone_digit_rule`, `phone_cut_letters`).
`batches` joins the windows into texts of at most `BATCH_CHARS` characters for presidio.
"""

from __future__ import annotations

import array
import functools
import itertools
import re
import string
import sys
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import polars as pl
import regex

from llm_assets.curation.pii.analyzers import (
    PII_ENTITIES,
    import_presidio,
    phone_recognizer_regions,
    presidio_quiet,
)

# libphonenumber gives up on a text after 65,535 rejected candidates; a batch shorter than that many
# characters cannot reach it, so batching never finds less than one presidio call on the full text would.
BATCH_CHARS = 60_000


_PHONE_TYPES = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number", "voip",
                "pager", "uan", "voicemail")


def number_type_lengths(md) -> list[tuple[object, list[int]]]:
    """(number type description, possible national lengths) for each type a region defines."""
    general = [n for n in md.general_desc.possible_length if n > 0]
    out = []
    for name in _PHONE_TYPES:
        desc = getattr(md, name)
        if desc is not None and desc.national_number_pattern is not None:
            out.append((desc, [n for n in (desc.possible_length or ()) if n > 0] or general))
    return out


class PhoneDigitRule(NamedTuple):
    """When a run of digits could hold a number valid for presidio's PhoneRecognizer."""

    min_digits: int  # no valid number has fewer digits
    sure_digits: int  # from here on, every run is analyzed (covers numbers dialled with a country code)
    short_national: dict[int, re.Pattern]  # length -> union of national patterns valid at that length


@functools.cache
def phone_digit_rule() -> PhoneDigitRule:
    """Bounds from libphonenumber's own metadata for the regions the recognizer validates against."""
    import phonenumbers
    from phonenumbers import PhoneMetadata

    # a number parsed for region R is validated against every region sharing R's country code
    national_regions = {code for region in phone_recognizer_regions()
                        for code in phonenumbers.region_codes_for_country_code(
                            phonenumbers.country_code_for_region(region))}
    national = [PhoneMetadata.metadata_for_region(r) for r in sorted(national_regions)]
    every = [PhoneMetadata.metadata_for_region(r) for r in phonenumbers.SUPPORTED_REGIONS]
    every += [PhoneMetadata.metadata_for_nongeo_region(c) for c in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS]
    min_national = min(n for md in national for _, lengths in number_type_lengths(md) for n in lengths)
    # "+<country code><national number>": the fewest digits of any number written internationally
    sure = min(len(str(md.country_code)) + n for md in every for _, lengths in number_type_lengths(md) for n in lengths)
    sure = max(sure, min_national)
    short: dict[int, list[str]] = {}
    for md in national:
        for desc, lengths in number_type_lengths(md):
            for n in lengths:
                if n < sure:
                    short.setdefault(n, []).append(desc.national_number_pattern)
    compiled = {n: re.compile("(?:" + "|".join(f"(?:{p})" for p in pats) + r")\Z") for n, pats in short.items()}
    return PhoneDigitRule(max(1, min_national), sure, compiled)


def _short_run_could_be_phone(digits: str, rule: PhoneDigitRule) -> bool:
    """A run with fewer digits than `sure_digits`: does any stretch of it match a short national number?"""
    for n, pattern in rule.short_national.items():
        for i in range(len(digits) - n + 1):
            if pattern.match(digits, i, i + n):
                return True
    return False


@functools.cache
def phone_cut_letters() -> frozenset[str]:
    """ASCII letters libphonenumber's candidate pattern can never contain (extension labels use the others).

    Such a letter bounds every phone candidate, and the matcher's neighbour check sees the same letter
    whether the text around it is there or not, so a window that ends on one is analyzed exactly as the
    full text would be.
    """
    from phonenumbers.phonenumbermatcher import _PATTERN

    unescaped = re.sub(r"\\.", "", _PATTERN.pattern).lower()
    return frozenset(c for c in string.ascii_letters if c.lower() not in unescaped)


@functools.cache
def entity_triggers() -> dict[str, re.Pattern | regex.Pattern]:
    """Per entity type (but phone and e-mail), a regex that fires on every line its presidio recognizer could
    match in.

    Written against each recognizer's own character classes: `[0-9]` where it uses `[0-9]` (stdlib `re`
    is faster), and the `regex` module where it uses `\\d`, so both agree on what a digit is.
    """
    flags = re.IGNORECASE | re.UNICODE
    return {
        # four dotted numbers (IPv4, also inside the IPv6 forms that embed one), or two colons with at most
        # four alphanumerics between (every IPv6 form has one)
        "IP_ADDRESS": re.compile(r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]|:[^\W_]{0,4}:", flags),
        "CREDIT_CARD": regex.compile(r"\d(?:[- ]?\d){12}", regex.IGNORECASE | regex.UNICODE | regex.VERSION0),
        "IBAN_CODE": re.compile(_iban_trigger()[0], re.UNICODE),
        "US_SSN": re.compile(_SSN_TRIGGER, flags),
    }


# presidio's five US SSN patterns without their word boundaries: 5-4, 3-6, 3-2-4 with dashes, spaces or dots
# (one pattern allows mixing them), and nine digits; the three leading digits are factored out, which makes
# the scan four times faster
_SSN_TRIGGER = r"[0-9]{3}(?:[0-9]{2}-[0-9]{4}|-[0-9]{6}|[- .][0-9]{2}[- .][0-9]{4}|[0-9]{6})"


@functools.cache
def _iban_trigger() -> tuple[str, str]:
    """(Python, polars) patterns for the start of every IBAN match: two capitals, two digits and two groups
    of four capitals or digits.

    presidio matches IBANs case-sensitively (its pattern says `[A-Z]`, its flags lack IGNORECASE), so the
    trigger is case-sensitive and ASCII, the same in both engines. Were IGNORECASE there, any two letters
    (some case-fold onto A-Z) and two digits would have to do.
    """
    import_presidio()
    from presidio_analyzer.predefined_recognizers import IbanRecognizer

    with presidio_quiet():
        flags = IbanRecognizer().global_regex_flags
    if flags & regex.IGNORECASE:
        return r"[^\W\d_]{2}[0-9]{2}", r"[^\s0-9]{2}[0-9]{2}"
    exact = r"[A-Z]{2}[0-9]{2}(?:[ -]?[A-Z0-9]{4}){2}"
    return exact, exact


def _char_class(chars) -> str:
    """A character class of exactly `chars`, spelt as code point ranges that Python's `re` and `regex` and
    Rust's regex (polars) all read the same way."""
    points = sorted({ord(c) for c in chars})
    ranges: list[list[int]] = []
    for p in points:
        if ranges and ranges[-1][1] == p - 1:
            ranges[-1][1] = p
        else:
            ranges.append([p, p])
    return "[" + "".join(f"\\U{a:08X}" if a == b else f"\\U{a:08X}-\\U{b:08X}" for a, b in ranges) + "]"


def _every_character() -> str:
    """Every Unicode code point but the surrogates, as one string (decoded in one go: a join of 1.1 million
    `chr` calls takes four times as long)."""
    four_bytes = next(code for code in "IL" if array.array(code).itemsize == 4)
    points = array.array(four_bytes, itertools.chain(range(0xD800), range(0xE000, 0x110000)))
    return points.tobytes().decode(f"utf-32-{sys.byteorder[0]}e")


@functools.cache
def _phone_run_classes() -> tuple[str, str]:
    """(digit class, separator class) of phone-number runs, spelt out code point by code point.

    A digit is whatever `\\d` matches in `re` (libphonenumber's matcher) or in `regex` (presidio), so the
    class holds every digit either engine sees, whatever Unicode version polars' own `\\d` follows. The
    separators are libphonenumber's punctuation, less the digits.
    """
    from phonenumbers.phonenumberutil import _VALID_PUNCTUATION

    everything = _every_character()
    digits = set(re.findall(r"\d", everything)) | set(regex.findall(r"\d", everything))
    separators = set(re.findall("[" + _VALID_PUNCTUATION + "]", everything, re.IGNORECASE | re.UNICODE)) - digits
    return _char_class(digits), _char_class(separators)


@functools.cache
def phone_run_pattern() -> str:
    """Maximal runs of digits joined by at most four of libphonenumber's separators (its candidate shape).

    Python and polars find the same runs with it: the classes are explicit, and for this pattern Rust's
    leftmost-first matching and Python's backtracking both take the longest run from its first digit.
    """
    digit, separator = _phone_run_classes()
    return f"{digit}(?:{separator}{{0,4}}{digit})*"


def _line_bounds(text: str, pos: int) -> tuple[int, int]:
    end = text.find("\n", pos)
    return text.rfind("\n", 0, pos) + 1, len(text) if end < 0 else end


def _phone_windows(text: str, runs: list[tuple[str, str]], rule: PhoneDigitRule, cut_letters: frozenset[str],
                   short_ok: dict[str, bool]) -> set[tuple[int, int]]:
    """Stretches of `text` that could hold a phone number, each ending on a cut letter or a line break.

    `runs` are the matches of `phone_run_pattern` in `text`, in order, each with its digits (runs shorter
    than `rule.min_digits` characters may be left out); `short_ok` memoizes `_short_run_could_be_phone`
    across texts (the same years and counts recur).
    """
    windows = set()
    pos = 0
    for run, digits in runs:
        # the first occurrence from the end of the last run is where the run was matched: an earlier one
        # would lie in a run at least as long, listed and passed already, as runs are maximal
        run_start = text.find(run, pos)
        pos = run_end = run_start + len(run)
        if len(digits) < rule.min_digits:
            continue
        if len(digits) < rule.sure_digits:
            ok = short_ok.get(digits)
            if ok is None:
                ok = short_ok[digits] = _short_run_could_be_phone(digits, rule)
            if not ok:
                continue
        line_start, line_end = _line_bounds(text, run_start)
        start = run_start
        # the candidate may begin with "(" or "+", and the matcher looks one character further: keep the cut
        while start > line_start and text[start - 1] not in cut_letters:
            start -= 1
        if start > line_start:
            start -= 1
        end = run_end
        while end < line_end and text[end] not in cut_letters:
            end += 1
        if end < line_end:
            end += 1
        windows.add((start, end))
    return windows


@functools.cache
def _phone_separators() -> re.Pattern:
    return re.compile(_phone_run_classes()[1])


@functools.cache
def _column_prefilters() -> dict[str, str]:
    """Per trigger, a polars (Rust regex) pattern that matches every text the trigger can fire on.

    One whole-column pass picks the texts worth scanning in Python. Character classes are widened where
    Rust's and Python's Unicode tables could disagree.
    """
    return {
        "EMAIL_ADDRESS": r"@",
        "IP_ADDRESS": r"[0-9]\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]|:[^:\s]{0,4}:",
        "IBAN_CODE": _iban_trigger()[1],
    }


# Triggers made of digits joined by single separators that phone runs also join (`-`, ` `, `.`): each of
# their matches lies inside one phone run, so a text needs a run with this many digits for them to fire.
_RUN_DIGITS_NEEDED = {"CREDIT_CARD": 13, "US_SSN": 9}


# Characters that split the text into tokens for e-mail and IP windows: presidio's e-mail and IP patterns
# are made of `\w` and ASCII punctuation, so no match holds one, and their `\b` and look-arounds see one
# like a line break (neither a word character, a colon, a dot nor a digit).
TOKEN_BREAKS = " \t\r\n\x0b\x0c"
# a token with an `@`, tried only where a token starts (possessive: nothing to backtrack into)
_EMAIL_TOKEN = re.compile(f"(?<![^{TOKEN_BREAKS}])[^{TOKEN_BREAKS}@]*+@[^{TOKEN_BREAKS}]*+")
_TOKEN_REST = re.compile(f"[^{TOKEN_BREAKS}]*")
# entities whose windows are the tokens their trigger fires in, not whole lines
_TOKEN_WINDOWS = frozenset({"IP_ADDRESS"})


def _token_bounds(text: str, pos: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, pos) + 1
    start = max(text.rfind(c, line_start, pos) for c in TOKEN_BREAKS if c != "\n") + 1
    return max(start, line_start), _TOKEN_REST.match(text, pos).end()


def candidate_windows(texts: Sequence[str]) -> dict[str, list[tuple[int, int, int]]]:
    """Per entity type, the (text index, start, end) of each stretch presidio must analyze for that type.

    E-mail: each whitespace-delimited token holding an `@`; IP: each token where its trigger fires. Phone:
    see `_phone_windows`. Other types: each line where the type's trigger fires.
    """
    triggers = entity_triggers()
    rule = phone_digit_rule()
    cut_letters = phone_cut_letters()
    prefilters = _column_prefilters()
    column = pl.Series("text", list(texts), dtype=pl.Utf8).fill_null("")
    scanned = column.to_frame().select(
        *(pl.col("text").str.contains(pattern).alias(entity) for entity, pattern in prefilters.items()),
        pl.col("text").str.extract_all(phone_run_pattern()).alias("phone runs"))
    # per entity, the texts its trigger is run on
    worth_scanning = {entity: scanned[entity].arg_true().to_list() for entity in prefilters}
    separators = _phone_separators()
    short_ok: dict[str, bool] = {}
    windows: dict[str, list[tuple[int, int, int]]] = {entity: [] for entity in PII_ENTITIES}
    most_digits = {}
    for doc, runs in enumerate(scanned["phone runs"].to_list()):
        if not runs:
            continue
        text = texts[doc]
        # a run of fewer characters has too few digits for any type
        runs = [(run, separators.sub("", run)) for run in runs if len(run) >= rule.min_digits]
        if not runs:
            continue
        most_digits[doc] = max(len(digits) for _, digits in runs)
        windows["PHONE_NUMBER"] += [(doc, a, b) for a, b in sorted(
            _phone_windows(text, runs, rule, cut_letters, short_ok))]
    for entity, needed in _RUN_DIGITS_NEEDED.items():
        worth_scanning[entity] = [doc for doc, most in most_digits.items() if most >= needed]
    windows["EMAIL_ADDRESS"] = [(doc, m.start(), m.end()) for doc in worth_scanning["EMAIL_ADDRESS"]
                                for m in _EMAIL_TOKEN.finditer(texts[doc])]
    for entity, trigger in triggers.items():
        spans = windows[entity]
        bounds = _token_bounds if entity in _TOKEN_WINDOWS else _line_bounds
        for doc in worth_scanning[entity]:
            text = texts[doc]
            match = trigger.search(text)
            while match is not None:
                start, end = bounds(text, match.start())
                spans.append((doc, start, end))
                # the rest of this line (token) is listed already
                match = trigger.search(text, max(end, match.start() + 1))
    return windows


def batches(texts: Sequence[str], spans: list[tuple[int, int, int]]
            ) -> Iterator[tuple[str, list[int], list[int], list[int]]]:
    """Windows joined by line breaks (which no recognizer matches across or sees past), with their origins.

    Yields (joined text, segment starts in it, text index per segment, shift to text position per segment).
    """
    pieces: list[str] = []
    starts: list[int] = []
    origins: list[int] = []
    shifts: list[int] = []
    size = 0
    for doc, start, end in spans:
        if pieces and size + end - start + 1 > BATCH_CHARS:
            yield "\n".join(pieces), starts, origins, shifts
            pieces, starts, origins, shifts, size = [], [], [], [], 0
        starts.append(size)
        origins.append(doc)
        shifts.append(start - size)
        pieces.append(texts[doc][start:end])
        size += end - start + 1
    if pieces:
        yield "\n".join(pieces), starts, origins, shifts

