"""filtered_documents: blocklist, NSFW words, toxicity and PII redaction (PII detection itself: test_pii.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
import pytest

from llm_assets.curation import pii
from llm_assets.curation.filters import UrlBlocklist
from llm_assets.curation.filtration import filter_documents
from llm_assets.curation.report import summarize
from llm_assets.profiles import get_profile

CFG = get_profile("smoke").curation

PLAIN = ("The river Aldbourne rises in the chalk hills north of the town and flows south for about forty "
         "kilometres before it joins the estuary. The old mill on its bank was restored by volunteers and "
         "now grinds flour again on summer weekends.")
PII_TEXT = ("Contact the organiser at jane.doe@mailbox.org or call (212) 734-5521 after six.\n"
            "Card on file: 4539 1488 0343 6467. Refunds go to DE89 3704 0044 0532 0130 00.\n"
            "Her social security number 219-09-9999 was leaked from 91.198.174.192 last week.")
PII_STRINGS = ("jane.doe@mailbox.org", "(212) 734-5521", "4539 1488 0343 6467", "DE89 3704 0044 0532 0130 00",
               "219-09-9999", "91.198.174.192")
NSFW_TEXT = ("Watch free porn clips now, hardcore xxx videos and nude webcam girls, uncensored and explicit. "
             "Horny singles near you, naked amateur sex updated daily.")
TOXIC_TEXT = ("user1 wrote:\nyou are a stupid idiot and nobody likes you\nuser2 wrote:\n"
              "shut up you worthless moron\nuser3 wrote:\nwhat a fucking loser, get lost")
MILD_TEXT = PLAIN + "\nDamn, the last stretch of the walk was steep.\n" + PLAIN


def docs_frame(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    """(name, host, text) rows as extracted documents."""
    return pl.DataFrame({
        "warc_record_id": [f"<urn:uuid:{i:04d}>" for i in range(len(rows))],
        "url": [f"https://{host}/{name}" for name, host, _ in rows],
        "host": [host for _, host, _ in rows],
        "title": [name for name, _, _ in rows],
        "text": [text for _, _, text in rows],
        "language": ["en"] * len(rows),
        "language_score": [1.0] * len(rows),
    })


def reason_of(removed: pl.DataFrame, name: str) -> str | None:
    hit = removed.filter(pl.col("url").str.ends_with("/" + name))["reason"]
    return hit[0] if hit.len() else None


def test_blocklist_default_and_custom(tmp_path: Path):
    docs = docs_frame([("a", "www.hotxxxcams.com", PLAIN), ("b", "cdn.pornhub.com", PLAIN),
                       ("c", "www.essex.gov.uk", PLAIN), ("d", "news.example.org", PLAIN),
                       ("e", "example.org.mirror.net", PLAIN)])
    kept, removed = filter_documents(docs, CFG)
    assert reason_of(removed, "a") == reason_of(removed, "b") == "url_blocklist"
    assert set(kept["title"]) == {"c", "d", "e"}

    custom = tmp_path / "block.txt"
    custom.write_text("# my list\nexample.org\n*essex*  # trailing comment\n")
    kept, removed = filter_documents(docs, CFG, blocklist=custom)
    assert set(kept["title"]) == {"a", "b", "e"}
    assert set(removed["reason"]) == {"url_blocklist"}


def test_blocklist_bad_entry_names_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.txt"
    bad.write_text("example.org\nhttp://evil.com/path\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2"):
        UrlBlocklist(bad)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        UrlBlocklist(tmp_path / "missing.txt")


def test_nsfw_and_toxic(tmp_path: Path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing blocked\n")
    docs = docs_frame([("nsfw", "www.site.com", NSFW_TEXT), ("toxic", "www.site.com", TOXIC_TEXT),
                       ("mild", "www.site.com", MILD_TEXT), ("plain", "www.site.com", PLAIN)])
    kept, removed = filter_documents(docs, CFG, blocklist=empty)
    assert reason_of(removed, "nsfw") == "nsfw_words"
    assert reason_of(removed, "toxic") == "toxic"
    assert set(kept["title"]) == {"mild", "plain"}
    # the threshold is a knob: an impossible one keeps the toxic page
    kept, _ = filter_documents(docs, dataclasses.replace(CFG, toxicity_threshold=1.01), blocklist=empty)
    assert "toxic" in set(kept["title"])


def test_pii_redacted_with_typed_placeholders():
    docs = docs_frame([("pii", "forum.site.com", PII_TEXT), ("plain", "www.site.com", PLAIN)])
    kept, removed = filter_documents(docs, CFG)
    assert removed.height == 0
    page = kept.filter(pl.col("title") == "pii").to_dicts()[0]
    for secret in PII_STRINGS:
        assert secret not in page["text"]
    for placeholder in ("<EMAIL_ADDRESS>", "<PHONE_NUMBER>", "<CREDIT_CARD>", "<IBAN_CODE>", "<US_SSN>",
                        "<IP_ADDRESS>"):
        assert placeholder in page["text"], page["text"]
    assert page["pii_count"] == 6
    assert page["pii_types"] == sorted(pii.PII_ENTITIES)
    assert page["text"].startswith("Contact the organiser at <EMAIL_ADDRESS> or call <PHONE_NUMBER> after six.")
    plain = kept.filter(pl.col("title") == "plain").to_dicts()[0]
    assert plain["text"] == PLAIN and plain["pii_count"] == 0 and plain["pii_types"] == []

    kept, removed = filter_documents(docs, dataclasses.replace(CFG, pii_action="drop"))
    assert kept["title"].to_list() == ["plain"]
    assert removed["reason"].to_list() == ["pii"]
    assert "jane.doe@mailbox.org" not in removed["sample"][0]  # samples are redacted too


def test_synthetic_crawl_end_to_end(tmp_path: Path):
    synthetic = pytest.importorskip("llm_assets.synthetic")
    from llm_assets.crawl import read_warc
    from llm_assets.curation.extraction import extract_documents

    synthetic.generate_crawl(tmp_path, seed=5, size=get_profile("smoke").synthetic)
    raw = pl.concat([read_warc(str(p)).records for p in sorted(tmp_path.glob("crawl-*.warc.gz"))])
    labels = pl.read_parquet(tmp_path / "labels.parquet")
    docs, _ = extract_documents(raw, CFG)
    kept, removed = filter_documents(docs, CFG)
    assert kept.height + removed.height == docs.height
    flagged = labels.filter(pl.col("nsfw") | pl.col("toxic"))["warc_record_id"]
    assert not kept["warc_record_id"].is_in(flagged.implode()).any(), "an NSFW or toxic page was kept"
    with_pii = kept.join(labels.select("warc_record_id", "pii"), on="warc_record_id")
    secrets = [(row["url"], s) for row in with_pii.iter_rows(named=True) for s in row["pii"] if s in row["text"]]
    assert with_pii["pii"].list.len().sum() > 0 and secrets == []
    assert (with_pii["pii_count"] >= with_pii["pii"].list.len()).all()
    # everything that is not NSFW/toxic stays
    assert removed.join(labels, on="warc_record_id").filter(~pl.col("nsfw") & ~pl.col("toxic")).height == 0

    summary = summarize("filtered_documents", kept, removed)
    assert summary["kept"] == kept.height and sum(summary["removed_by_reason"].values()) == removed.height
    assert summary["languages"] == {"en": kept.height}
    assert all(len(v) <= 3 for v in summary["removed_samples"].values())
