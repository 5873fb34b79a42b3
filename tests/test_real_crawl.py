"""The chain on real WARC files that the tests record themselves (see tests/realweb.py), with default settings.

A documentation site of real prose is served on 127.0.0.1 with chunked and gzip responses, redirects, a 404,
robots.txt and media, and recorded by warcio's capture_http and by wget. `curate` and `build` must run on
it from raw_crawl to model_card, with the published (not the synthetic world's) thresholds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
import realweb
from conftest import REPO, assert_every_check_ran_and_blocking_passed, make_dagster_home, run_build

from llm_assets.crawl.raw import crawl_to_parquet


def _path(url: str) -> str:
    """`http://127.0.0.1:PORT/guide/x.html` -> `/guide/x.html` (the port changes every session)."""
    return "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"


def _prose_pages(site: realweb.Site) -> list[realweb.Page]:
    """English pages long enough for the published Gopher/C4 thresholds."""
    return [p for p in site.pages if p.lang == "en" and p.words >= 100]


def _curate(warcs: list[Path], out: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LLM_ASSETS_PROFILE", "LLM_ASSETS_CONFIG")}
    return subprocess.run([sys.executable, "-m", "llm_assets", "curate", "--warc", *map(str, warcs),
                           "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


def _summary(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def _urls(folder: Path) -> set[str]:
    files = list(folder.glob("*.parquet"))
    if not files:
        return set()
    return {_path(u) for u in pl.read_parquet(files, columns=["url"])["url"]}


# ---------------------------------------------------------------------------------------------- the data


def test_recorded_crawls_hold_the_real_web_cases(real_crawl, real_site):
    """The fixture's WARC files, as warcio reads them, contain what the tests below rely on."""
    rows = realweb.warc_responses(real_crawl["warcio"])
    by_path = {}
    for row in rows:
        by_path.setdefault(_path(row["url"]), row)
    chunked = {p for p, r in by_path.items() if r["headers"].get("transfer-encoding") == "chunked"}
    gzipped = {p for p, r in by_path.items() if r["headers"].get("content-encoding") == "gzip"}
    assert {p.path for p in real_site.pages if real_site.routes[p.path].chunked} <= chunked
    assert {p.path for p in real_site.pages if real_site.routes[p.path].gzip} <= gzipped
    assert chunked & gzipped, "no response is both chunked and gzip"
    statuses = {r["status"] for r in rows}
    assert {200, 301, 302, 404} <= statuses
    assert "/robots.txt" in by_path and "/private/members.html" not in by_path  # robots.txt honoured
    assert {"/img/logo.png", "/static/site.css", "/static/site.js", "/files/star-chart.pdf"} <= set(by_path)
    assert by_path["/guide/smart-quotes.html"]["body"].decode("cp1252").count("\u201c") >= 2
    # warcio hands back the decoded page: the prose of a chunked+gzip page is there word for word
    page = real_site.by_slug["index"]
    assert real_site.routes[page.path].chunked and real_site.routes[page.path].gzip
    assert page.paragraphs[1].encode() in by_path["/"]["body"]

    media = realweb.warc_responses(real_crawl["no_html"])
    assert media and not any("html" in r["headers"].get("content-type", "") and r["status"] == 200
                             for r in media)


def test_wget_crawl_is_a_wget_warc(real_wget_warc, real_site):
    from warcio.archiveiterator import ArchiveIterator

    types, software = set(), ""
    with open(real_wget_warc, "rb") as handle:
        for record in ArchiveIterator(handle):
            types.add(record.rec_type)
            if record.rec_type == "warcinfo":
                software = record.content_stream().read().decode()
    assert "Wget" in software
    assert {"warcinfo", "request", "response"} <= types
    paths = {_path(r["url"]) for r in realweb.warc_responses(real_wget_warc)}
    assert {p.path for p in real_site.pages} <= paths


# ---------------------------------------------------------------------------------------------- reading


def test_raw_crawl_reads_every_response_as_warcio_does(real_crawl, tmp_path):
    """Our reader keeps every response record of the real crawls, with warcio's decoded body."""
    for kind, warc in real_crawl.items():
        expected = {r["record_id"]: r for r in realweb.warc_responses(warc)}
        stats = crawl_to_parquet(str(warc), tmp_path / f"{kind}.parquet")
        assert not stats["skipped"], (kind, stats["skipped"])
        raw = pl.read_parquet(tmp_path / f"{kind}.parquet")
        assert raw.height == len(expected), (kind, raw.height, len(expected))
        for row in raw.iter_rows(named=True):
            want = expected[row["warc_record_id"]]
            assert row["http_status"] == want["status"], (kind, row["url"])
            assert row["body"] == want["body"], f"{kind}: body of {row['url']} differs from warcio's"


# ---------------------------------------------------------------------------------------------- curate


def test_curate_real_crawl_with_defaults(real_crawl, real_site, tmp_path):
    out = tmp_path / "curated"
    proc = _curate(sorted(real_crawl.values()), out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    summary = _summary(proc)
    assert summary.get("curation_settings") == "published", summary.get("curation_settings")
    for stage in ("raw_crawl", "extracted_documents", "filtered_documents", "deduplicated_documents",
                  "quality_documents", "training_mixture"):
        assert summary[stage]["kept"] > 0, (stage, summary[stage])
    # no reference text in a real crawl by default: the model is skipped and says why; heuristics still run
    assert summary["quality_classifier"].get("skipped") is True, summary["quality_classifier"]
    assert summary["quality_classifier"].get("skip_reason")

    chunked = {p.path for p in real_site.pages if real_site.routes[p.path].chunked}
    gzipped = {p.path for p in real_site.pages if real_site.routes[p.path].gzip}
    prose = {p.path for p in _prose_pages(real_site)}
    raw, extracted = _urls(out / "raw_crawl" / "kept"), _urls(out / "extracted_documents" / "kept")
    assert (chunked | gzipped) <= raw
    missing = sorted(((chunked | gzipped) & prose) - extracted)
    assert not missing, f"chunked/gzip prose pages lost before extraction: {missing}"

    # the published thresholds keep most of the prose; the short notice goes, for too few words
    mixture = pl.read_parquet(list((out / "training_mixture" / "kept").glob("*.parquet")))
    kept = {_path(u) for u in mixture["url"]}
    assert len(kept & prose) >= 0.8 * len(prose), sorted(prose - kept)
    removed = duckdb.sql(f"""select stage, reason, url from read_parquet('{out}/*/removed/*.parquet',
                              union_by_name = true)""").fetchall()
    why = {}
    for stage, reason, url in removed:
        why.setdefault(_path(url), []).append((stage, reason))
    assert any(r.startswith("language") for _, r in why["/guide/fr-accueil.html"]), why["/guide/fr-accueil.html"]
    assert any("few_words" in r or "min_words" in r for _, r in why["/guide/short-note.html"])
    for path in ("/old/getting-started.html", "/latest", "/guide/removed-chapter.html"):
        assert any(r.startswith("http_status") for _, r in why[path]), (path, why.get(path))
    # the edited print copy and its page are one near-duplicate cluster; which of the two survives depends
    # on fetch time and record id (both set by the crawl), so either may be the one removed
    pair = {f"/print/{realweb.EDITED_PRINT}.html", f"/guide/{realweb.EDITED_PRINT}.html"}
    near = duckdb.sql(f"""select r.url, k.url from read_parquet('{out}/deduplicated_documents/removed/*.parquet') r
                          join read_parquet('{out}/*/kept/*.parquet', union_by_name = true) k
                            on k.warc_record_id = r.duplicate_of
                          where r.reason = 'near_duplicate'""").fetchall()
    assert any({_path(a), _path(b)} == pair for a, b in near), sorted((_path(a), _path(b)) for a, b in near)
    assert "/img/logo.png" in why and "/guide/empty.html" in why

    # charsets from the header (windows-1252) and from <meta> only (latin-1) are decoded; PII is redacted
    texts = dict(zip((_path(u) for u in mixture["url"]), mixture["text"], strict=True))
    assert "\u201cForty years under one sky\u201d" in texts["/guide/smart-quotes.html"]
    assert "Besan\u00e7on" in texts["/guide/latin1-notes.html"]
    news = texts["/guide/observer-news.html"]
    assert "observing@backyard-sky.example.org" not in news and "960 123" not in news


def test_curate_crawl_without_html(real_crawl, tmp_path):
    """A crawl of images, scripts and redirects only: every stage runs and is empty, nothing crashes."""
    out = tmp_path / "curated"
    proc = _curate([real_crawl["no_html"]], out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    summary = _summary(proc)
    assert summary["raw_crawl"]["kept"] > 0
    assert summary["extracted_documents"]["kept"] == 0
    assert summary["extracted_documents"]["removed_by_reason"]
    assert summary["training_mixture"]["kept"] == 0


# ---------------------------------------------------------------------------------------------- build

SFT_FACTS = [
    ("How long does it take the eyes to adapt to the dark?", "About twenty to thirty minutes."),
    ("Which star do the pointers of the Plough lead to?", "They lead to Polaris, the pole star."),
    ("What does the first number on binoculars mean?", "It is the magnification."),
    ("What is the brightest star of the night sky?", "Sirius, in the constellation of the Great Dog."),
    ("Why do observers use red light at night?", "Dim red light barely affects dark adapted eyes."),
    ("Where is the best place to look at the Moon?", "Along the terminator, where shadows are long."),
    ("How often does Mars come to opposition?", "About every twenty-six months."),
    ("Which planet shows four bright moons in binoculars?", "Jupiter shows its four large moons."),
    ("What is a meteor?", "A grain of dust burning up in the atmosphere."),
    ("Is a lunar eclipse safe to watch?", "Yes, it is safe to watch with the naked eye."),
    ("What sets the magnification of a telescope?", "The focal length of the eyepiece."),
    ("What is star hopping?", "Finding faint objects by stepping from bright stars."),
]

BENCHMARK = [
    ("Which instrument is best for a beginner to learn the sky?", ["binoculars", "a radio dish", "a prism"], 0),
    ("The Summer Triangle is formed by Vega, Deneb and", ["Altair", "Sirius", "Rigel"], 0),
    ("A planet is at opposition when it is opposite the", ["Sun", "Moon", "pole star"], 0),
    ("Galaxies appear in small telescopes mostly as", ["faint smudges", "bright discs", "red dots"], 0),
    ("The shadow of the Earth falls on the Moon during a", ["lunar eclipse", "meteor shower", "new Moon"], 0),
    ("Telescopes carried outside need time to", ["cool down", "charge", "rotate"], 0),
    ("The rings of Saturn nearly vanish when seen", ["edge on", "at dusk", "in binoculars"], 0),
    ("Sunspots are counted to follow the solar", ["cycle", "eclipse", "wind"], 0),
]


def _sft_rows(site: realweb.Site) -> list[dict]:
    """Fine-tuning rows about the site, Alpaca and chat formats mixed: the handwritten facts, and per chapter
    what it is about and one piece of its advice (answers are sentences of the chapter)."""
    rows = [{"instruction": q, "input": "", "output": a} for q, a in SFT_FACTS]
    for page in site.pages:
        if page.lang != "en" or len(page.paragraphs) < 3:
            continue
        first = page.paragraphs[0].split(". ")[0].rstrip(".") + "."
        advice = page.paragraphs[2].split(". ")[0].rstrip(".") + "."
        rows.append({"instruction": f"What is the chapter '{page.title}' about?", "output": first})
        rows.append({"messages": [{"role": "user", "content": f"Give me one tip from '{page.title}'."},
                                  {"role": "assistant", "content": advice}]})
        rows.append({"instruction": "Summarise this chapter in one sentence.", "input": page.title,
                     "output": first})
    return rows


def _write_inputs(folder: Path, site: realweb.Site) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    sft = folder / "astronomy_sft.jsonl"
    sft.write_text("".join(json.dumps(row) + "\n" for row in _sft_rows(site)))
    bench = folder / "astronomy.jsonl"
    bench.write_text("".join(json.dumps({"query": q, "choices": c, "gold": g}) + "\n" for q, c, g in BENCHMARK))
    return sft, bench


@pytest.fixture(scope="module")
def real_build(tmp_path_factory, real_crawl_dir, real_site):
    """`build --profile default --crawl DIR` on the real crawl, with user SFT and benchmark files and no
    other configuration: the default profile as a user runs it (about 4 minutes on 2 CPU cores)."""
    tmp = tmp_path_factory.mktemp("real_build")
    sft, bench = _write_inputs(tmp / "inputs", real_site)
    home = make_dagster_home(tmp / "dagster_home")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LLM_ASSETS_SFT", str(sft))
        env.setenv("LLM_ASSETS_BENCHMARKS", str(bench))
        env.delenv("LLM_ASSETS_CONFIG", raising=False)
        proc = run_build(home, tmp / "data", "--crawl", str(real_crawl_dir), profile="default", timeout=3600)
    return home, tmp / "data" / "default", proc


def test_build_real_crawl_through_model_card(real_build, real_crawl, monkeypatch):
    from dagster import AssetKey, DagsterInstance

    from llm_assets.definitions import defs

    home, lake, proc = real_build
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    assert "build succeeded" in proc.stdout
    assert "Traceback" not in proc.stdout
    graph = defs.resolve_asset_graph()
    keys = sorted(graph.get_all_asset_keys())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = DagsterInstance.get()
    try:
        for key in keys:
            assert instance.get_latest_materialization_event(key) is not None, f"{key} was not materialized"
        partitions = set(instance.get_dynamic_partitions("warc_files"))
        assert partitions == {p.name.split(".warc")[0] for p in real_crawl.values()}
        assert_every_check_ran_and_blocking_passed(instance, graph)
        shards = instance.get_latest_materialization_event(AssetKey("token_shards")).asset_materialization
        assert shards.metadata["tokens/train"].value > 0
    finally:
        instance.dispose()

    metrics = json.loads((lake / "base_checkpoint" / "metrics.json").read_text())
    assert metrics["tokens_seen"] > 0 and metrics["steps"] > 0
    # the default 1000 steps would be hundreds of passes over this small crawl: the epoch cap cut them
    assert metrics["steps_cut_by_epochs"] and metrics["epochs"] <= 41, metrics
    # the base model learned the real text: its loss is under the unigram entropy of the training tokens
    loss = metrics["val_loss"] if metrics.get("val_loss") is not None else metrics["train_loss"]
    assert loss < metrics["unigram_entropy"], metrics
    # the mixture the model trained on is the site's prose
    mixture = pl.read_parquet(list((lake / "training_mixture").rglob("kept/*.parquet")))
    assert any("terminator" in t for t in mixture["text"])
    results = json.loads((lake / "benchmark_scores" / "results.json").read_text())
    scored = {task for entry in results["models"].values() for task in entry["scores"]}
    assert "astronomy" in scored, results
    assert (lake / "model_card").exists()
