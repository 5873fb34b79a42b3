"""The deduplication rules on one in-memory frame: MinHash signatures over word n-grams (long pages in
overlapping windows), LSH band hashes, connected-component clusters of candidate pairs, and host boilerplate
lines (their keys and the cut). No engine, no files: `shuffle` applies them over many parts."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from llm_assets.profiles import CurationConfig
from llm_assets.text import HASH_SEED, NGRAM_MULTIPLIERS, mix64, word_ngram_hashes

_SCAN_BYTES = 1 << 20  # bytes of a long text searched for word boundaries at a time


def _permutations(count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(HASH_SEED + 1)
    a = rng.integers(1, 2**63, size=count, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=count, dtype=np.uint64)
    return a, b


def word_windows(text: str, size: int, overlap: int) -> Iterator[str]:
    """Consecutive windows of at most `size` words of a normalized `text`, each starting `size - overlap`
    words after the previous one, so every run of `overlap + 1` words lies whole in some window.

    A text of at most `size` words is one window, itself. Word boundaries are found on the UTF-8 bytes a
    block at a time, so the extra memory is one copy of the text plus a few integers per window.
    """
    step = size - overlap
    if step < 1:
        raise ValueError(f"window of {size} words cannot overlap by {overlap}")
    data = text.encode()
    # byte offset of space number i, for the spaces that end a window or come just before one's start
    space_at: dict[int, int] = {}
    spaces_before = 0
    for offset in range(0, len(data), _SCAN_BYTES):
        block = np.frombuffer(data, np.uint8, count=min(_SCAN_BYTES, len(data) - offset), offset=offset)
        where = np.flatnonzero(block == 32)
        number = np.arange(spaces_before, spaces_before + len(where))
        wanted = ((number + 1) % step == 0) | ((number >= size - 1) & ((number - size + 1) % step == 0))
        space_at.update(zip(number[wanted].tolist(), (where[wanted] + offset).tolist(), strict=True))
        spaces_before += len(where)
    window = 0
    while True:
        start = 0 if window == 0 else space_at[window * step - 1] + 1
        end = space_at.get(window * step + size - 1)
        if end is None:
            yield data[start:].decode()
            return
        yield data[start:end].decode()
        window += 1


def _signature_batches(word_counts: np.ndarray, max_words: int) -> Iterator[tuple[int, int]]:
    """`(lo, hi)` runs of consecutive documents of at most `max_words` words together (or one document)."""
    lo, words = 0, 0
    for i, count in enumerate(word_counts.tolist()):
        if words and words + count > max_words:
            yield lo, i
            lo, words = i, 0
        words += count
    if lo < len(word_counts):
        yield lo, len(word_counts)


def _min_hashes(ngram: np.ndarray, first: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`(groups, permutations)`: per group of n-grams starting at `first`, each permutation's minimum hash."""
    hashed = np.multiply.outer(a, ngram)  # (permutations, ngrams): the reduction runs along memory
    hashed += b[:, None]  # in place, so one matrix is held
    hashed >>= np.uint64(32)
    return np.minimum.reduceat(hashed, first, axis=1).T.astype(np.uint32)


def minhash_signatures(normalized: pl.Series, cfg: CurationConfig) -> tuple[np.ndarray, np.ndarray]:
    """`(signatures, has_ngrams)`: uint32 `(docs, bands*rows)` MinHash of word n-grams per text.

    Each permutation is a multiply-shift hash `(a*x + b) >> 32` of the 64-bit n-gram hash. Memory is
    bounded by `cfg.minhash_chunk_words`: short texts are signed together in batches of about that many
    words, and a longer text in windows of that many words overlapping by n-1 (so no n-gram is lost),
    keeping the running minimum per permutation; the signature equals the one of the whole text.
    """
    num_perm = cfg.minhash_bands * cfg.minhash_rows
    n, chunk = cfg.minhash_ngram, cfg.minhash_chunk_words
    if chunk < n:
        raise ValueError(f"minhash_chunk_words ({chunk}) must be at least minhash_ngram ({n})")
    a, b = _permutations(num_perm)
    signatures = np.full((len(normalized), num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    has_ngrams = np.zeros(len(normalized), dtype=bool)
    if len(normalized) == 0:  # an empty part (a crawl file without text pages) has no signatures
        return signatures, has_ngrams
    word_counts = normalized.fill_null("").str.count_matches(" ").to_numpy().astype(np.int64) + 1
    for lo, hi in _signature_batches(word_counts, chunk):
        if hi - lo == 1 and word_counts[lo] > chunk:
            for window in word_windows(normalized[lo], chunk, n - 1):
                _, ngram = word_ngram_hashes(pl.Series([window]), n)
                signatures[lo] = np.minimum(signatures[lo], _min_hashes(ngram, np.zeros(1, np.int64), a, b)[0])
            has_ngrams[lo] = True
            continue
        doc, ngram = word_ngram_hashes(normalized.slice(lo, hi - lo), n)
        if len(doc) == 0:
            continue
        first = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
        signatures[lo + doc[first]] = _min_hashes(ngram, first, a, b)
        has_ngrams[lo + doc[first]] = True
    return signatures, has_ngrams


def band_hashes(signatures: np.ndarray, cfg: CurationConfig) -> np.ndarray:
    """`(docs, bands)` uint64: the LSH bucket of each band of each signature (documents sharing a band's
    bucket are candidate near duplicates)."""
    if signatures.shape[1] != cfg.minhash_bands * cfg.minhash_rows:
        raise ValueError(f"signatures have {signatures.shape[1]} columns, expected "
                         f"{cfg.minhash_bands} bands x {cfg.minhash_rows} rows")
    band_mult = NGRAM_MULTIPLIERS[: cfg.minhash_rows]
    blocks = signatures.astype(np.uint64).reshape(len(signatures), cfg.minhash_bands, cfg.minhash_rows)
    return mix64((blocks * band_mult[None, None, :]).sum(axis=2, dtype=np.uint64))


def near_duplicate_clusters(signatures: np.ndarray, has_ngrams: np.ndarray,
                            cfg: CurationConfig) -> np.ndarray:
    """Cluster id per document of one in-memory set: connected components of LSH candidate pairs."""
    docs = signatures.shape[0]
    eligible = np.flatnonzero(has_ngrams)
    buckets = band_hashes(signatures[eligible], cfg)
    rows_from, rows_to = [], []
    for band in range(cfg.minhash_bands):
        order = np.argsort(buckets[:, band], kind="stable")
        same = buckets[order, band][1:] == buckets[order, band][:-1]
        rows_from.append(eligible[order[:-1][same]])
        rows_to.append(eligible[order[1:][same]])
    src = np.concatenate(rows_from) if rows_from else np.zeros(0, np.int64)
    dst = np.concatenate(rows_to) if rows_to else np.zeros(0, np.int64)
    return components(src, dst, docs)


def components(src: np.ndarray, dst: np.ndarray, nodes: int) -> np.ndarray:
    """Connected-component label per node `0..nodes-1` of the undirected graph of edges `src[i]`-`dst[i]`."""
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(nodes, nodes))
    return connected_components(graph, directed=False)[1]


def line_keys(docs: pl.DataFrame, with_lines: bool = False) -> pl.DataFrame:
    """One row per line of each document: `_row`, `host`, `_key` (hash of the stripped line, null when
    the line is blank) and, with `with_lines`, the line itself and its position."""
    lines = docs.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"),
        "host",
        pl.col("text").str.split("\n").alias("_line"),
    ).explode("_line")
    stripped = pl.col("_line").fill_null("").str.strip_chars()
    lines = lines.with_columns(pl.when(stripped != "").then(stripped.hash(seed=HASH_SEED)).alias("_key"))
    if with_lines:
        return lines.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_line_no"))
    return lines.drop("_line")


def boilerplate_keys(line_pages: pl.DataFrame, cfg: CurationConfig) -> pl.DataFrame:
    """`(host, _key)` of boilerplate lines, from distinct `(host, _key, _page)` rows of the pages to judge.

    A line is boilerplate for a host when its stripped text appears in at least `cfg.boilerplate_min_pages`
    distinct pages of that host and in at least `cfg.boilerplate_min_share` of them. Pages are counted by
    normalized-text hash, so exact copies do not make their lines look common.
    """
    pages_per_host = line_pages.group_by("host").agg(pl.col("_page").n_unique().alias("_host_pages"))
    return (
        line_pages.filter(pl.col("_key").is_not_null())
        .group_by("host", "_key")
        .agg(pl.col("_page").n_unique().alias("_pages"))
        .join(pages_per_host, on="host")
        .filter((pl.col("_pages") >= cfg.boilerplate_min_pages)
                & (pl.col("_pages") >= cfg.boilerplate_min_share * pl.col("_host_pages")))
        .select("host", "_key")
    )


def cut_boilerplate(docs: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """`docs` with the lines whose `(host, _key)` is in `keys` cut from `text` (then stripped), and
    `boilerplate_lines_removed` counted."""
    if docs.height == 0:
        return docs.with_columns(pl.lit(0, pl.Int32).alias("boilerplate_lines_removed"))
    marked = (
        line_keys(docs, with_lines=True)
        .join(keys.with_columns(pl.lit(True).alias("_boilerplate")), on=["host", "_key"], how="left")
        .sort("_line_no")
    )
    rebuilt = (
        marked.group_by("_row", maintain_order=True)
        .agg(
            pl.col("_line").filter(pl.col("_boilerplate").is_null()).str.join("\n").alias("_text"),
            pl.col("_boilerplate").fill_null(False).sum().cast(pl.Int32).alias("boilerplate_lines_removed"),
        )
        .sort("_row")
    )
    return docs.with_columns(rebuilt["_text"].str.strip_chars().alias("text"),
                             rebuilt["boilerplate_lines_removed"])
