"""Global deduplication: host boilerplate lines, exact duplicates, MinHash-LSH near duplicates.

Input is every partition's filtered documents at once (duplicates cross partitions). Order of work:
1. lines repeated across many pages of one host (headers, footers, cookie text) are cut from the text;
   a document left empty is removed (`boilerplate_only`);
2. exact duplicates by a hash of the normalized text (`exact_duplicate`);
3. near duplicates by MinHash over word n-grams with LSH banding; candidate pairs form a graph whose
   connected components are clusters, and one representative per cluster survives (`near_duplicate`).
The representative of a group is always the earliest fetch, ties broken by the lowest `warc_record_id`.
Removed rows carry `duplicate_of` (the representative's id) and `cluster_id`.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from llm_assets.lake import removed_frame
from llm_assets.profiles import CurationConfig

log = logging.getLogger(__name__)

STAGE = "deduplicated_documents"
_SEED = 0x5EED
# word n-grams are combined as sum(h[i+k] * multiplier[k]); odd multipliers make the sum order-sensitive
_NGRAM_MULTIPLIERS = (np.random.default_rng(_SEED).integers(1, 2**63, size=64, dtype=np.uint64) * 2 + 1)
_SHINGLES_PER_CHUNK = 120_000


def normalized_text(text: pl.Expr) -> pl.Expr:
    """Lower-case words separated by single spaces; punctuation and symbols dropped."""
    return (
        text.str.to_lowercase()
        .str.replace_all(r"[^\p{L}\p{N}\s]+", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def _mix64(x: np.ndarray) -> np.ndarray:
    """A finalizer (splitmix64) so every output bit depends on every input bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def word_ngram_hashes(normalized: pl.Series, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`(doc_index, ngram_hash)` for every word n-gram of every text, sorted by doc_index.

    `normalized` holds texts from `normalized_text` (words separated by one space). A text shorter than
    `n` words gives one n-gram made of all its words; an empty text gives none.
    """
    if n < 1 or n > len(_NGRAM_MULTIPLIERS):
        raise ValueError(f"n-gram size must be 1..{len(_NGRAM_MULTIPLIERS)}, got {n}")
    words = (
        pl.DataFrame({"w": normalized.fill_null("")})
        .with_row_index("doc")
        .select("doc", pl.col("w").str.split(" "))
        .explode("w")
        .filter(pl.col("w").is_not_null() & (pl.col("w") != ""))
    )
    if words.height == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    doc = words["doc"].to_numpy().astype(np.int64)
    word_hash = words["w"].hash(seed=_SEED).to_numpy().astype(np.uint64)
    total = len(doc)
    ngram = word_hash * _NGRAM_MULTIPLIERS[0]
    # same_doc_at[k][i]: word i+k exists and belongs to the same document as word i
    reaches_end = np.ones(total, dtype=bool)
    for k in range(1, n):
        same = np.zeros(total, dtype=bool)
        same[: total - k] = doc[k:] == doc[: total - k]
        term = np.zeros(total, dtype=np.uint64)
        term[: total - k] = word_hash[k:] * _NGRAM_MULTIPLIERS[k]
        ngram = ngram + np.where(same, term, np.uint64(0))
        reaches_end = same
    doc_start = np.ones(total, dtype=bool)
    doc_start[1:] = doc[1:] != doc[:-1]
    words_per_doc = np.bincount(doc)
    short_doc = words_per_doc[doc] < n
    valid = reaches_end if n > 1 else np.ones(total, dtype=bool)
    valid = valid | (doc_start & short_doc)
    return doc[valid], _mix64(ngram[valid])


def _permutations(count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(_SEED + 1)
    a = rng.integers(1, 2**63, size=count, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=count, dtype=np.uint64)
    return a, b


def minhash_signatures(normalized: pl.Series, cfg: CurationConfig) -> tuple[np.ndarray, np.ndarray]:
    """`(signatures, has_ngrams)`: uint32 `(docs, bands*rows)` MinHash of word n-grams per text.

    Each permutation is a multiply-shift hash `(a*x + b) >> 32` of the 64-bit n-gram hash; the text is
    processed in chunks so the `(ngrams, permutations)` matrix stays small.
    """
    num_perm = cfg.minhash_bands * cfg.minhash_rows
    a, b = _permutations(num_perm)
    signatures = np.full((len(normalized), num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    has_ngrams = np.zeros(len(normalized), dtype=bool)
    word_counts = normalized.fill_null("").str.count_matches(" ").to_numpy().astype(np.int64) + 1
    # a new chunk starts each time the running word count crosses a multiple of _SHINGLES_PER_CHUNK
    chunk_of_doc = np.cumsum(word_counts) // _SHINGLES_PER_CHUNK
    starts = np.flatnonzero(np.r_[True, chunk_of_doc[1:] != chunk_of_doc[:-1]]) if len(chunk_of_doc) else []
    ends = np.append(starts[1:], len(normalized))
    for lo, hi in zip(starts, ends, strict=True):
        doc, ngram = word_ngram_hashes(normalized.slice(lo, hi - lo), cfg.minhash_ngram)
        if len(doc) == 0:
            continue
        hashed = ((ngram[:, None] * a[None, :] + b[None, :]) >> np.uint64(32)).astype(np.uint32)
        first = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
        signatures[lo + doc[first]] = np.minimum.reduceat(hashed, first, axis=0)
        has_ngrams[lo + doc[first]] = True
    return signatures, has_ngrams


def near_duplicate_clusters(signatures: np.ndarray, has_ngrams: np.ndarray,
                            cfg: CurationConfig) -> np.ndarray:
    """Cluster id per document: connected components of LSH candidate pairs (same band bucket)."""
    docs = signatures.shape[0]
    if signatures.shape[1] != cfg.minhash_bands * cfg.minhash_rows:
        raise ValueError(f"signatures have {signatures.shape[1]} columns, expected "
                         f"{cfg.minhash_bands} bands x {cfg.minhash_rows} rows")
    eligible = np.flatnonzero(has_ngrams)
    rows_from, rows_to = [], []
    band_mult = _NGRAM_MULTIPLIERS[: cfg.minhash_rows]
    for band in range(cfg.minhash_bands):
        block = signatures[eligible, band * cfg.minhash_rows:(band + 1) * cfg.minhash_rows]
        bucket = _mix64((block.astype(np.uint64) * band_mult[None, :]).sum(axis=1, dtype=np.uint64))
        order = np.argsort(bucket, kind="stable")
        same = bucket[order][1:] == bucket[order][:-1]
        rows_from.append(eligible[order[:-1][same]])
        rows_to.append(eligible[order[1:][same]])
    src = np.concatenate(rows_from) if rows_from else np.zeros(0, np.int64)
    dst = np.concatenate(rows_to) if rows_to else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(docs, docs))
    _, labels = connected_components(graph, directed=False)
    return labels


def boilerplate_lines(docs: pl.DataFrame, cfg: CurationConfig) -> pl.DataFrame:
    """`docs` with boilerplate lines cut from `text` and `boilerplate_lines_removed` counted.

    A line is boilerplate for a host when its stripped text appears in at least
    `cfg.boilerplate_min_pages` distinct pages of that host and in at least `cfg.boilerplate_min_share`
    of them. Pages with identical text count once so exact copies do not make their lines look common.
    """
    lines = (
        docs.select(
            pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"),
            "host",
            normalized_text(pl.col("text")).hash(seed=_SEED).alias("_page"),
            pl.col("text").str.split("\n").alias("_line"),
        )
        .explode("_line")
        .with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_line_no"),
                      pl.col("_line").fill_null("").str.strip_chars().alias("_key"))
    )
    pages_per_host = docs.select(
        "host", normalized_text(pl.col("text")).hash(seed=_SEED).alias("_page")
    ).group_by("host").agg(pl.col("_page").n_unique().alias("_host_pages"))
    common = (
        lines.filter(pl.col("_key") != "")
        .group_by("host", "_key")
        .agg(pl.col("_page").n_unique().alias("_pages"))
        .join(pages_per_host, on="host")
        .filter((pl.col("_pages") >= cfg.boilerplate_min_pages)
                & (pl.col("_pages") >= cfg.boilerplate_min_share * pl.col("_host_pages")))
        .select("host", "_key", pl.lit(True).alias("_boilerplate"))
    )
    marked = lines.join(common, on=["host", "_key"], how="left").sort("_line_no")
    rebuilt = (
        marked.group_by("_row", maintain_order=True)
        .agg(
            pl.col("_line").filter(pl.col("_boilerplate").is_null()).str.join("\n").alias("_text"),
            pl.col("_boilerplate").fill_null(False).sum().cast(pl.Int32).alias("boilerplate_lines_removed"),
        )
        .sort("_row")
    )
    return docs.with_columns(
        rebuilt["_text"].str.strip_chars().alias("text"),
        rebuilt["boilerplate_lines_removed"],
    )


def _duplicate_removed(rows: pl.DataFrame, reason: str) -> pl.DataFrame:
    return removed_frame(rows, STAGE, reason).with_columns(
        rows["duplicate_of"], rows["cluster_id"].cast(pl.Int64)
    )


def _exact_duplicates(docs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(first of each normalized-text group, the others with `duplicate_of` and `cluster_id`); `docs`
    must be in representative order."""
    docs = docs.with_columns(normalized_text(pl.col("text")).hash(seed=_SEED).alias("_exact"))
    docs = docs.with_columns(
        pl.col("warc_record_id").first().over("_exact").alias("duplicate_of"),
        pl.col("_exact").rank("dense").cast(pl.Int64).alias("cluster_id"),
    )
    is_first = pl.col("warc_record_id") == pl.col("duplicate_of")
    return (docs.filter(is_first).drop("_exact", "duplicate_of", "cluster_id"),
            _duplicate_removed(docs.filter(~is_first), "exact_duplicate"))


def deduplicate(docs: pl.DataFrame, cfg: CurationConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`(kept, removed)` over all partitions' documents; see the module docstring for the rules.

    Exact duplicates are looked for both before and after the boilerplate cut (a page copied to another
    host differs only in the host's boilerplate). Kept rows keep every input column (with `text` cleaned
    of boilerplate lines) and add `boilerplate_lines_removed`. Removed rows are
    `warc_record_id, url, stage, reason, sample, duplicate_of, cluster_id`.
    """
    missing = {"warc_record_id", "url", "host", "text", "fetch_time"} - set(docs.columns)
    if missing:
        raise ValueError(f"deduplicate: input documents lack columns {sorted(missing)}")
    columns = docs.columns
    # representative order: earliest fetch, then lowest id
    docs = docs.with_columns(pl.col("text").fill_null("")).sort("fetch_time", "warc_record_id", nulls_last=True)
    docs, exact_before = _exact_duplicates(docs)
    log.info("dedup: %d documents, cutting host boilerplate lines", docs.height)
    docs = boilerplate_lines(docs, cfg)
    empty = docs.filter(pl.col("text") == "")
    docs = docs.filter(pl.col("text") != "")
    docs, exact_after = _exact_duplicates(docs)
    removed = [exact_before, removed_frame(empty, STAGE, "boilerplate_only").with_columns(
        pl.lit(None, pl.Utf8).alias("duplicate_of"), pl.lit(None, pl.Int64).alias("cluster_id")), exact_after]
    log.info("dedup: %d exact duplicates; MinHash over %d documents",
             exact_before.height + exact_after.height, docs.height)

    normalized = docs.select(normalized_text(pl.col("text")))["text"]
    signatures, has_ngrams = minhash_signatures(normalized, cfg)
    del normalized
    clusters = near_duplicate_clusters(signatures, has_ngrams, cfg)
    docs = docs.with_columns(pl.Series("cluster_id", clusters, dtype=pl.Int64)).with_columns(
        pl.col("warc_record_id").first().over("cluster_id").alias("duplicate_of")
    )
    near = docs.filter(pl.col("warc_record_id") != pl.col("duplicate_of"))
    kept = docs.filter(pl.col("warc_record_id") == pl.col("duplicate_of"))
    removed.append(_duplicate_removed(near, "near_duplicate"))
    log.info("dedup: %d near duplicates in %d clusters; %d documents kept", near.height,
             near["cluster_id"].n_unique(), kept.height)
    return (kept.select(*columns, "boilerplate_lines_removed"),
            pl.concat(removed, how="diagonal_relaxed"))
