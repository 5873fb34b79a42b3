"""Fast PII detection with presidio: pre-scan cheaply, let presidio analyze only text that could hold PII.

Presidio's pattern recognizers (email, phone, IP, credit card, IBAN, US SSN) never match across a line break
and treat a neighbouring `\\n` exactly like the start or end of the text (`\\b`, `^`/`$` in MULTILINE mode,
`(?<![\\w:])`, libphonenumber's previous/next-character checks all see "not a word character, not `%`,
not a currency sign"). So the findings on a text are the union of the findings on its lines, and a line can
be analyzed on its own, or joined with other lines by `\\n`, without changing what presidio reports. With
no NLP model there is no context scoring, and duplicates are merged per entity type, so each type can be
analyzed on its own too.

Each entity type has a trigger: a cheap regex, written against its recognizer's patterns, that fires
wherever the recognizer could match (an `@` for e-mail, presidio's five SSN shapes, a case-sensitive IBAN
start, ...). Polars (Rust regex) first picks the texts worth scanning; the lines where a trigger fires go
to presidio for that type only, or just the whitespace-delimited tokens for e-mail and IP, whose patterns
hold no whitespace. Phone numbers, the costly recognizer, get narrower windows: a run of digits (found by
polars with explicit character classes) is a candidate only if libphonenumber's own metadata allows a
valid number that short (a four-digit year is not, unless it could be a German pager number), and the
window stops at the nearest letter that the matcher's pattern can never contain (b, c, d, f, ...), which it
sees as the same neighbour inside or outside the window. Windows are batched across documents and the spans
mapped back. Presidio's phone recognizer is swapped for one that returns the same spans with a fraction of
libphonenumber's work (see `_fast_phone_recognizer_class`): it skips regions and parses that provably find
nothing, and regions that provably find what another one does. The tests compare with presidio on the full
text, and each shortcut with libphonenumber itself.

Known difference: libphonenumber stops after 65,535 rejected candidates in one text; windows (and lines,
for phone numbers) restart that count, so on such a text we can only find more than presidio, never less.
"""

from __future__ import annotations

import array
import bisect
import functools
import importlib.metadata
import itertools
import logging
import re
import string
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import polars as pl
import regex

log = logging.getLogger(__name__)

PII_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN")
# libphonenumber gives up on a text after this many rejected candidates; a batch shorter than this many
# characters cannot reach it, so batching never finds less than one presidio call on the full text would.
_PHONE_MAX_TRIES = 65535
BATCH_CHARS = 60_000


class PiiFinding(NamedTuple):
    entity_type: str
    start: int
    end: int
    score: float


_PHONE_TYPES = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number", "voip",
                "pager", "uan", "voicemail")


def _type_lengths(md) -> list[tuple[object, list[int]]]:
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
    national_regions = {code for region in _phone_recognizer_regions()
                        for code in phonenumbers.region_codes_for_country_code(
                            phonenumbers.country_code_for_region(region))}
    national = [PhoneMetadata.metadata_for_region(r) for r in sorted(national_regions)]
    every = [PhoneMetadata.metadata_for_region(r) for r in phonenumbers.SUPPORTED_REGIONS]
    every += [PhoneMetadata.metadata_for_nongeo_region(c) for c in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS]
    min_national = min(n for md in national for _, lengths in _type_lengths(md) for n in lengths)
    # "+<country code><national number>": the fewest digits of any number written internationally
    sure = min(len(str(md.country_code)) + n for md in every for _, lengths in _type_lengths(md) for n in lengths)
    sure = max(sure, min_national)
    short: dict[int, list[str]] = {}
    for md in national:
        for desc, lengths in _type_lengths(md):
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
    _import_presidio()
    from presidio_analyzer.predefined_recognizers import IbanRecognizer

    if IbanRecognizer().global_regex_flags & regex.IGNORECASE:
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


# --- phone numbers: the recognizer's own matcher, minus parses that provably fail ------------------------
#
# presidio's PhoneRecognizer runs libphonenumber's matcher once per region (8 of them) and merges the spans.
# For each candidate the matcher calls `_parse_and_verify`, which costs a full `parse` plus validation and
# returns a match or None; nothing else in the matcher depends on the region. The fast recognizer answers
# None without parsing where the answer is provably None, parses once, not once per region, where the
# answer provably does not depend on the region, and skips a region on a line where all its answers are
# known to be None. Everything else (candidate search, inner matches, the try budget, presidio's merging
# and post-processing) is the library's own code.
#
# The proofs cover "plain" candidates only: ASCII digits, the matcher's punctuation and one leading plus.
# Every extension form libphonenumber parses needs a letter, '#', '~', ',' or ';', letters are what turns on
# its vanity-number (letter to digit) conversion, and RFC 3966 forms need letters too, so parsing a plain
# candidate only ever sees its digits. Any other candidate is parsed as usual.


class _RegionParse(NamedTuple):
    """What `phonenumbers.parse(candidate, region)` uses of a region's metadata, for a plain candidate."""

    metadata: object  # the region's own: national prefix stripping while no country code is written
    code_metadata: object  # the main region of its country code: stripping after the code is taken off
    idd: re.Pattern | None  # international dialling prefix
    country_code: str
    valid_nsn: re.Pattern  # any number type of any region sharing the code, which every valid number fits
    quick: re.Pattern  # fits every digit string `_plain_digits_may_be_valid` accepts (a cheap first test)
    min_length: int  # fewer digits than this (and no international prefix) cannot be valid
    national_prefix: re.Pattern | None  # the region's national prefix for parsing
    code_national_prefix: re.Pattern | None  # that of the main region of its country code
    # regions alike in all of these parse a national candidate alike, unless its digits start with the
    # country code or the national prefix (see `_parses_alike`)
    parse_class: tuple
    formats: re.Pattern | None  # the code's number formats in order, each ending in an empty group `f<i>`
    prefix_formats: frozenset[str]  # the `f<i>` of the formats that write a national prefix before the number


def _typed_pattern(desc, lengths: list[int]) -> str:
    """A number type's pattern, at one of its possible lengths (what `_is_number_matching_desc` checks)."""
    if not lengths:
        return f"(?:{desc.national_number_pattern})"
    return "(?=" + "|".join(f"\\d{{{n}}}\\Z" for n in lengths) + f")(?:{desc.national_number_pattern})"


@functools.cache
def _phone_parse_rules() -> dict[str, _RegionParse]:
    import phonenumbers
    from phonenumbers import PhoneMetadata

    rules = {}
    for region in _phone_recognizer_regions():
        md = PhoneMetadata.metadata_for_region(region)
        regions = phonenumbers.region_codes_for_country_code(md.country_code)
        code_md = PhoneMetadata.metadata_for_region(phonenumbers.region_code_for_country_code(md.country_code))
        typed = [(desc, lengths) for r in regions for desc, lengths in _type_lengths(PhoneMetadata.metadata_for_region(r))]
        valid = "|".join(_typed_pattern(desc, lengths) for desc, lengths in typed)
        # the national number parse tries is the digits, or what is left of them after a country code or a
        # national prefix is cut off; a transform rule could make it longer, unless it is one group of the
        # prefix match (Brazil's: the number after a carrier code)
        transforms = {md.national_prefix_transform_rule, code_md.national_prefix_transform_rule} - {None, ""}
        shortens = all(re.fullmatch(r"\\[1-9]", rule) for rule in transforms)
        min_length = min(n for _, lengths in typed for n in lengths) if shortens and all(
            lengths for _, lengths in typed) else 0
        # the quick test asks for the general pattern only (one per region, fast to match), which every
        # number of every type fits
        general = "|".join(f"(?:{PhoneMetadata.metadata_for_region(r).general_desc.national_number_pattern})"
                           for r in regions)
        prefix = md.national_prefix_for_parsing or "(?!)"
        code_prefix = code_md.national_prefix_for_parsing or "(?!)"
        idd = f"(?:{md.international_prefix}).*|" if md.international_prefix else ""
        if not md.national_prefix_transform_rule and not code_md.national_prefix_transform_rule:
            # national prefix stripping only cuts off what its pattern matches at the start
            quick = f"{idd}(?:{md.country_code}(?:{prefix})?(?:{code_prefix})?|(?:{prefix})?)(?:{general})"
        else:
            # a transform may rewrite the number, but only where the prefix pattern matches at the start
            quick = f"{idd}{md.country_code}.*|(?:{prefix}).*|(?:{general})"
        rules[region] = _RegionParse(
            metadata=md,
            code_metadata=code_md,
            idd=re.compile(md.international_prefix) if md.international_prefix else None,
            country_code=str(md.country_code),
            valid_nsn=re.compile(valid),
            quick=re.compile(quick),
            min_length=min_length,
            national_prefix=_compiled(md.national_prefix_for_parsing),
            code_national_prefix=_compiled(code_md.national_prefix_for_parsing),
            parse_class=(md.country_code, md.international_prefix, md.national_prefix_for_parsing,
                         md.national_prefix_transform_rule),
            **_number_formats(code_md),
        )
    return rules


def _compiled(pattern: str | None) -> re.Pattern | None:
    return re.compile(pattern) if pattern else None


def _without_national_prefix(number: str, metadata, prefix: re.Pattern | None) -> tuple[str, bool]:
    """What libphonenumber's national prefix stripping leaves of `number`, and whether it cut anything.

    The library is asked only where `prefix` (the metadata's prefix pattern) matches at the start: elsewhere
    it returns the number as it is.
    """
    from phonenumbers.phonenumberutil import _maybe_strip_national_prefix_carrier_code as strip

    if prefix is None or not number or prefix.match(number) is None:
        return number, False
    _, national, stripped = strip(number, metadata)
    return national, stripped


def _number_formats(md) -> dict:
    """How the matcher's national-prefix check picks a number's format, as one regex (see `_national_prefix_ok`).

    libphonenumber takes the first format whose last leading-digits pattern matches the start of the number
    and whose pattern matches all of it; a regex alternation, tried in order under `fullmatch`, does the
    same, and the empty group that closes each branch names the format it took.
    """
    from phonenumbers.phonenumberutil import _formatting_rule_has_first_group_only

    branches, prefix_formats = [], set()
    for i, fmt in enumerate(md.number_format):
        leading = f"(?=(?:{fmt.leading_digits_pattern[-1]}))" if fmt.leading_digits_pattern else ""
        branches.append(f"{leading}(?:{fmt.pattern})(?P<f{i}>)")
        rule = fmt.national_prefix_formatting_rule
        if rule and not fmt.national_prefix_optional_when_formatting and not _formatting_rule_has_first_group_only(rule):
            prefix_formats.add(f"f{i}")
    return {"formats": re.compile("|".join(branches)) if branches else None,
            "prefix_formats": frozenset(prefix_formats)}


@functools.cache
def _phone_recognizer_regions() -> tuple[str, ...]:
    _import_presidio()
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    return tuple(PhoneRecognizer().supported_regions)


@functools.cache
def _plain_candidate() -> re.Pattern:
    """Leading punctuation, optional plus signs, then only ASCII digits and safe punctuation (group 2)."""
    from phonenumbers.phonenumberutil import _PLUS_CHARS, _VALID_PUNCTUATION

    punctuation = re.compile("[" + _VALID_PUNCTUATION + "]")
    # '~' and its full-width form mark extensions; 'x' and the katakana long-vowel mark are letters
    safe = "".join(chr(c) for c in range(0x10000)
                   if punctuation.fullmatch(chr(c)) and not chr(c).isalpha() and chr(c) not in "~\uff5e")
    safe = re.escape(safe)
    return re.compile(f"[{safe}]*([{_PLUS_CHARS}]?)([0-9{safe}]*)\\Z")


_NON_DIGITS = re.compile(r"[^0-9]")


def _plain_digits_may_be_valid(digits: str, rule: _RegionParse) -> bool:
    """False only if parsing these digits (written without a plus) for the region cannot give a match.

    Without a plus sign, `parse` reads an international prefix (then any country code may follow: we do
    not judge those), or the region's own country code written without a plus, or else takes the digits as
    a national number. In the last two cases the national significant number it returns is one of the
    strings below (stripped by libphonenumber's own function, with the metadata parse uses). A match needs
    a valid number: one that fits, at a possible length, the pattern of some number type of some region
    with that country code (`_number_type_helper`). A number dialled nationally must also pass the
    matcher's "national prefix present where the format requires it" check (`_national_prefix_ok`) on
    the number parse would build. A length bound and `quick`, a looser regex version of all this, come first.
    """
    if rule.idd is not None and rule.idd.match(digits):
        return bool(rule.quick.fullmatch(digits))
    if len(digits) < rule.min_length or not rule.quick.fullmatch(digits):
        return False
    if digits.startswith(rule.country_code):
        rest = _without_national_prefix(digits[len(rule.country_code):], rule.metadata, rule.national_prefix)[0]
        if rule.valid_nsn.fullmatch(rest) or rule.valid_nsn.fullmatch(
                _without_national_prefix(rest, rule.code_metadata, rule.code_national_prefix)[0]):
            return True
    national = _without_national_prefix(digits, rule.metadata, rule.national_prefix)[0]
    return any(rule.valid_nsn.fullmatch(n) and _national_prefix_ok(rule, digits, n) for n in {digits, national})


def _national_prefix_ok(rule: _RegionParse, digits: str, national: str) -> bool:
    """The matcher's national-prefix check on the number parse builds from `digits` dialled nationally.

    `_is_national_prefix_present_if_required` asks for a national prefix at the start of the digits only
    when the format the national number would be written in puts one before it (not optionally, not as
    the first group alone). Its national significant number is `national` itself, leading zeros included.
    """
    if rule.formats is None:
        return True
    chosen = rule.formats.fullmatch(national)
    if chosen is None or chosen.lastgroup not in rule.prefix_formats:
        return True
    return _without_national_prefix(digits, rule.code_metadata, rule.code_national_prefix)[1]


def _parses_alike(digits: str, rule: _RegionParse) -> bool:
    """Whether a plain national candidate with these digits parses to the same number in every region of
    the rule's `parse_class`.

    Parsing reads the region's own metadata in two places only: deciding whether digits that start with the
    country code were dialled with it, and cutting off a national prefix (its general description and
    possible lengths judge both). With neither at the start of the digits, all that is left is the
    international prefix, the country code and the prefix pattern, which the class shares; after an
    international prefix, parsing uses the dialled code's own metadata, the same for every region.
    """
    return not digits.startswith(rule.country_code) and not (
        rule.national_prefix is not None and rule.national_prefix.match(digits))


def _plus_parse_is_regional(digits: str) -> bool:
    """Whether parsing "+<digits>" (a plain candidate) may depend on the region it is parsed for.

    parse takes the country code from the digits and never looks at the region, unless the code is unknown
    (it then retries without the plus, for the region); a number this short fails before the code is read.
    """
    from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

    if len(digits) <= 2:
        return False
    return digits[0] == "0" or not any(int(digits[:n]) in COUNTRY_CODE_TO_REGION_CODE for n in (1, 2, 3))


@functools.cache
def _fast_phone_recognizer_class():
    """presidio's PhoneRecognizer, finding the same spans with the same scores with far fewer parses.

    It runs libphonenumber's matcher line by line, which changes nothing: a candidate never holds a line
    break, and the matcher treats one next to a candidate like the start or end of the text. On a line, a
    first pass records the candidates (with their offsets) the matcher tries when every answer is "no match":
    every region's matcher tries exactly these, in this order, until one of its answers is a match. A
    region whose answers are all provably "no match" finds nothing on the line and is not run, nor is one
    that provably answers as another region does (`Line.regions`). The others get their answers from
    libphonenumber (`_parse_and_verify`, once per candidate, offset and region, or once for all regions where
    the region cannot matter), and their spans are replayed from the recorded pass (`Matcher.replay`), or
    the real matcher runs where the replay cannot tell.
    """
    _import_presidio()
    from phonenumbers import PhoneNumberMatcher
    from presidio_analyzer import EntityRecognizer
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    rules = _phone_parse_rules()
    plain = _plain_candidate()
    parse_and_verify = PhoneNumberMatcher._parse_and_verify

    class Candidates:
        """What is known of the candidates met in one `analyze` call, by candidate text."""

        def __init__(self, regions):
            self.kinds: dict = {}  # candidate -> (digits, kind)
            # the first region of each parse class gets a bit: the digit strings of national candidates are
            # judged for all of them at once; the other regions, seldom asked, one by one
            firsts = {}
            for region in regions:
                firsts.setdefault(rules[region].parse_class, region)
            self.bits = {region: 1 << i for i, region in enumerate(firsts.values())}
            self.judged = [(bit, rules[region]) for region, bit in self.bits.items()]
            self.masks: dict = {}  # digits -> bits of the regions where a national number may be valid
            self.valid: dict = {}  # (digits, region without a bit) -> whether it may be valid there

        def kind(self, candidate) -> tuple[str, str]:
            try:
                return self.kinds[candidate]
            except KeyError:
                pass
            m = plain.match(candidate)
            if m is None:
                digits, kind = "", "other"
            else:
                digits = _NON_DIGITS.sub("", m.group(2))
                kind = "plus" if m.group(1) else "national"
                if kind == "plus" and not _plus_parse_is_regional(digits):
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
                # the length bound of `_plain_digits_may_be_valid`, inlined: most digit strings end here
                if n < rule.min_length and (rule.idd is None or rule.idd.match(digits) is None):
                    continue
                if _plain_digits_may_be_valid(digits, rule):
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
                found = self.valid[digits, region] = _plain_digits_may_be_valid(digits, rules[region])
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
                found = parse_and_verify(matcher, candidate, offset)
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
                elif all(_parses_alike(digits, rules[region]) for digits in national):
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

    class Span(NamedTuple):
        start: int
        end: int

    class FastPhoneRecognizer(PhoneRecognizer):
        def analyze(self, text, entities, nlp_artifacts=None):
            results = []
            regions = list(self.supported_regions)
            known = Candidates(regions)
            start = 0
            for text_line in text.split("\n"):
                calls: list = []
                recorder = Recorder(text_line, self.leniency, calls)
                for _ in recorder:
                    pass
                if calls:
                    line = Line(text_line, self.leniency, known)
                    # a span found in several regions gives equal results (same type, span and score), which
                    # presidio merges: make one
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
                                # the region only words the explanation, which findings do not carry
                                results.append(self._get_recognizer_result(span, text, region, nlp_artifacts))
                start += len(text_line) + 1
            return EntityRecognizer.remove_duplicates(results)

    return FastPhoneRecognizer


# NLP back ends presidio imports eagerly when they are installed, though pattern recognizers never use them
_NLP_BACKENDS = ("transformers", "torch", "stanza")


def _import_presidio():
    """Import presidio_analyzer without its optional NLP back ends: 1 s instead of 6 s with torch around.

    presidio's module-level `try: import transformers` (and thinc's `import torch`) run even when no NLP
    engine is used. A `None` in `sys.modules` makes those imports fail fast, so presidio records the back
    ends as absent; the entries are removed afterwards, so later imports of torch elsewhere work as usual.
    A back end that is already imported is left alone.
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


def _build_analyzer(phone_recognizer, context_aware_enhancer=None, spacy_model: str | None = None,
                    ner_entities: tuple[str, ...] = ()):
    """Presidio with the six pattern recognizers (`phone_recognizer` for phone numbers) and, with a
    `spacy_model`, its spaCy NLP engine and NER recognizer for `ner_entities`; else no NLP model."""
    import tldextract.tldextract as tld

    _import_presidio()
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        UsSsnRecognizer,
    )

    # the e-mail recognizer checks domains against the public suffix list: use the snapshot bundled with
    # tldextract instead of fetching the live list from the internet at run time
    tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=())
    # without an NLP model presidio logs "skipping context extraction" at INFO on every call
    logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (EmailRecognizer(), phone_recognizer, IpRecognizer(), CreditCardRecognizer(),
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
def _no_context_enhancer():
    """A context enhancer that returns results as they are, for analyzers without an NLP model.

    presidio's default (lemma) enhancer raises a score only when a context word occurs in the lemmas of
    the words around a match; without an NLP model there are no tokens, the surrounding words are `[""]`,
    and no context word is a substring of "". It still deep-copies every result, which is a fifth of
    the analysis time on PII-dense text, so the fast analyzer skips it.
    """
    _import_presidio()
    from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer

    class NoContextEnhancer(ContextAwareEnhancer):
        def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):
            return raw_results

    return NoContextEnhancer(context_similarity_factor=0.0, min_score_with_context_similarity=0.0,
                             context_prefix_count=0, context_suffix_count=0)


@functools.cache
def pii_analyzer():
    """Presidio with just the six pattern recognizers and no NLP model (nothing to download)."""
    _import_presidio()
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    return _build_analyzer(PhoneRecognizer())


@functools.cache
def fast_pii_analyzer():
    """`pii_analyzer` with a phone recognizer that finds the same numbers with fewer parses.

    Also keeps libphonenumber's compiled metadata patterns (its documented switch): it compiles them by
    pattern string on every use, and the hundreds it needs overflow the `re` module's own cache.
    """
    import phonenumbers

    phonenumbers.enable_pattern_cache()
    try:
        recognizer = _fast_phone_recognizer_class()()
        # touch every libphonenumber internal the fast path uses, so a changed library shows here
        recognizer.analyze("call 212 734 5521 or +44 20 7946 0958", ["PHONE_NUMBER"])
        _plain_digits_may_be_valid("2127345521", next(iter(_phone_parse_rules().values())))
    except (ImportError, AttributeError, TypeError) as exc:
        from presidio_analyzer.predefined_recognizers import PhoneRecognizer

        log.warning("pii: libphonenumber %s lacks what the fast phone path relies on (%s); using presidio's "
                    "phone recognizer unchanged (same findings, slower)", phonenumbers.__version__, exc)
        recognizer = PhoneRecognizer()
    return _build_analyzer(recognizer, _no_context_enhancer())


# English spaCy pipelines that "auto" looks for, most accurate first
SPACY_PIPELINES = ("en_core_web_trf", "en_core_web_lg", "en_core_web_md", "en_core_web_sm")


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


@functools.cache
def ner_analyzer(spacy_model: str, ner_entities: tuple[str, ...] = ("PERSON",)):
    """Presidio with the six pattern recognizers plus spaCy NER (as commonly used, with a spaCy model)."""
    _import_presidio()
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    log.info("pii: NER with spaCy pipeline %s for %s; every text goes through spaCy", spacy_model,
             ", ".join(ner_entities))
    return _build_analyzer(PhoneRecognizer(), spacy_model=spacy_model, ner_entities=ner_entities)


def _find_pii_with_ner(texts: Sequence[str], score_threshold: float, spacy_model: str,
                       ner_entities: tuple[str, ...]) -> list[list[PiiFinding]]:
    """presidio with spaCy over every whole text, batched through `nlp.pipe`.

    NER can find a name anywhere and the lemma context enhancer reads the words around every pattern
    match, so there is no window to narrow the text to; batching is the speed-up left.
    """
    from presidio_analyzer import BatchAnalyzerEngine

    engine = BatchAnalyzerEngine(ner_analyzer(spacy_model, tuple(ner_entities)))
    results = engine.analyze_iterator([t or "" for t in texts], language="en", batch_size=64,
                                      score_threshold=score_threshold)
    return [sorted(_as_findings(r)) for r in results]


def _as_findings(results, offset: int = 0) -> list[PiiFinding]:
    return [PiiFinding(r.entity_type, r.start + offset, r.end + offset, float(r.score)) for r in results]


def find_pii_reference(texts: Sequence[str], score_threshold: float = 0.0, spacy_model: str | None = None,
                       ner_entities: tuple[str, ...] = ("PERSON",)) -> list[list[PiiFinding]]:
    """Presidio as commonly used: the analyzer over every whole text, one call each (the slow reference)."""
    analyzer = ner_analyzer(spacy_model, tuple(ner_entities)) if spacy_model else pii_analyzer()
    out = []
    for text in texts:
        results = analyzer.analyze(text or "", language="en", score_threshold=score_threshold)
        out.append(sorted(_as_findings(results)))
    return out


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


def _batches(texts: Sequence[str], spans: list[tuple[int, int, int]]):
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


def find_pii(texts: Sequence[str], score_threshold: float = 0.0, spacy_model: str | None = None,
             ner_entities: tuple[str, ...] = ("PERSON",)) -> list[list[PiiFinding]]:
    """The findings presidio makes on each whole text, computed on the candidate windows only.

    With a `spacy_model` (see `resolve_spacy_model`) presidio also runs spaCy NER for `ner_entities`, over
    all text.
    """
    if spacy_model:
        return _find_pii_with_ner(texts, score_threshold, spacy_model, tuple(ner_entities))
    analyzer = fast_pii_analyzer()
    findings: list[list[PiiFinding]] = [[] for _ in texts]
    analyzed_chars = 0
    for entity, spans in candidate_windows(texts).items():
        for joined, starts, origins, shifts in _batches(texts, spans):
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
