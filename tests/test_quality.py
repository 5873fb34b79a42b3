"""Quality: each heuristic family fires on a crafted bad page and passes a clean one; the classifier."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import polars as pl
import pytest

from llm_assets.curation.filters import C4Rules, FineWebRules, GopherQuality, GopherRepetition
from llm_assets.curation.quality import (
    MODEL_FILE,
    QualityModelSkipped,
    filter_quality,
    filter_quality_parts,
    quality_scores,
    read_reference_texts,
    train_quality_classifier,
    trained_model,
    training_documents,
)
from llm_assets.profiles import CurationConfig, HeuristicThresholds

# the corpus's reference pages are on the synthetic encyclopedia host, named here as a user would
WIKI = CurationConfig(reference_hosts=("www.wikiverse.org",))

T = HeuristicThresholds()
CLEAN_SENTENCES = [
    "The harbour town of Elmsford lies at the mouth of a slow river that floods every spring.",
    "Fishing boats have used its stone quay since the twelfth century, and a few still do.",
    "In the nineteenth century a railway line reached the town and brought visitors from the capital.",
    "Most of them came for the sea air, the long beach and the cheap rooms above the taverns.",
    "A grammar school was founded in 1874 with money from a wealthy grain merchant.",
    "Its first headmaster, a botanist, planted the garden of rare trees that survives today.",
    "During the war the quay was used to repair naval ships, and the old warehouses were rebuilt.",
    "The population peaked at about twelve thousand people before the shipyard closed in 1968.",
    "Since then tourism and a small university campus have become the largest employers.",
    "The campus specialises in marine biology and runs a research vessel from the old quay.",
    "Every August the town holds a regatta that attracts sailors from across the region.",
    "Local cooks are proud of a fish stew flavoured with fennel, saffron and orange peel.",
    "Critics say that holiday homes have pushed young families out of the historic centre.",
    "The council has answered with a plan to convert empty offices into affordable flats.",
    "Whether the plan will work is still debated in the weekly newspaper and at the market.",
    "Visitors who want a quiet view should climb the hill behind the church at sunset.",
]


def clean_page(seed: int = 0, sentences: int = 16) -> str:
    rng = random.Random(seed)
    chosen = rng.sample(CLEAN_SENTENCES, sentences)
    return "\n".join(" ".join(chosen[i:i + 2]) for i in range(0, sentences, 2))


def test_clean_page_passes_every_family():
    text = clean_page()
    for family in (GopherQuality(T), GopherRepetition(T), C4Rules(T), FineWebRules(T)):
        assert family(text) is None, family.name


@pytest.mark.parametrize(("text", "reason"), [
    ("Just a few words here.", "gopher_quality:too_few_words"),
    (" ".join(["extraordinarilylongwordsonly"] * 60) + " the and", "gopher_quality:mean_word_length"),
    (" ".join(["#tag the word"] * 40), "gopher_quality:symbol_word_ratio"),
    ("\n".join(f"- item {i} of the list with the things" for i in range(30)), "gopher_quality:bullet_lines"),
    ("\n".join(f"and then the story went on for a long while near the river {i}..." for i in range(30)),
     "gopher_quality:ellipsis_lines"),
    (" ".join(["12345 67890 the river of"] * 30), "gopher_quality:alpha_words"),
    (" ".join(f"lorem{i} ipsum{i} dolor{i}" for i in range(40)), "gopher_quality:stop_words"),
])
def test_gopher_quality_fires(text, reason):
    assert GopherQuality(T)(text) == reason


def test_gopher_repetition_fires():
    page = clean_page(1)
    repeated_lines = "\n".join([page.splitlines()[0]] * 10 + page.splitlines()[1:3])
    assert GopherRepetition(T)(repeated_lines).startswith("gopher_repetition:dup_")
    paragraphs = "\n\n".join(["The same paragraph about the harbour and the hills is here."] * 5 + [page])
    assert GopherRepetition(T)(paragraphs) == "gopher_repetition:dup_paragraph_ratio"
    spam = " ".join(["buy cheap"] * 50 + page.split()[:40])
    assert GopherRepetition(T)(spam) == "gopher_repetition:top_2gram_char_ratio"
    dup_ngrams = " ".join(page.split()[:40] * 2)
    assert GopherRepetition(T)(dup_ngrams).startswith("gopher_repetition:dup_")
    assert GopherRepetition(replace(T, max_dup_line_ratio=1, max_dup_line_char_ratio=1,
                                    max_dup_paragraph_ratio=1, max_dup_paragraph_char_ratio=1,
                                    max_top_ngram_char_ratio=(), max_dup_ngram_char_ratio=()))(dup_ngrams) is None


def test_c4_rules():
    page = clean_page(2)
    assert C4Rules(T)(page + "\nLorem ipsum dolor sit amet.") == "c4:lorem_ipsum"
    assert C4Rules(T)(page + "\nvar x = {a: 1};") == "c4:curly_bracket"
    reason, cleaned = C4Rules(T).clean(
        page + "\nPlease enable JavaScript to view this page.\nRead our privacy policy here.\nMenu\nHome page link")
    assert reason is None
    assert cleaned == page
    assert C4Rules(T)("One sentence only here.\nAnd a second one too.") == "c4:too_few_sentences"
    assert C4Rules(T)("Menu\nHome\nContact us") == "c4:no_lines_left"


def test_fineweb_rules():
    page = clean_page(3)
    assert FineWebRules(T)("\n".join(f"Heading number {i} without a stop" for i in range(10))) == \
        "fineweb:line_punct_ratio"
    short = "\n".join(f"Short {i}." for i in range(20)) + "\n" + page
    assert FineWebRules(T)(short) == "fineweb:short_line_ratio"
    duplicated = page + "\n" + page.splitlines()[0]
    assert FineWebRules(T)(duplicated) == "fineweb:char_dup_ratio"
    listy = "\n".join(f"Product {i}\ncosts {i} euros." for i in range(10))
    assert FineWebRules(replace(T, max_short_line_ratio=1.0))(listy) == "fineweb:list_ratio"


def test_overrides_are_checked_by_name():
    cfg = CurationConfig(heuristic_overrides={"min_words": 10})
    assert HeuristicThresholds.from_config(cfg).min_words == 10
    with pytest.raises(ValueError, match="min_wordz"):
        HeuristicThresholds.from_config(CurationConfig(heuristic_overrides={"min_wordz": 1}))


def _corpus(n: int) -> pl.DataFrame:
    rng = random.Random(0)
    encyclopedic = ["born", "university", "studied", "physics", "capital", "population", "founded",
                    "river", "century", "professor", "elected", "published", "research", "located", "the", "of",
                    "and", "with"]
    chatty = ["lol", "deal", "cheap", "click", "buy", "now", "omg", "free", "best", "price", "win",
              "today", "guys", "awesome", "the", "to", "and", "with"]
    rows = []
    for i in range(n):
        reference = i % 2 == 0
        vocab = encyclopedic if reference else chatty
        text = ". ".join(" ".join(rng.choice(vocab) for _ in range(10)) for _ in range(8)) + "."
        rows.append({"warc_record_id": f"<urn:uuid:{i:06d}>", "url": f"https://x/{i}",
                     "host": "www.wikiverse.org" if reference else f"shop{i % 7}.example", "text": text})
    return pl.DataFrame(rows)


def test_classifier_trains_saves_and_scores(tmp_path):
    docs = _corpus(200)
    metrics = train_quality_classifier(docs, tmp_path, WIKI)
    assert (tmp_path / MODEL_FILE).exists()
    assert json.loads((tmp_path / "metrics.json").read_text())["f1"] == metrics["f1"]
    assert metrics["f1"] > 0.9 and metrics["validation_documents"] > 10
    scores = quality_scores(docs["text"].to_list(), tmp_path / MODEL_FILE)
    reference = docs["host"] == "www.wikiverse.org"
    assert scores[reference.to_numpy()].mean() > 0.8 > 0.2 > scores[~reference.to_numpy()].mean()


def test_no_reference_text_skips_the_model_and_keeps_what_the_heuristics_pass(tmp_path):
    docs = _corpus(60).with_columns(pl.lit("a.example").alias("host"))
    (tmp_path / MODEL_FILE).write_bytes(b"a model of an earlier run")
    for cfg in (WIKI, CurationConfig()):  # a reference host absent from the crawl, and none at all
        metrics = train_quality_classifier(docs, tmp_path, cfg)
        assert metrics["skipped"] and metrics["skip_reason"].startswith("no reference text")
        assert json.loads((tmp_path / "metrics.json").read_text())["skipped"] is True
        assert not (tmp_path / MODEL_FILE).exists(), "a stale model must not be used"
        assert trained_model(tmp_path) is None
    cfg = replace(WIKI, heuristic_overrides={"min_words": 20, "c4_min_sentences": 3})
    bad = pl.DataFrame([{"warc_record_id": "<urn:uuid:bad>", "url": "https://bad/", "host": "bad.example",
                         "text": "Too short."}])
    kept, removed = filter_quality(pl.concat([docs, bad]), None, cfg)
    assert kept.height == 60 and kept["quality_score"].is_null().all()
    assert removed["reason"].to_list() == ["gopher_quality:too_few_words"]
    written = {}
    threshold = filter_quality_parts(["a", "b"], {"a": docs, "b": bad}.__getitem__,
                                     lambda p, k, r: written.__setitem__(p, (k, r)), None, cfg, tmp_path / "s")["threshold"]
    assert threshold is None and written["a"][0].height == 60 and written["b"][0].height == 0


def test_too_few_documents_skip_the_model(tmp_path):
    docs = _corpus(200)
    few = pl.concat([docs.filter(pl.col("host") == "www.wikiverse.org").head(3),
                     docs.filter(pl.col("host") != "www.wikiverse.org")])
    metrics = train_quality_classifier(few, tmp_path, WIKI)
    assert metrics["skipped"] and "too few documents" in metrics["skip_reason"] and "3 reference" in metrics[
        "skip_reason"]
    with pytest.raises(QualityModelSkipped, match="too few"):
        training_documents(few, WIKI)
    for empty in (docs.head(0), pl.DataFrame()):  # a crawl where every document was removed before
        assert train_quality_classifier(empty, tmp_path, WIKI)["skipped"]
    assert not train_quality_classifier(few, tmp_path, replace(WIKI, quality_min_train_docs=3))["skipped"]


def _reference_files(tmp_path, texts: list[str]) -> dict[str, object]:
    """The same reference documents as Parquet, JSONL, gzipped JSONL and plain text."""
    import gzip

    parquet = tmp_path / "wiki.parquet"
    pl.DataFrame({"title": [f"t{i}" for i in range(len(texts))], "text": texts}).write_parquet(parquet)
    jsonl = tmp_path / "wiki.jsonl"
    jsonl.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)) + "\n")
    gz = tmp_path / "wiki.jsonl.gz"
    gz.write_bytes(gzip.compress(jsonl.read_bytes()))
    txt = tmp_path / "wiki.txt"
    txt.write_text("\n\n\n".join(texts) + "\n")
    return {"parquet": parquet, "jsonl": jsonl, "jsonl.gz": gz, "txt": txt}


@pytest.mark.parametrize("kind", ["parquet", "jsonl", "jsonl.gz", "txt"])
def test_reference_files_train_the_model_without_a_reference_host(tmp_path, kind):
    corpus = _corpus(400)
    wiki = corpus.filter(pl.col("host") == "www.wikiverse.org")
    # the reference text comes from files only; none of the crawl's hosts is a reference host
    reference_texts = wiki.head(100)["text"].to_list()
    crawl = pl.concat([wiki.tail(100).with_columns(pl.lit("encyclopedia.example").alias("host")),
                       corpus.filter(pl.col("host") != "www.wikiverse.org")])
    path = _reference_files(tmp_path, reference_texts)[kind]
    assert read_reference_texts([path])["text"].to_list() == reference_texts
    cfg = CurationConfig(reference_files=(str(path),))
    metrics = train_quality_classifier(crawl, tmp_path / "model", cfg)
    assert not metrics["skipped"] and metrics["reference_from_files"] == metrics["reference_documents"] == 100
    assert metrics["f1"] > 0.9
    scores = quality_scores(crawl["text"].to_list(), trained_model(tmp_path / "model"))
    encyclopedic = (crawl["host"] == "encyclopedia.example").to_numpy()
    assert scores[encyclopedic].mean() > 0.8 > 0.2 > scores[~encyclopedic].mean()


def test_reference_files_plain_text_blocks_folders_and_errors(tmp_path):
    folder = tmp_path / "ref"
    folder.mkdir()
    (folder / "a.txt").write_text("First document,\nstill the first.\n\n  \nSecond document.\n\n\n")
    (folder / "b.jsonl").write_text('{"text": "Third document."}\n{"text": "  "}\n')
    (folder / "notes.md").write_text("ignored: not a reference file type")
    texts = read_reference_texts([folder])["text"].to_list()
    assert texts == ["First document,\nstill the first.", "Second document.", "Third document."]
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"txt": "no text field"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: expected an object with a string `text`"):
        read_reference_texts([tmp_path / "bad.jsonl"])
    pl.DataFrame({"body": ["x"]}).write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="bad.parquet: Parquet without a `text` column"):
        read_reference_texts([tmp_path / "bad.parquet"])
    with pytest.raises(FileNotFoundError, match="missing.txt does not exist"):
        read_reference_texts([tmp_path / "missing.txt"])
    with pytest.raises(ValueError, match="unknown type"):
        read_reference_texts([folder / "notes.md"])


def test_filter_quality_reasons(tmp_path):
    docs = _corpus(200)
    train_quality_classifier(docs, tmp_path, WIKI)
    cfg = CurationConfig(heuristic_overrides={"min_words": 20, "c4_min_sentences": 3}, quality_max_drop_share=1.0)
    bad = pl.DataFrame([{"warc_record_id": "<urn:uuid:bad>", "url": "https://bad/", "host": "bad.example",
                         "text": "Too short."}])
    kept, removed = filter_quality(pl.concat([docs, bad]), tmp_path, cfg)
    assert "quality_score" in kept.columns
    assert (kept["host"] == "www.wikiverse.org").sum() == 100
    assert (kept["quality_score"] >= cfg.quality_threshold).all()
    reasons = dict(zip(removed["warc_record_id"], removed["reason"], strict=True))
    assert reasons["<urn:uuid:bad>"] == "gopher_quality:too_few_words"
    assert sum(r == "quality_model" for r in reasons.values()) >= 90


def test_model_drops_are_capped_at_the_lowest_share(tmp_path):
    docs = _corpus(200)
    train_quality_classifier(docs, tmp_path, WIKI)
    cfg = CurationConfig(heuristic_overrides={"min_words": 20, "c4_min_sentences": 3}, quality_max_drop_share=0.1)
    kept, removed = filter_quality(docs, tmp_path, cfg)
    model_drops = removed.filter(pl.col("reason") == "quality_model")
    assert 0 < model_drops.height <= 20
    assert model_drops["quality_score"].max() <= kept["quality_score"].min()


def test_parts_give_the_same_result_as_one_frame(tmp_path):
    """Scoring part by part and thresholding over all scores equals filter_quality on the whole frame."""
    docs = _corpus(200)
    train_quality_classifier(docs, tmp_path / "model", WIKI)
    cfg = CurationConfig(heuristic_overrides={"min_words": 20, "c4_min_sentences": 3}, quality_max_drop_share=0.1)
    kept_one, removed_one = filter_quality(docs, tmp_path / "model", cfg)
    parts = {f"p{i}": docs.slice(i * 50, 50) for i in range(4)}
    written = {}
    filter_quality_parts(list(parts), parts.__getitem__, lambda p, k, r: written.__setitem__(p, (k, r)),
                         tmp_path / "model" / MODEL_FILE, cfg, tmp_path / "scratch")
    kept = pl.concat([k for k, _ in written.values()])
    removed = pl.concat([r for _, r in written.values()], how="diagonal_relaxed")
    assert kept.sort("warc_record_id").equals(kept_one.sort("warc_record_id"))
    assert removed.sort("warc_record_id").equals(removed_one.sort("warc_record_id"))
    assert not list((tmp_path / "scratch").iterdir())


def test_training_set_is_capped_and_reads_only_chosen_text(tmp_path):
    docs = _corpus(200)
    files = []
    for i in range(4):
        files.append(tmp_path / f"{i}.parquet")
        docs.slice(i * 50, 50).write_parquet(files[-1])
    lazy = pl.concat([pl.scan_parquet(f) for f in files])
    chosen = training_documents(lazy, replace(WIKI, quality_max_train_docs=30))
    assert chosen["label"].to_list().count(1) == 30 and chosen["label"].to_list().count(0) == 30
    assert chosen["text"].null_count() == 0
    reference = set(docs.filter(pl.col("host") == "www.wikiverse.org")["warc_record_id"])
    assert set(chosen.filter(pl.col("label") == 1)["warc_record_id"]) <= reference
    # the same choice from the same documents in one frame
    assert training_documents(docs, replace(WIKI, quality_max_train_docs=30)).sort("warc_record_id").equals(
        chosen.sort("warc_record_id"))


def test_a_large_crawl_is_cut_to_a_bounded_set_of_candidates(monkeypatch):
    """Over `CANDIDATES_PER_CHOICE` x the cap per class, a hash of the id keeps about that many candidates;
    the chosen set is still balanced and as large as the cap."""
    import llm_assets.curation.quality.classifier as classifier

    docs = _corpus(400)
    cfg = replace(WIKI, quality_max_train_docs=10)
    monkeypatch.setattr(classifier, "CANDIDATES_PER_CHOICE", 3)
    cut = classifier._candidates(docs.lazy(), list(cfg.reference_hosts), cfg.quality_max_train_docs)
    references = cut.filter(pl.col("host").is_in(list(cfg.reference_hosts))).height
    assert 10 <= references <= 60 and 10 <= cut.height - references <= 60, cut.height
    assert set(cut["warc_record_id"]) <= set(docs["warc_record_id"])
    chosen = training_documents(docs.lazy(), cfg)
    assert chosen["label"].sum() == 10 and chosen.height == 20
    monkeypatch.setattr(classifier, "CANDIDATES_PER_CHOICE", 1000)  # nothing cut: every document a candidate
    assert classifier._candidates(docs.lazy(), list(cfg.reference_hosts), 10).height == docs.height
