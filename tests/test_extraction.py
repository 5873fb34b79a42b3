"""extracted_documents: main content and title from hand-written HTML and the smoke synthetic crawl."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from llm_assets.crawl import RAW_SCHEMA
from llm_assets.curation.extraction import DOCUMENT_COLUMNS, extract_documents, extract_pages
from llm_assets.profiles import get_profile

CFG = get_profile("smoke").curation

ARTICLE = (
    "The Lighthouse of Varnholm was built in 1871 to guide fishing boats through the narrow strait. "
    "Its lamp was first fuelled by whale oil, later by kerosene, and since 1954 by electricity. "
    "Visitors can climb the 212 steps to the gallery, from where the whole archipelago is visible "
    "on a clear day."
)
BOILERPLATE_PAGE = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Lighthouse of Varnholm - Coastal Guide</title></head>
<body>
<div class="cookie-banner">We use cookies to improve your experience. Accept all cookies</div>
<header><a class="logo" href="/">Coastal Guide</a></header>
<nav><ul><li><a href="/home">Home</a></li><li><a href="/maps">Maps and Charts</a></li>
<li><a href="/shop">Shop</a></li></ul></nav>
<main><article><h1>Lighthouse of Varnholm</h1><p>{ARTICLE}</p>
<p>The keeper's cottage next to the tower now houses a small museum about the history of the coast
and the families who kept the light burning through storms and wars.</p></article></main>
<footer><p>(c) 2024 Coastal Guide Ltd</p><p>Imprint | Privacy Policy | Terms of Service</p></footer>
</body></html>"""

LEGACY_TEXT = ("The café next door serves a crème brûlée that regulars call “the best in town” — and they’re "
               "right, according to the señora who runs it. We went there twice during our week in the city "
               "and would go again without hesitation.")


def legacy_page(meta: bool) -> bytes:
    head = '<meta charset="windows-1252">' if meta else ""
    html = f"<html><head>{head}<title>Café review</title></head><body><main><p>{LEGACY_TEXT}</p></main></body></html>"
    return html.encode("windows-1252")


GERMAN = ("Der Leuchtturm wurde im Jahr 1871 gebaut und sollte den Fischerbooten den Weg durch die enge "
          "Meerenge weisen. Heute ist er ein Museum, das jedes Jahr von vielen Besuchern besucht wird.")
FRENCH = ("Le phare a été construit en 1871 pour guider les bateaux de pêche à travers le détroit. "
          "Aujourd'hui, il abrite un petit musée que de nombreux visiteurs découvrent chaque été.")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def simple(text: str, lang: str = "en", title: str = "Page") -> bytes:
    return f"<html lang='{lang}'><head><title>{title}</title></head><body><main><p>{text}</p></main></body></html>".encode()


def raw_frame(rows: list[dict]) -> pl.DataFrame:
    base = {"warc_file": "test.warc.gz", "fetch_time": datetime(2024, 1, 1, tzinfo=UTC), "http_status": 200,
            "content_type": "text/html", "charset": "utf-8", "host": "www.example.org"}
    full = [{**base, "warc_record_id": f"<urn:uuid:{i:08d}>", "url": f"https://www.example.org/{r['name']}",
             **{k: v for k, v in r.items() if k != "name"}} for i, r in enumerate(rows)]
    return pl.DataFrame(full, schema=RAW_SCHEMA)


HAND_ROWS = [
    {"name": "article", "body": BOILERPLATE_PAGE.encode()},
    {"name": "legacy-header", "body": legacy_page(meta=False), "charset": "windows-1252"},
    {"name": "legacy-meta", "body": legacy_page(meta=True), "charset": None},
    {"name": "report.pdf", "body": b"%PDF-1.4\n%binary", "content_type": "application/pdf", "charset": None},
    {"name": "logo.png", "body": PNG, "content_type": "image/png", "charset": None},
    {"name": "png-as-html", "body": PNG},
    {"name": "missing", "body": simple("Page not found"), "http_status": 404},
    {"name": "moved", "body": b"", "http_status": 301},
    {"name": "empty-body", "body": b""},
    {"name": "only-nav", "body": b"<html><head><title>x</title></head><body><nav><a href='/'>Home</a></nav></body></html>"},
    {"name": "german", "body": simple(GERMAN, "de", "Leuchtturm")},
    {"name": "french", "body": simple(FRENCH, "fr", "Phare")},
]


@pytest.fixture(scope="module")
def hand_result():
    return extract_documents(raw_frame(HAND_ROWS), CFG)


def by_name(frame: pl.DataFrame, name: str) -> dict:
    rows = frame.filter(pl.col("url").str.ends_with("/" + name)).to_dicts()
    assert len(rows) == 1, f"expected one row for {name}, got {len(rows)}"
    return rows[0]


def test_main_content_kept_boilerplate_gone(hand_result):
    kept, _ = hand_result
    assert tuple(kept.columns) == DOCUMENT_COLUMNS
    page = by_name(kept, "article")
    assert page["title"] == "Lighthouse of Varnholm - Coastal Guide"
    assert "built in 1871 to guide fishing boats" in page["text"]
    assert "keeper's cottage" in page["text"]
    for chrome in ("cookies", "Maps and Charts", "Coastal Guide Ltd", "Privacy Policy", "Shop"):
        assert chrome not in page["text"], f"boilerplate {chrome!r} left in the text"
    assert page["language"] == "en" and page["language_score"] >= CFG.min_language_score


@pytest.mark.parametrize("name", ["legacy-header", "legacy-meta"])
def test_windows_1252_decodes(hand_result, name):
    kept, _ = hand_result
    page = by_name(kept, name)
    assert "“the best in town” — and they’re right" in page["text"]
    assert "café" in page["text"] and "crème brûlée" in page["text"] and "señora" in page["text"]
    assert page["title"] == "Café review"


def test_non_pages_dropped_with_reasons(hand_result):
    kept, removed = hand_result
    reasons = {row["url"].rsplit("/", 1)[1]: row["reason"] for row in removed.to_dicts()}
    assert reasons == {
        "report.pdf": "not_html:application/pdf",
        "logo.png": "not_html:image/png",
        "png-as-html": "binary_body",
        "missing": "http_status:404",
        "moved": "http_status:301",
        "empty-body": "empty_body",
        "only-nav": "empty_text",
        "german": "language:de",
        "french": "language:fr",
    }
    assert set(removed["stage"]) == {"extracted_documents"}
    assert kept.height + removed.height == len(HAND_ROWS)


def test_kept_languages_configurable():
    cfg = dataclasses.replace(CFG, languages=("en", "de"), workers=1)
    kept, removed = extract_documents(raw_frame([r for r in HAND_ROWS if r["name"] in ("german", "french")]), cfg)
    assert kept["language"].to_list() == ["de"]
    assert removed["reason"].to_list() == ["language:fr"]


def test_timeout_drops_page_and_workers_recover():
    big = ("<html><body>" + "<div><p>deeply <b>nested</b> text</p>" * 20000 + "</div>" * 20000
           + "</body></html>").encode()
    results = extract_pages([big, simple(ARTICLE)], ["utf-8", "utf-8"], timeout_s=1e-4, workers=1)
    assert results[0][0] == "extraction_timeout"
    # a generous deadline on a fresh worker extracts the same pages
    results = extract_pages([simple(ARTICLE)], ["utf-8"], timeout_s=30, workers=1)
    assert results[0][0] == "ok" and "Varnholm" in results[0][2]


def test_timeout_reason_in_documents():
    # a page that takes far longer than the deadline: a small page could finish within 0.1 ms and pass
    nested = ("<html><body>" + "<div><p>deeply <b>nested</b> text</p>" * 20000 + "</div>" * 20000
              + "</body></html>").encode()
    cfg = dataclasses.replace(CFG, extraction_timeout_s=1e-4, workers=1)
    kept, removed = extract_documents(raw_frame([{"name": "nested", "body": nested}]), cfg)
    assert kept.height == 0 and removed["reason"].to_list() == ["extraction_timeout"]


def test_trafilatura_selectable():
    cfg = dataclasses.replace(CFG, extractor="trafilatura", workers=1)
    kept, _ = extract_documents(raw_frame(HAND_ROWS[:1]), cfg)
    text = kept["text"][0]
    assert "built in 1871 to guide fishing boats" in text
    assert "Coastal Guide Ltd" not in text and "Accept all cookies" not in text


def test_unknown_extractor_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown extractor 'lynx'"):
        extract_pages([simple(ARTICLE)], ["utf-8"], extractor="lynx")


def test_synthetic_crawl(tmp_path: Path):
    synthetic = pytest.importorskip("llm_assets.synthetic")
    from llm_assets.crawl import read_warc

    synthetic.generate_crawl(tmp_path, seed=3, size=get_profile("smoke").synthetic)
    raw = pl.concat([read_warc(str(p)).records for p in sorted(tmp_path.glob("crawl-*.warc.gz"))])
    labels = pl.read_parquet(tmp_path / "labels.parquet")
    kept, removed = extract_documents(raw, CFG)
    assert kept.height + removed.height == raw.height
    why = removed.join(labels.select("warc_record_id", "category", "language"), on="warc_record_id")
    expected_prefix = {"pdf": "not_html:application/pdf", "image": "not_html:image/", "redirect": "http_status:30",
                       "not_found": "http_status:404"}
    for category, prefix in expected_prefix.items():
        rows = why.filter(pl.col("category") == category)
        assert rows.height > 0, f"no {category} pages in the smoke crawl"
        assert rows["reason"].str.starts_with(prefix).all(), rows.select("url", "reason").to_dicts()
    foreign = labels.filter(pl.col("language").is_in(["de", "fr", "es"]))["warc_record_id"]
    assert not kept["warc_record_id"].is_in(foreign.implode()).any(), "a foreign-language page was kept"
    # nearly every English HTML page survives (a few one-line stubs are too short to identify reliably)
    english = labels.filter((pl.col("language") == "en") & (pl.col("category") != "redirect")
                            & (pl.col("category") != "not_found"))
    kept_english = kept.filter(pl.col("warc_record_id").is_in(english["warc_record_id"].implode()))
    assert kept_english.height >= 0.95 * english.height
    assert (kept["language"] == "en").all()
    legacy = labels.filter(pl.col("charset").is_in(["windows-1252", "iso-8859-1"]))["warc_record_id"]
    legacy_text = kept.filter(pl.col("warc_record_id").is_in(legacy.implode()))["text"]
    assert legacy_text.len() > 0 and legacy_text.str.contains("café").all()
    assert not kept["text"].str.contains("Ã").any(), "mojibake in extracted text"
