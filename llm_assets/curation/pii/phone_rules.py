"""What libphonenumber's metadata proves about a phone candidate, so the replay can skip parses.

Used only by `phone_replay`. presidio's PhoneRecognizer runs libphonenumber's matcher once per region (8 of
them) and merges the spans. For each candidate the matcher calls `_parse_and_verify`, which costs a full
`parse` plus validation and returns a match or None; nothing else in the matcher depends on the region.
The rules here say where that answer is provably None (`plain_digits_may_be_valid`), provably the same in
two regions (`parses_alike`) or in every region (`plus_parse_is_regional` is False).

The proofs cover "plain" candidates only: ASCII digits, the matcher's punctuation and one leading plus.
Every extension form libphonenumber parses needs a letter, '#', '~', ',' or ';', letters are what turns on
its vanity-number (letter to digit) conversion, and RFC 3966 forms need letters too, so parsing a plain
candidate only ever sees its digits. Any other candidate is parsed as usual.

They read libphonenumber's metadata fields and private helpers; `phone_replay` uses them only with the
libphonenumber version they were tested on, and tests/test_pii.py checks each against the library itself.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from llm_assets.curation.pii.analyzers import phone_recognizer_regions
from llm_assets.curation.pii.prescan import number_type_lengths


class RegionParse(NamedTuple):
    """What `phonenumbers.parse(candidate, region)` uses of a region's metadata, for a plain candidate."""

    metadata: object  # the region's own: national prefix stripping while no country code is written
    code_metadata: object  # the main region of its country code: stripping after the code is taken off
    idd: re.Pattern | None  # international dialling prefix
    country_code: str
    valid_nsn: re.Pattern  # any number type of any region sharing the code, which every valid number fits
    quick: re.Pattern  # fits every digit string `plain_digits_may_be_valid` accepts (a cheap first test)
    min_length: int  # fewer digits than this (and no international prefix) cannot be valid
    national_prefix: re.Pattern | None  # the region's national prefix for parsing
    code_national_prefix: re.Pattern | None  # that of the main region of its country code
    # regions alike in all of these parse a national candidate alike, unless its digits start with the
    # country code or the national prefix (see `parses_alike`)
    parse_class: tuple
    formats: re.Pattern | None  # the code's number formats in order, each ending in an empty group `f<i>`
    prefix_formats: frozenset[str]  # the `f<i>` of the formats that write a national prefix before the number


def _typed_pattern(desc, lengths: list[int]) -> str:
    """A number type's pattern, at one of its possible lengths (what `_is_number_matching_desc` checks)."""
    if not lengths:
        return f"(?:{desc.national_number_pattern})"
    return "(?=" + "|".join(f"\\d{{{n}}}\\Z" for n in lengths) + f")(?:{desc.national_number_pattern})"


@functools.cache
def phone_parse_rules() -> dict[str, RegionParse]:
    import phonenumbers
    from phonenumbers import PhoneMetadata

    rules = {}
    for region in phone_recognizer_regions():
        md = PhoneMetadata.metadata_for_region(region)
        regions = phonenumbers.region_codes_for_country_code(md.country_code)
        code_md = PhoneMetadata.metadata_for_region(phonenumbers.region_code_for_country_code(md.country_code))
        typed = [(desc, lengths) for r in regions for desc, lengths in number_type_lengths(PhoneMetadata.metadata_for_region(r))]
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
        rules[region] = RegionParse(
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
    """How the matcher's national-prefix check picks a number's format, as one regex (see `national_prefix_ok`).

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
def plain_candidate() -> re.Pattern:
    """Leading punctuation, optional plus signs, then only ASCII digits and safe punctuation (group 2)."""
    from phonenumbers.phonenumberutil import _PLUS_CHARS, _VALID_PUNCTUATION

    punctuation = re.compile("[" + _VALID_PUNCTUATION + "]")
    # '~' and its full-width form mark extensions; 'x' and the katakana long-vowel mark are letters
    safe = "".join(chr(c) for c in range(0x10000)
                   if punctuation.fullmatch(chr(c)) and not chr(c).isalpha() and chr(c) not in "~\uff5e")
    safe = re.escape(safe)
    return re.compile(f"[{safe}]*([{_PLUS_CHARS}]?)([0-9{safe}]*)\\Z")


NON_DIGITS = re.compile(r"[^0-9]")


def plain_digits_may_be_valid(digits: str, rule: RegionParse) -> bool:
    """False only if parsing these digits (written without a plus) for the region cannot give a match.

    Without a plus sign, `parse` reads an international prefix (then any country code may follow: we do
    not judge those), or the region's own country code written without a plus, or else takes the digits as
    a national number. In the last two cases the national significant number it returns is one of the
    strings below (stripped by libphonenumber's own function, with the metadata parse uses). A match needs
    a valid number: one that fits, at a possible length, the pattern of some number type of some region
    with that country code (`_number_type_helper`). A number dialled nationally must also pass the
    matcher's "national prefix present where the format requires it" check (`national_prefix_ok`) on
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
    return any(rule.valid_nsn.fullmatch(n) and national_prefix_ok(rule, digits, n) for n in {digits, national})


def national_prefix_ok(rule: RegionParse, digits: str, national: str) -> bool:
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


def parses_alike(digits: str, rule: RegionParse) -> bool:
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


def plus_parse_is_regional(digits: str) -> bool:
    """Whether parsing "+<digits>" (a plain candidate) may depend on the region it is parsed for.

    parse takes the country code from the digits and never looks at the region, unless the code is unknown
    (it then retries without the plus, for the region); a number this short fails before the code is read.
    """
    from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

    if len(digits) <= 2:
        return False
    return digits[0] == "0" or not any(int(digits[:n]) in COUNTRY_CODE_TO_REGION_CODE for n in (1, 2, 3))


