"""Deduplication: exact copies, MinHash near copies, host boilerplate lines, deterministic representatives."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from llm_assets.curation.dedup import (
    deduplicate,
    deduplicate_parts,
    minhash_signatures,
    near_duplicate_clusters,
    word_windows,
)
from llm_assets.profiles import CurationConfig
from llm_assets.text import normalized_text, word_ngram_hashes

CFG = CurationConfig()


def _text(rng: random.Random, words: int = 150) -> str:
    vocab = [f"word{i}" for i in range(4000)]
    sentences = []
    while sum(len(s.split()) for s in sentences) < words:
        sentences.append(" ".join(rng.choice(vocab) for _ in range(12)).capitalize() + ".")
    return " ".join(sentences)


def _docs(texts: list[str], hosts: list[str] | None = None, ids: list[str] | None = None) -> pl.DataFrame:
    n = len(texts)
    start = datetime(2024, 5, 1, tzinfo=UTC)
    return pl.DataFrame({
        "warc_record_id": ids or [f"<urn:uuid:{i:08d}>" for i in range(n)],
        "url": [f"https://site{i}.example/page" for i in range(n)],
        "host": hosts or [f"site{i}.example" for i in range(n)],
        "warc_file": ["crawl-0.warc.gz"] * n,
        "fetch_time": [start + timedelta(minutes=i) for i in range(n)],
        "title": [f"Page {i}" for i in range(n)],
        "text": texts,
        "language": ["en"] * n,
        "language_score": [0.99] * n,
    })


def _change_words(text: str, positions: tuple[int, ...]) -> str:
    words = text.split(" ")
    for p in positions:
        words[p] = "replacement"
    return " ".join(words)


def test_ngram_hashes_respect_document_boundaries_and_short_documents():
    texts = pl.Series(["a b c d e f", "a b c", "", "c d e f g"])
    doc, hashes = word_ngram_hashes(texts, 3)
    assert np.bincount(doc, minlength=4).tolist() == [4, 1, 0, 3]
    # "c d e" and "d e f" occur in both doc 0 and doc 3, with identical hashes
    assert len(set(hashes[doc == 0]) & set(hashes[doc == 3])) == 2
    # "a b c" as the only n-gram of doc 1 equals doc 0's first n-gram
    assert hashes[doc == 1][0] == hashes[doc == 0][0]


def test_minhash_finds_three_word_edit_and_not_unrelated():
    rng = random.Random(7)
    original = _text(rng, 200)
    edited = _change_words(original, (10, 80, 150))
    unrelated = _text(rng, 200)
    normalized = pl.DataFrame({"t": [original, edited, unrelated]}).select(normalized_text(pl.col("t")))["t"]
    signatures, has_ngrams = minhash_signatures(normalized, CFG)
    assert signatures.shape == (3, CFG.minhash_bands * CFG.minhash_rows)
    assert has_ngrams.all()
    agreement = (signatures[0] == signatures[1]).mean()
    assert agreement > 0.7
    assert (signatures[0] == signatures[2]).mean() < 0.1
    clusters = near_duplicate_clusters(signatures, has_ngrams, CFG)
    assert clusters[0] == clusters[1] != clusters[2]


def test_deduplicate_reasons_and_duplicate_of():
    rng = random.Random(3)
    originals = [_text(rng) for _ in range(5)]
    texts = originals + [
        originals[1].upper(),                           # exact after normalization
        _change_words(originals[2], (3, 50, 100)),      # near duplicate
    ]
    kept, removed = deduplicate(_docs(texts), CFG)
    assert kept.height == 5
    assert set(kept["warc_record_id"]) == {f"<urn:uuid:{i:08d}>" for i in range(5)}
    by_id = {r["warc_record_id"]: r for r in removed.iter_rows(named=True)}
    assert by_id["<urn:uuid:00000005>"]["reason"] == "exact_duplicate"
    assert by_id["<urn:uuid:00000005>"]["duplicate_of"] == "<urn:uuid:00000001>"
    assert by_id["<urn:uuid:00000006>"]["reason"] == "near_duplicate"
    assert by_id["<urn:uuid:00000006>"]["duplicate_of"] == "<urn:uuid:00000002>"
    assert set(removed["stage"]) == {"deduplicated_documents"}
    assert {"boilerplate_lines_removed", "language", "title"} <= set(kept.columns)


def test_representative_is_earliest_fetch_regardless_of_input_order():
    rng = random.Random(11)
    text = _text(rng)
    docs = _docs([text, text, text], ids=["<urn:uuid:c>", "<urn:uuid:a>", "<urn:uuid:b>"])
    # the same fetch time for all three: the lowest id wins, whatever the row order
    docs = docs.with_columns(pl.lit(datetime(2024, 1, 1, tzinfo=UTC)).alias("fetch_time"))
    for seed in range(3):
        shuffled = docs.sample(fraction=1.0, shuffle=True, seed=seed)
        kept, removed = deduplicate(shuffled, CFG)
        assert kept["warc_record_id"].to_list() == ["<urn:uuid:a>"]
        assert set(removed["duplicate_of"]) == {"<urn:uuid:a>"}
    # an earlier fetch beats a lower id
    earlier = docs.with_columns(
        pl.when(pl.col("warc_record_id") == "<urn:uuid:c>")
        .then(pl.lit(datetime(2023, 1, 1, tzinfo=UTC))).otherwise(pl.col("fetch_time")).alias("fetch_time"))
    kept, _ = deduplicate(earlier, CFG)
    assert kept["warc_record_id"].to_list() == ["<urn:uuid:c>"]


def test_host_boilerplate_lines_removed_and_boilerplate_only_documents_dropped():
    rng = random.Random(5)
    header, footer = "Home | News | Sports | Contact", "We use cookies to improve your experience."
    texts = [f"{header}\n{_text(rng, 60)}\n{footer}" for _ in range(6)] + [f"{header}\n{footer}"]
    texts.append(f"{header}\n{_text(rng, 60)}")  # same header on another host is not boilerplate there
    hosts = ["news.example"] * 7 + ["other.example"]
    kept, removed = deduplicate(_docs(texts, hosts=hosts), CFG)
    news = kept.filter(pl.col("host") == "news.example")
    assert news.height == 6
    assert news["boilerplate_lines_removed"].to_list() == [2] * 6
    assert not news["text"].str.contains("cookies").any()
    assert not news["text"].str.contains("Sports").any()
    other = kept.filter(pl.col("host") == "other.example")
    assert other["text"].str.starts_with(header).all()
    assert removed.filter(pl.col("reason") == "boilerplate_only")["warc_record_id"].to_list() == [
        "<urn:uuid:00000006>"]


def test_deduplicate_rejects_missing_columns():
    try:
        deduplicate(pl.DataFrame({"text": ["a"]}), CFG)
    except ValueError as exc:
        assert "warc_record_id" in str(exc)
    else:
        raise AssertionError("expected a ValueError naming the missing columns")


def test_parts_give_the_same_result_as_one_frame():
    """Duplicates and boilerplate that cross parts are found part by part exactly as in one frame."""
    rng = random.Random(21)
    header = "Menu | Home | About | Shop"
    originals = [_text(rng, 80) for _ in range(12)]
    texts = [f"{header}\n{t}" for t in originals[:6]] + originals[6:]
    texts += [originals[0].upper(), _change_words(originals[7], (4, 40)), f"{header}\n{originals[8]}", header]
    hosts = ["shop.example"] * 6 + [f"site{i}.example" for i in range(6)] + [
        "copy.example", "near.example", "site2.example", "shop.example"]
    docs = _docs(texts, hosts=hosts).sample(fraction=1.0, shuffle=True, seed=4)
    kept_one, removed_one = deduplicate(docs, CFG)
    parts = {f"part{i}": docs.slice(i * 4, 4) for i in range(4)}
    written: dict[str, tuple[pl.DataFrame, pl.DataFrame]] = {}
    counts = deduplicate_parts(list(parts), parts.__getitem__,
                               lambda part, kept, removed: written.__setitem__(part, (kept, removed)), CFG)
    assert list(written) == list(parts)
    kept = pl.concat([k for k, _ in written.values()])
    removed = pl.concat([r for _, r in written.values()], how="diagonal_relaxed")
    assert counts["input"] == docs.height and counts["kept"] == kept.height == kept_one.height
    assert kept.sort("warc_record_id").equals(kept_one.sort("warc_record_id"))
    columns = ["warc_record_id", "reason", "duplicate_of", "sample"]
    assert removed.select(columns).sort("warc_record_id").equals(removed_one.select(columns).sort("warc_record_id"))
    assert set(removed["reason"]) == {"exact_duplicate", "near_duplicate", "boilerplate_only"}
    # each part's rows stay in their part
    for part, (k, r) in written.items():
        assert set(k["warc_record_id"]) | set(r["warc_record_id"]) == set(parts[part]["warc_record_id"])


def test_empty_parts_and_an_empty_crawl():
    """A crawl file without text pages gives an empty part: dedup neither fails nor loses the others."""
    rng = random.Random(9)
    text = _text(rng)
    docs = _docs([text, text.upper(), _text(rng)])
    empty = docs.head(0)
    signatures, has_ngrams = minhash_signatures(pl.Series("t", [], pl.Utf8), CFG)
    assert signatures.shape == (0, CFG.minhash_bands * CFG.minhash_rows) and has_ngrams.shape == (0,)
    parts = {"images": empty, "pages": docs, "redirects": pl.DataFrame()}  # the last one written without a schema
    written: dict[str, tuple[pl.DataFrame, pl.DataFrame]] = {}
    counts = deduplicate_parts(list(parts), parts.__getitem__,
                               lambda part, kept, removed: written.__setitem__(part, (kept, removed)), CFG)
    assert counts["input"] == 3 and counts["kept"] == 2 and counts["removed_by_reason"] == {"exact_duplicate": 1}
    assert written["images"][0].height == written["redirects"][0].height == 0
    assert {"warc_record_id", "text", "boilerplate_lines_removed"} <= set(written["redirects"][0].columns)
    kept, removed = deduplicate(empty, CFG)
    assert kept.height == removed.height == 0 and "boilerplate_lines_removed" in kept.columns


def test_every_document_removed_as_boilerplate():
    """A stage that removes every document writes empty kept parts with reasons for all."""
    header, footer = "Home | Shop", "Cookies help us."
    texts = [f"{header}\n{footer}", header, footer, f"{footer}\n{header}", f"{header}\n{footer}\n{header}"]
    kept, removed = deduplicate(_docs(texts, hosts=["shop.example"] * 5), CFG)
    assert kept.height == 0 and "boilerplate_lines_removed" in kept.columns
    assert removed["reason"].to_list() == ["boilerplate_only"] * 5


def test_word_windows_cover_every_ngram_within_their_size():
    words = [f"w{i}" if i % 7 else f"ü{i}é" for i in range(103)]  # multi-byte letters too
    text = " ".join(words)
    for size, overlap in [(10, 4), (5, 4), (103, 4), (200, 2), (7, 0)]:
        windows = [w.split(" ") for w in word_windows(text, size, overlap)]
        assert all(len(w) <= size for w in windows) and windows[0][0] == words[0] and windows[-1][-1] == words[-1]
        covered = {tuple(w[i:i + overlap + 1]) for w in windows for i in range(len(w) - overlap)}
        assert covered == {tuple(words[i:i + overlap + 1]) for i in range(len(words) - overlap)}
    assert list(word_windows("one", 5, 4)) == ["one"] and list(word_windows("", 5, 4)) == [""]


def test_minhash_in_chunks_equals_the_whole_text():
    """Signing long texts in overlapping windows, and short ones in batches, changes no signature."""
    rng = random.Random(11)
    texts = [_text(rng, n) for n in (250, 3, 0, 41, 300, 12, 5, 6)] + [" ".join(["same"] * 50)]
    normalized = pl.DataFrame({"t": texts}).select(normalized_text(pl.col("t")))["t"]
    whole, whole_has = minhash_signatures(normalized, dataclasses.replace(CFG, minhash_chunk_words=10**9))
    assert whole_has.tolist() == [True, True, False, True, True, True, True, True, True]
    for chunk in (5, 9, 40, 400):
        chunked, has = minhash_signatures(normalized, dataclasses.replace(CFG, minhash_chunk_words=chunk))
        assert (has == whole_has).all() and np.array_equal(chunked, whole), chunk
    # a near copy of a long text still clusters with it when both are signed in windows
    small = dataclasses.replace(CFG, minhash_chunk_words=50)
    pair = pl.Series([normalized[4], " ".join(_change_words(normalized[4], (50, 150, 250)).split())])
    signatures, has = minhash_signatures(pair, small)
    assert near_duplicate_clusters(signatures, has, small).tolist()[0] == \
        near_duplicate_clusters(signatures, has, small).tolist()[1]


def test_minhash_chunk_smaller_than_the_ngram_is_refused():
    bad = dataclasses.replace(CFG, minhash_chunk_words=CFG.minhash_ngram - 1)
    try:
        minhash_signatures(pl.Series(["a b c"]), bad)
    except ValueError as err:
        assert "minhash_chunk_words" in str(err)
    else:
        raise AssertionError("a chunk smaller than the n-gram was accepted")


def test_the_number_of_hash_buckets_does_not_change_a_decision(tmp_path, monkeypatch):
    """The shuffle's bucket count and the grouping of parts only spread the work: 1, 3 and 7 buckets, parts
    filed in one group or in groups of 2, decide alike."""
    import llm_assets.curation.dedup.shuffle as shuffle

    rng = random.Random(11)
    originals = [_text(rng, 60) for _ in range(30)]
    texts = originals + [t.upper() for t in originals[:8]] + [_change_words(t, (3, 30)) for t in originals[8:16]]
    hosts = [f"site{i % 5}.example" for i in range(len(texts))]
    docs = _docs(texts, hosts=hosts).sample(fraction=1.0, shuffle=True, seed=2)
    parts = {f"part{i}": docs.slice(i * 9, 9) for i in range(6)}
    results = []
    for buckets in (1, 3, 7):
        monkeypatch.setattr(shuffle, "PARTS_PER_GROUP", 2 if buckets == 7 else 64)
        written: dict[str, tuple[pl.DataFrame, pl.DataFrame]] = {}
        deduplicate_parts(list(parts), parts.__getitem__, lambda p, k, r, w=written: w.__setitem__(p, (k, r)),
                          CFG, scratch=tmp_path / str(buckets), buckets=buckets)
        results.append(written)
    removed = pl.concat([r for _, r in results[0].values()], how="diagonal_relaxed")
    assert {"exact_duplicate", "near_duplicate"} <= set(removed["reason"])
    for other in results[1:]:
        for part in parts:
            assert other[part][0].equals(results[0][part][0])
            assert other[part][1].equals(results[0][part][1])
