"""The synthetic world and crawl: determinism, valid WARC, labels that match the bytes, sound benchmark."""

from __future__ import annotations

import json
import random
import re
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from warcio.archiveiterator import ArchiveIterator

from llm_assets.profiles import get_profile
from llm_assets.synthetic import generate_crawl, is_synthetic_crawl
from llm_assets.synthetic import pii_values as pii_gen
from llm_assets.synthetic.pages import NOISE_RATES

SMOKE = get_profile("smoke").synthetic
ALL_CATEGORIES = {"person", "city", "company", "university", "news", "blog", "forum_post", "spam", "adult",
                  "toxic", "junk", "quiz", "pdf", "image", "redirect", "not_found"}


@pytest.fixture(scope="module")
def crawl(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "crawl"
    generate_crawl(out, seed=7, size=SMOKE, profile_name="smoke")
    return out


@pytest.fixture(scope="module")
def labels(crawl) -> pl.DataFrame:
    return pl.read_parquet(crawl / "labels.parquet")


@pytest.fixture(scope="module")
def records(crawl) -> dict[str, dict]:
    """Every WARC record of the crawl read back with warcio, keyed by WARC-Record-ID."""
    out = {}
    for path in sorted(crawl.glob("crawl-*.warc.gz")):
        with open(path, "rb") as fh:
            for position, rec in enumerate(ArchiveIterator(fh)):
                headers = rec.rec_headers
                entry = {"type": rec.rec_type, "file": path.name, "position": position,
                         "uri": headers.get_header("WARC-Target-URI"),
                         "concurrent": headers.get_header("WARC-Concurrent-To")}
                if rec.http_headers is not None and rec.rec_type == "response":
                    entry["status"] = int(rec.http_headers.get_statuscode())
                    entry["content_type"] = rec.http_headers.get_header("Content-Type")
                    entry["location"] = rec.http_headers.get_header("Location")
                entry["body"] = rec.content_stream().read()
                out[headers.get_header("WARC-Record-ID")] = entry
    return out


def _text(record: dict, charset: str | None) -> str:
    return record["body"].decode(charset or "utf-8")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_same_seed_same_bytes_other_seed_other_world(tmp_path, crawl):
    again = tmp_path / "again"
    summary = generate_crawl(again, seed=7, size=SMOKE, profile_name="smoke")
    for name in summary["files"]:
        assert (again / name).read_bytes() == (crawl / name).read_bytes(), name
    other = tmp_path / "other"
    generate_crawl(other, seed=8, size=SMOKE, profile_name="smoke")
    people = lambda d: [p["name"] for p in json.loads((d / "world.json").read_text())["people"]]  # noqa: E731
    assert people(other) != people(crawl)
    assert (other / "crawl-00000.warc.gz").read_bytes() != (crawl / "crawl-00000.warc.gz").read_bytes()


def test_marker_and_summary(crawl, tmp_path):
    assert is_synthetic_crawl(crawl)
    assert not is_synthetic_crawl(tmp_path)
    marker = json.loads((crawl / "synthetic.json").read_text())
    assert marker["seed"] == 7 and marker["profile"] == "smoke" and marker["generator_version"] >= 1
    assert 150 <= marker["pages"] <= 600, "smoke should be a few hundred pages"
    assert len(list(crawl.glob("crawl-*.warc.gz"))) == SMOKE.warc_files
    assert not list(crawl.glob(".*.tmp")), "temporary files left behind"


def test_warc_structure_and_labels_match_records(records, labels):
    by_file: dict[str, list[dict]] = {}
    for entry in records.values():
        by_file.setdefault(entry["file"], []).append(entry)
    for entries in by_file.values():
        entries.sort(key=lambda e: e["position"])
        assert entries[0]["type"] == "warcinfo"
        assert {e["type"] for e in entries[1:]} == {"request", "response"}
    responses = {rid for rid, e in records.items() if e["type"] == "response"}
    assert responses == set(labels["warc_record_id"])
    assert labels["warc_record_id"].str.contains(r"^<urn:uuid:[0-9a-f-]{36}>$").all()
    for rid, entry in records.items():
        if entry["type"] == "request":
            partner = records[entry["concurrent"]]
            assert partner["type"] == "response" and partner["uri"] == entry["uri"]
            assert partner["concurrent"] == rid
    sites_per_file = labels.group_by("warc_file").agg(pl.col("site").n_unique())
    assert (sites_per_file["site"] >= 4).all(), "each WARC file should mix several sites"
    for row in labels.iter_rows(named=True):
        rec = records[row["warc_record_id"]]
        assert rec["uri"] == row["url"] and rec["file"] == row["warc_file"]
        assert rec["status"] == row["http_status"]
        expected_type = row["content_type"] + (f"; charset={row['charset']}" if row["charset"] else "")
        assert rec["content_type"] == expected_type
        if row["http_status"] in (301, 302):
            assert rec["location"].startswith("https://") and len(rec["body"]) < 300


def test_every_category_present_with_sensible_flags(labels):
    assert set(labels["category"]) >= ALL_CATEGORIES
    assert {"en", "fr", "de", "es"} <= set(labels["language"].drop_nulls())
    main = labels.filter(pl.col("site").is_in(["encyclopedia", "news", "blog"]))
    assert main.height > labels.height * 0.6, "encyclopedia, news and blogs should be the bulk"
    flags = {"nsfw": "adult", "toxic": "toxic", "junk": "junk", "contaminated": "quiz"}
    for flag, category in flags.items():
        assert labels.filter(pl.col(flag))["category"].unique().to_list() == [category]
    assert labels.filter(pl.col("site") == "encyclopedia", pl.col("category") == "person")["quality"].unique().to_list() == ["high"]
    assert set(labels.filter(pl.col("category").is_in(["spam", "junk", "adult"]))["quality"]) == {"low"}
    assert labels.filter(pl.col("category").is_in(["pdf", "image", "redirect"]))["language"].null_count() == \
        labels.filter(pl.col("category").is_in(["pdf", "image", "redirect"])).height


def test_pii_strings_are_in_the_body_and_valid(records, labels):
    import phonenumbers
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    recognizers = [r() for r in (CreditCardRecognizer, EmailRecognizer, IbanRecognizer, IpRecognizer,
                                 PhoneRecognizer, UsSsnRecognizer)]
    with_pii = labels.filter(pl.col("pii").list.len() > 0)
    assert with_pii.height >= 4
    kinds = set()
    for row in with_pii.iter_rows(named=True):
        body = _text(records[row["warc_record_id"]], row["charset"])
        found = set()
        for rec in recognizers:
            found |= {body[r.start:r.end] for r in rec.analyze(body, rec.supported_entities, None)}
        for value in row["pii"]:
            assert value in body, (row["url"], value)
            assert value in found, f"presidio does not recognise {value!r} on {row['url']}"
            if "@" in value:
                kinds.add("email")
            elif value.startswith(("DE", "ES", "NL", "GB")):
                assert pii_gen.iban_valid(value)
                kinds.add("iban")
            elif re.fullmatch(r"\d{3}-\d{2}-\d{4}", value):
                kinds.add("ssn")
            elif re.fullmatch(r"[\d -]{15,19}", value) and len(re.sub(r"\D", "", value)) in (15, 16):
                assert pii_gen.luhn_valid(value)
                kinds.add("card")
            elif re.fullmatch(r"\d+\.\d+\.\d+\.\d+", value):
                kinds.add("ip")
            else:
                assert phonenumbers.is_valid_number(phonenumbers.parse(value, "US")), value
                kinds.add("phone")
    assert {"email", "phone", "ip"} <= kinds


def test_pii_generators_produce_valid_values():
    import phonenumbers

    rng = random.Random(3)
    for _ in range(300):
        assert pii_gen.luhn_valid(pii_gen.credit_card(rng))
        assert pii_gen.iban_valid(pii_gen.iban(rng))
        assert phonenumbers.is_valid_number(phonenumbers.parse(pii_gen.us_phone(rng), "US"))
        area, group, serial = pii_gen.us_ssn(rng).split("-")
        assert area not in ("000", "666") and area < "900" and group != "00" and serial != "0000"
    assert not pii_gen.iban_valid("DE00 3704 0044 0532 0130 00")
    assert not pii_gen.luhn_valid("4539 1488 0343 6468")


def test_duplicates_point_at_originals(records, labels):
    copies = labels.filter(pl.col("duplicate_of").is_not_null())
    assert copies.height >= 2
    assert copies["near_duplicate"].any() and not copies["near_duplicate"].all()
    ids = set(labels["warc_record_id"])
    fetch = dict(zip(labels["warc_record_id"], labels["fetch_time"], strict=True))
    for row in copies.iter_rows(named=True):
        assert row["duplicate_of"] in ids
        assert fetch[row["duplicate_of"]] < row["fetch_time"], "originals are crawled before their copies"
        original = records[row["duplicate_of"]]["body"]
        copy = records[row["warc_record_id"]]["body"]
        if row["near_duplicate"]:
            assert copy != original
            a, b = set(original.split()), set(copy.split())
            assert len(a & b) / len(a | b) > 0.8
        else:
            assert copy == original
    assert labels.filter(pl.col("warc_record_id").is_in(copies["duplicate_of"].to_list()))["duplicate_of"].null_count() \
        == copies["duplicate_of"].n_unique()


def test_legacy_charsets_are_real(records, labels):
    legacy = labels.filter(pl.col("charset").is_in(["windows-1252", "iso-8859-1"]))
    assert set(legacy["charset"]) == {"windows-1252", "iso-8859-1"}
    for row in legacy.iter_rows(named=True):
        body = records[row["warc_record_id"]]["body"]
        text = body.decode(row["charset"])
        assert any(ch in text for ch in "éüñ“’")
        assert f'charset="{row["charset"]}"' in text
        with pytest.raises(UnicodeDecodeError):
            body.decode("utf-8")


def test_binary_bodies_have_real_signatures(records, labels):
    magic = {"application/pdf": b"%PDF-", "image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
    seen = set()
    for row in labels.filter(pl.col("content_type") != "text/html").iter_rows(named=True):
        assert records[row["warc_record_id"]]["body"].startswith(magic[row["content_type"]])
        seen.add(row["content_type"])
    assert seen == set(magic)


def test_every_fact_is_in_the_person_article(crawl, records, labels):
    world = json.loads((crawl / "world.json").read_text())
    articles = labels.filter(pl.col("site") == "encyclopedia", pl.col("category") == "person")
    by_url = dict(zip(articles["url"], articles["warc_record_id"], strict=True))
    for person in world["people"]:
        body = _text(records[by_url["https://www.wikiverse.org/wiki/" + person["name"].replace(" ", "_")]], "utf-8")
        for key in ("birth_city", "birth_year", "university", "field", "employer", "employer_city"):
            assert str(person[key]) in body, (person["name"], key)
        # the same boilerplate line opens every article (line-level dedup has work)
        assert "We use cookies to improve your experience on Wikiverse." in body


def test_benchmark_and_sft(crawl, records, labels):
    items = _jsonl(crawl / "benchmark.jsonl")
    sft = _jsonl(crawl / "sft.jsonl")
    assert {i["split"] for i in items} == {"sft", "heldout"}
    for item in items:
        assert len(item["choices"]) == 4 and len(set(item["choices"])) == 4
        assert 0 <= item["gold"] < 4
        gold = item["choices"][item["gold"]]
        assert len(f"{item['query']} {gold}".split()) >= 13
        assert gold not in item["query"], "the descriptor must not give the answer away"
    sft_people = {i["person"] for i in items if i["split"] == "sft"}
    heldout = {i["person"] for i in items if i["split"] == "heldout"}
    assert sft_people and heldout and not sft_people & heldout
    assert {e["person"] for e in sft if e.get("task") != "reading"} == sft_people
    assert len(sft) >= len(sft_people) * 6 * 3
    # contaminated items are copied verbatim into quiz pages, clean items are not
    quiz_text = " ".join(_text(records[r], "utf-8") for r in labels.filter(pl.col("contaminated"))["warc_record_id"])
    contaminated = [i for i in items if i["contaminated"]]
    assert contaminated
    for item in items:
        assert (item["query"] in quiz_text) == item["contaminated"]
        if item["contaminated"]:
            assert all(choice in quiz_text for choice in item["choices"])


def test_sft_questions_with_clauses_and_short_answers(crawl):
    """Every fine-tuning question is asked bare and with a who-clause; the clause never gives the answer away,
    question rows carry the short answer that their response states, and no fine-tuning question uses a
    benchmark question's wording."""
    from llm_assets.synthetic.questions import BENCHMARK_QUERIES, SFT_QUESTIONS

    world = {p["name"]: p for p in json.loads((crawl / "world.json").read_text())["people"]}
    sft = _jsonl(crawl / "sft.jsonl")
    questions = [row for row in sft if "answer" in row and row.get("task") != "reading"]
    phrasings = sum(len(v) for v in SFT_QUESTIONS.values())
    assert len(questions) == 2 * phrasings * sum(p["sft"] for p in world.values())
    with_clause = [row for row in questions if "," in row["instruction"] or "(" in row["instruction"]]
    assert len(with_clause) == len(questions) // 2
    for row in questions:
        person = world[row["person"]]
        assert row["answer"] == str(person[row["fact"]]) and row["answer"] in row["response"]
        clause = row["instruction"].replace(row["person"], "", 1)
        assert row["answer"] not in clause, row
    templates = {q.replace("{n}", "{who}") for qs in SFT_QUESTIONS.values() for q in qs}
    assert not templates & set(BENCHMARK_QUERIES.values())
    assert not {row["instruction"] for row in sft} & {i["query"] for i in _jsonl(crawl / "benchmark.jsonl")}


def test_reading_questions_are_about_people_on_no_page(crawl, records):
    """The reading questions name people outside the world, whom no page mentions; the facts the answer
    states are in the question, and the answer starts with the name the question asks about."""
    world = json.loads((crawl / "world.json").read_text())
    names = {p["name"] for p in world["people"]}
    sft_people = sum(p["sft"] for p in world["people"])
    reading = [row for row in _jsonl(crawl / "sft.jsonl") if row.get("task") == "reading"]
    assert len(reading) == 4 * sft_people * 6
    fictional = {row["person"] for row in reading}
    assert len(fictional) == 4 * sft_people and not fictional & names
    bodies = b" ".join(record["body"] or b"" for record in records.values())
    for name in fictional:
        assert name.encode() not in bodies and name.encode("cp1252", "replace") not in bodies, name
    for row in reading:
        assert row["answer"] in row["instruction"].split("\n\n")[0]
        assert row["response"].startswith(row["person"]) and row["answer"] in row["response"]


def test_fictional_people_stop_where_the_name_pools_run_out():
    from llm_assets.synthetic.world import _name_capacity, build_world, fictional_people

    world = build_world(random.Random("0:world"), SMOKE)
    people = fictional_people(random.Random(1), world, 10**6)
    assert len(people) == _name_capacity() - len(world.people)
    assert len({p.name for p in people}) == len(people) and not {p.name for p in people} & {p.name for p in world.people}


def test_foreign_pages_are_in_their_language(records, labels):
    from lingua import Language, LanguageDetectorBuilder
    from resiliparse.extract.html2text import extract_plain_text

    detector = LanguageDetectorBuilder.from_languages(
        Language.ENGLISH, Language.FRENCH, Language.GERMAN, Language.SPANISH).build()
    foreign = labels.filter(pl.col("site") == "foreign")
    assert foreign.height >= 3
    for row in foreign.iter_rows(named=True):
        text = extract_plain_text(_text(records[row["warc_record_id"]], row["charset"]), main_content=True)
        assert len(text.split()) >= 40
        assert detector.detect_language_of(text).iso_code_639_1.name.lower() == row["language"]


def test_noise_scales_and_bad_sizes_are_rejected(tmp_path):
    bigger = generate_crawl(tmp_path / "noisy", seed=1, size=replace(SMOKE, noise_scale=2.0))
    smaller = generate_crawl(tmp_path / "quiet", seed=1, size=SMOKE)
    assert bigger["categories"]["spam"] > smaller["categories"]["spam"]
    assert set(NOISE_RATES) >= {"spam", "adult", "toxic", "junk", "quiz"}
    with pytest.raises(ValueError, match="cities"):
        generate_crawl(tmp_path / "bad", seed=1, size=replace(SMOKE, cities=10_000))
    assert not is_synthetic_crawl(tmp_path / "bad")
