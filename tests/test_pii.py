"""PII detection: the pre-scanned, replaying path finds exactly what presidio finds on the whole text, each
phone-replay shortcut agrees with libphonenumber itself, and NER and the spaCy setting work."""

from __future__ import annotations

import dataclasses
import random
import re
import string

import polars as pl
import pytest
from test_filtration import PII_TEXT, PLAIN

from llm_assets.curation import pii
from llm_assets.curation.filtration import filter_documents
from llm_assets.curation.pii import phone_replay, phone_rules, prescan
from llm_assets.profiles import CurationConfig, get_profile

CFG = get_profile("smoke").curation


def _near_miss_text(rng: random.Random) -> str:
    """Prose dense with numbers that look like PII, PII itself, and odd separators."""
    words = ["the", "of", "and", "in", "was", "born", "river", "city", "company", "founded", "university", "report", "page", "call", "email", "at"]
    makers = [
        lambda: str(rng.randint(1600, 2030)),
        lambda: str(rng.randint(1, 99999)),
        lambda: f"{rng.randint(0, 999)}.{rng.randint(0, 99)}",
        lambda: f"{rng.randint(1, 28)}/{rng.randint(1, 12)}/{rng.randint(1950, 2024)}",
        lambda: f"16{rng.choice('489')}{rng.randint(0, 99999)}",  # German pager-like short numbers
        lambda: f"({rng.randint(200, 999)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
        lambda: f"+{rng.choice(['1', '44', '49', '33', '91'])} {rng.randint(10, 999)} {rng.randint(100000, 9999999)}",
        lambda: f"{rng.randint(100, 999)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
        lambda: f"{rng.randint(100, 999)}-{rng.randint(100000, 999999)}",
        lambda: f"{rng.randint(100000000, 999999999)}",
        lambda: f"{rng.randint(10000, 99999)}-{rng.randint(1000, 9999)}",
        lambda: ".".join(str(rng.randint(0, 300)) for _ in range(4)),
        lambda: ":".join(f"{rng.randint(0, 65535):x}" for _ in range(rng.choice([3, 8]))) + rng.choice(["", "::"]),
        lambda: "fe80::" + f"{rng.randint(0, 65535):x}",
        lambda: "".join(rng.choices(string.ascii_lowercase, k=6)) + "@" + rng.choice(["mail.com", "x.org", "bad"]),
        lambda: " ".join(f"{rng.randint(1000, 9999)}" for _ in range(4)),
        lambda: rng.choice(["DE", "GB", "NL", "FR"]) + f"{rng.randint(10, 99)} " + " ".join(
            f"{rng.randint(1000, 9999)}" for _ in range(4)),
        lambda: f"{rng.randint(1, 9)} ext. {rng.randint(10, 999)}",
        lambda: f"12:{rng.randint(10, 59)}",
        lambda: f"{rng.choice(words)}{rng.randint(2002000000, 9999999999)}{rng.choice(['', 'x', '%', 'b'])}",
        lambda: f"{rng.choice(['$', '€', '%', '#', '(', '['])}{rng.randint(200, 999)} {rng.randint(200, 999)} 0{rng.randint(100, 199)}",
        lambda: "\uff12\uff11\uff12\uff0d\uff17\uff13\uff14\uff0d\uff15\uff15\uff12\uff11",  # full-width digits
        lambda: f"{rng.randint(200, 999)}\u00a0{rng.randint(200, 999)}\u00a0{rng.randint(1000, 9999)}",
        lambda: f"20{rng.randint(10, 24)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} 1{rng.randint(0, 9)}:{rng.randint(10, 59)}",
        lambda: f"de{rng.randint(10, 99)}{rng.randint(10**17, 10**18 - 1)}",
        lambda: f"{rng.randint(200, 999)}.{rng.randint(200, 999)}.{rng.randint(1000, 9999)}",
        # e-mail next to the token breaks and to what is not one
        lambda: rng.choice(["x", "(", "\u00a0", "\x0b", "\x0c", "\t", "<", "\u200d"]) + rng.choice(
            ["ann.lee@mail.com", "a@b@c.org", "@x.org", "ann@", "bob-o'neil@sub.x-y.co.uk", "élodie@exemple.fr"])
        + rng.choice(["", ")", ".", "\u00a0z", "\x0c", ">"]),
        # IP addresses against the token breaks and what is not one
        lambda: rng.choice(["x", "(", ":", ".", "\x0b", "\x0c", "\t", "\u00a0"]) + rng.choice(
            ["10.0.0.7", "192.168.1.300", "2001:db8::1", "fe80::1%eth0", "::ffff:10.0.0.1", "1:2:3:4:5:6:7:8"])
        + rng.choice(["", ".5", ")", ":", "x", "\x0c", "/24", "\u00a0."]),
        # IBAN-like strings in every case, run on from letters and split unevenly
        lambda: rng.choice(["", "x", "AB"]) + rng.choice(["GB82", "Gb82", "gb82", "DE89"]) + rng.choice(
            [" WEST 1234 5698 7654 32", "west12345698765432", "-3704-0044-0532-0130-00", " 3704 004"]),
        # card numbers that presidio reads with Arabic-Indic and full-width digits after the first
        lambda: "4" + "".join(chr(0x660 + int(c)) if c.isdigit() else c for c in "111 1111 1111 1111"),
        lambda: "5" + "".join(chr(0xFF10 + int(c)) for c in "500005555555559"),
    ]
    lines = []
    for _ in range(rng.randint(2, 8)):
        tokens = [rng.choice(makers)() if rng.random() < 0.25 else rng.choice(words)
                  for _ in range(rng.randint(5, 40))]
        lines.append(rng.choice([" ", " ", ", ", " - ", "\t"]).join(tokens))
    return rng.choice(["\n", "\n\n", "\r\n"]).join(lines)


@pytest.mark.parametrize("threshold", [0.0, CFG.pii_score_threshold])
def test_fast_pii_identical_to_presidio(threshold: float):
    rng = random.Random(7)
    texts = [_near_miss_text(rng) for _ in range(60)] + [PII_TEXT, PLAIN, "", "@", "::", "1648"]
    fast = pii.find_pii(texts, score_threshold=threshold)
    reference = pii.find_pii_reference(texts, score_threshold=threshold)
    assert sum(map(len, reference)) > 100, "the generated text should hold plenty of findings"
    for i, (got, want) in enumerate(zip(fast, reference, strict=True)):
        assert got == want, f"text {i} differs: {texts[i]!r}"


def test_phone_runs_found_alike_by_polars_and_python():
    """The pre-scan takes phone-number runs from polars (Rust) and places them with Python: same runs."""
    rng = random.Random(11)
    texts = [_near_miss_text(rng) for _ in range(40)] + ["\u0661\u0662\u0663 \u0664\u0665", "12--34 x 5 (6)", ""]
    pattern = prescan.phone_run_pattern()
    by_polars = pl.Series(texts).str.extract_all(pattern).to_list()
    assert by_polars == [[m.group() for m in re.finditer(pattern, t)] for t in texts]
    assert sum(map(len, by_polars)) > 200


def test_prescan_skips_ordinary_prose():
    text = "\n".join([PLAIN, "The mill reopened in 1953 with 12 workers.", PLAIN, PLAIN,
                      "Write to mill@aldbourne.org or call (212) 734-5521.", PLAIN])
    windows = pii.candidate_windows([text])
    analyzed = sum(end - start for spans in windows.values() for _, start, end in spans)
    assert windows["EMAIL_ADDRESS"] and windows["PHONE_NUMBER"] and not windows["CREDIT_CARD"]
    assert analyzed < 0.1 * len(text)
    assert pii.find_pii([text]) == pii.find_pii_reference([text])


# Phone numbers as written in the regions presidio validates against and elsewhere: national and
# international formats, dialled with an international prefix or the country code without a plus, with a
# carrier code, an unknown country code, an extension, wide digits, and digit runs that only look like them.
PHONE_SAMPLES = (
    "+44 20 7946 0958", "020 7946 0958", "44 20 7946 0958", "0044 20 7946 0958", "011 44 20 7946 0958",
    "030 12345678", "30 12345678", "+49 30 12345678", "49 30 12345678", "0049 30 12345678", "0151 23456789",
    "01 42 68 53 00", "1 42 68 53 00", "+33 1 42 68 53 00", "33 1 42 68 53 00", "06 12 34 56 78",
    "+972-3-1234567", "03-1234567", "972 3 1234567", "050-123-4567", "00 972 50 123 4567",
    "022 2345 6789", "22 2345 6789", "+91 22 2345 6789", "91 22 2345 6789", "98765 43210", "098765 43210",
    "(11) 2345-6789", "(11) 92345-6789", "0 15 11 2345 6789", "015 11 92345 6789", "+55 11 2345 6789",
    "55 11 2345 6789", "0055 11 2345 6789", "(212) 734-5521", "1-800-555-0199", "1 212 734 5521",
    "+1 801 915 1938", "212.734.5521", "(416) 555-0123", "+1 (416) 555 0123", "011 49 30 12345678",
    "+0 212 734 5521", "+011 44 20 7946 0958", "+00 44 20 7946 0958", "+0044 20 7946 0958", "+28 1234 5678", "+999 1234 5678", "+ 44 20 7946 0958", "++44 20 7946 0958",
    "212-734-5521 ext. 12", "212 734 5521 x12", "020 7946 0958 #22", "\uff12\uff11\uff12 734 5521",
    "212\u00a0734\u00a05521", "020\u20137946\u20130958", "+39 06 6982 1234", "06 6982 1234", "+61 2 9374 4000",
    "(02) 9374 4000", "+81 3-1234-5678", "+7 495 123-45-67", "+86 10 1234 5678", "+1 441 295 1234",
    "46.112.238.164", "5207 3402 3617 1591", "745-43-9965", "2019-05-12 14:30", "12/05/2019", "211-227 (2003)",
    "1648", "16 48", "0119", "0123", "4567", "12345", "123456", "0049", "00", "011", "+1", "+49",
)


def test_fast_pii_phone_formats_identical_to_presidio():
    contexts = ("call me at {} today", "{}", "tel. {}.", "(see {})", "x{}y", "{}%", "$ {} or {} / {}",
                "phone: {}, fax: {}", "from {} to {}")
    texts = [ctx.format(*([number] * ctx.count("{}"))) for number in PHONE_SAMPLES for ctx in contexts]
    texts.append("\n".join(PHONE_SAMPLES))
    fast = pii.find_pii(texts)
    reference = pii.find_pii_reference(texts)
    assert sum(f.entity_type == "PHONE_NUMBER" for found in reference for f in found) > 100
    for i, (got, want) in enumerate(zip(fast, reference, strict=True)):
        assert got == want, f"text {i} differs: {texts[i]!r}"


def _plain_phone_candidates(rng: random.Random) -> list[str]:
    """Digit strings with separators, dialled every way, from every region's example numbers and at random."""
    import phonenumbers

    numbers = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE,
                     phonenumbers.PhoneNumberType.TOLL_FREE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                numbers.append((example.country_code, phonenumbers.national_significant_number(example),
                                phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)))
    out = []
    for code, nsn, national in numbers:
        out += [national, nsn, f"{code} {nsn}", f"00{code}{nsn}", f"011 {code} {nsn}", f"0{nsn}", f"1{nsn}"]
    for _ in range(3000):
        digits = "".join(rng.choices("0123456789", k=rng.randint(2, 17)))
        cuts = sorted(rng.sample(range(1, len(digits)), k=min(len(digits) - 1, rng.randint(0, 3))))
        out.append(rng.choice([" ", "-", ".", ""]).join(digits[a:b] for a, b in zip([0, *cuts], [*cuts, None], strict=True)))
    return out


def test_phone_rules_only_skip_parses_that_fail():
    """Wherever the fast phone path answers without parsing, libphonenumber's own answer is the same."""
    from phonenumbers import PhoneNumberMatcher

    rules = phone_rules.phone_parse_rules()
    plain = phone_rules.plain_candidate()
    rejected = 0
    for candidate in _plain_phone_candidates(random.Random(3)):
        match = plain.match(candidate)
        if match is None or not candidate:  # national numbers written with a wide digit or an extension
            continue
        digits = re.sub(r"\D", "", candidate)
        for region, rule in rules.items():
            if phone_rules.plain_digits_may_be_valid(digits, rule):
                continue
            rejected += 1
            # the candidate alone is the whole text: the matcher's neighbour checks pass
            assert PhoneNumberMatcher(candidate, region, leniency=1)._parse_and_verify(candidate, 0) is None, (
                candidate, region)
    assert rejected > 10_000


def test_national_prefix_check_agrees_with_libphonenumber():
    """`_national_prefix_ok` answers what the matcher's own check answers on the number parse would build."""
    from phonenumbers import CountryCodeSource, PhoneNumber
    from phonenumbers.phonenumbermatcher import _is_national_prefix_present_if_required
    from phonenumbers.phonenumberutil import _maybe_strip_national_prefix_carrier_code as strip
    from phonenumbers.phonenumberutil import _set_italian_leading_zeros_for_phone_number

    answers = set()
    for candidate in _plain_phone_candidates(random.Random(5)):
        digits = re.sub(r"\D", "", candidate)
        if not digits:
            continue
        for rule in phone_rules.phone_parse_rules().values():
            for national in {digits, strip(digits, rule.metadata)[1]} - {""}:
                number = PhoneNumber(country_code=int(rule.country_code), raw_input=digits,
                                     country_code_source=CountryCodeSource.FROM_DEFAULT_COUNTRY)
                _set_italian_leading_zeros_for_phone_number(national, number)
                number.national_number = int(national)
                want = _is_national_prefix_present_if_required(number)
                assert phone_rules.national_prefix_ok(rule, digits, national) == want, (digits, national, rule.country_code)
                answers.add(want)
    assert answers == {True, False}


def test_regions_of_a_parse_class_parse_alike():
    """Where `_parses_alike` says so, libphonenumber parses a candidate to the same number in the regions of
    one class (here the US and Canada), and the matcher answers alike."""
    import phonenumbers
    from phonenumbers import PhoneNumberMatcher

    rules = phone_rules.phone_parse_rules()
    classes: dict = {}
    for region, rule in rules.items():
        classes.setdefault(rule.parse_class, []).append(region)
    twins = [regions for regions in classes.values() if len(regions) > 1]
    assert twins, "the recognizer's regions should include two that share a parse class"

    def parsed(candidate, region):
        try:
            return phonenumbers.parse(candidate, region, keep_raw_input=True)
        except phonenumbers.NumberParseException as exc:
            return exc.error_type

    alike = 0
    for candidate in _plain_phone_candidates(random.Random(6)):
        digits = re.sub(r"\D", "", candidate)
        if not digits or phone_rules.plain_candidate().match(candidate) is None:
            continue
        for first, *others in twins:
            if not phone_rules.parses_alike(digits, rules[first]):
                continue
            alike += 1
            want = PhoneNumberMatcher(candidate, first, leniency=1)._parse_and_verify(candidate, 0)
            for region in others:
                assert parsed(candidate, region) == parsed(candidate, first), (candidate, region)
                got = PhoneNumberMatcher(candidate, region, leniency=1)._parse_and_verify(candidate, 0)
                assert (got is None) == (want is None), (candidate, region)
    assert alike > 1000


def test_phone_numbers_with_a_plus_parse_alike_in_every_region():
    from phonenumbers import PhoneNumberMatcher

    regions = list(phone_rules.phone_parse_rules())
    for candidate in _plain_phone_candidates(random.Random(4))[::3]:
        candidate = "+" + candidate
        if not re.sub(r"\D", "", candidate)[:1].isdigit():
            continue
        answers = {region: PhoneNumberMatcher(candidate, region, leniency=1)._parse_and_verify(candidate, 0)
                   for region in regions}
        spans = {None if a is None else (a.start, a.end) for a in answers.values()}
        assert len(spans) == 1 or phone_rules.plus_parse_is_regional(re.sub(r"\D", "", candidate)), candidate


def test_merge_overlapping_findings():
    spans = [pii.PiiFinding("PHONE_NUMBER", 10, 22, 0.4), pii.PiiFinding("US_SSN", 10, 21, 0.5),
             pii.PiiFinding("EMAIL_ADDRESS", 30, 40, 1.0)]
    assert pii.merge_spans(spans) == [pii.PiiFinding("US_SSN", 10, 22, 0.5),
                                      pii.PiiFinding("EMAIL_ADDRESS", 30, 40, 1.0)]
    assert pii.redact("x" * 45, spans) == "x" * 10 + "<US_SSN>" + "x" * 8 + "<EMAIL_ADDRESS>" + "x" * 5


def test_fast_phone_path_falls_back_when_libphonenumber_changes(monkeypatch, caplog):
    """Without the library internals it reads, the fast path uses presidio's recognizer: same findings."""
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    def metadata_without_a_field():
        raise AttributeError("'PhoneMetadata' object has no attribute 'national_prefix_for_parsing'")

    monkeypatch.setattr(phone_rules, "phone_parse_rules", metadata_without_a_field)
    pii.fast_pii_analyzer.cache_clear()
    try:
        analyzer = pii.fast_pii_analyzer()
        phone = [r for r in analyzer.registry.recognizers if r.supported_entities == ["PHONE_NUMBER"]]
        assert [type(r) for r in phone] == [PhoneRecognizer]
        assert "unchanged" in caplog.text
        texts = ["call me at (212) 734-5521 or +44 20 7946 0958", "no numbers here"]
        assert pii.find_pii(texts) == pii.find_pii_reference(texts)
    finally:
        pii.fast_pii_analyzer.cache_clear()


def test_presidio_import_leaves_torch_alone():
    """presidio (and spaCy settings) load without the NLP back ends; torch still imports normally afterwards."""
    import subprocess
    import sys

    code = ("import sys; from llm_assets.curation import pii; pii.resolve_spacy_model('auto'); pii.pii_analyzer(); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'back end imported'; "
            "import torch; print(torch.ones(2).sum().item())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2.0"


@pytest.fixture(scope="module")
def name_pipeline(tmp_path_factory):
    """A real spaCy pipeline folder whose NER (an entity ruler) knows two names: no model download needed."""
    import spacy

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "PERSON", "pattern": "Marta Oduya"},
                        {"label": "PERSON", "pattern": [{"LOWER": "ole"}, {"LOWER": "brun"}]}])
    folder = tmp_path_factory.mktemp("spacy") / "names"
    nlp.to_disk(folder)
    return str(folder)


def test_ner_with_a_spacy_pipeline_redacts_names_like_presidio(name_pipeline):
    texts = ["Marta Oduya wrote to ole brun at marta@example.org, phone (212) 734-5521.",
             "No names here, just the weather.", ""]
    found = pii.find_pii(texts, 0.3, spacy_model=name_pipeline)
    assert found == pii.find_pii_reference(texts, 0.3, spacy_model=name_pipeline)
    people = [texts[0][f.start:f.end] for f in found[0] if f.entity_type == "PERSON"]
    assert people == ["Marta Oduya", "ole brun"]
    assert {f.entity_type for f in found[0]} == {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER"}
    # entities not asked for are not reported
    assert not [f for f in pii.find_pii(texts, 0.3, spacy_model=name_pipeline, ner_entities=("LOCATION",))[0]
                if f.entity_type == "PERSON"]
    cfg = dataclasses.replace(CurationConfig(), pii_spacy_model=name_pipeline)
    docs = pl.DataFrame({"warc_record_id": ["a"], "url": ["https://x/"], "host": ["x"], "text": [texts[0]]})
    kept, _ = filter_documents(docs, cfg)
    assert kept["text"][0].startswith("<PERSON> wrote to <PERSON> at <EMAIL_ADDRESS>")


def test_spacy_model_setting():
    assert pii.resolve_spacy_model("") is None and pii.resolve_spacy_model("none") is None
    assert pii.resolve_spacy_model("auto") in (None, *pii.SPACY_PIPELINES)
    with pytest.raises(ValueError, match="en_core_web_nonexistent"):
        pii.resolve_spacy_model("en_core_web_nonexistent")


def test_phone_replay_off_on_an_untested_libphonenumber(monkeypatch, caplog):
    """Another libphonenumber version turns the replay off: presidio's recognizer, same findings."""
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    monkeypatch.setattr(phone_replay, "TESTED_PHONENUMBERS", "0.0.0")
    pii.fast_pii_analyzer.cache_clear()
    try:
        phone = [r for r in pii.fast_pii_analyzer().registry.recognizers if r.supported_entities == ["PHONE_NUMBER"]]
        assert [type(r) for r in phone] == [PhoneRecognizer]
        assert "not 0.0.0" in caplog.text
    finally:
        pii.fast_pii_analyzer.cache_clear()
    texts = [_near_miss_text(random.Random(seed)) for seed in range(20)] + ["\n".join(PHONE_SAMPLES)]
    assert pii.find_pii(texts, replay_phones=False) == pii.find_pii(texts)


def test_pii_leaves_process_state_alone():
    """Importing the package and running both analyzers leave tldextract, presidio's logger and sys.modules
    as they were."""
    import subprocess
    import sys

    code = ("import logging, sys, tldextract.tldextract as tld; before = tld.TLD_EXTRACTOR\n"
            "import llm_assets.curation.pii as pii\n"
            "pii.find_pii(['a@b.com +1 212 734 5521']); pii.find_pii_reference(['a@b.com'])\n"
            "assert tld.TLD_EXTRACTOR is before and before.suffix_list_urls, 'tldextract changed'\n"
            "assert logging.getLogger('presidio-analyzer').level == logging.NOTSET, 'logger level changed'\n"
            "assert not [k for k, v in sys.modules.items() if v is None and k in ('torch', 'transformers')]\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
