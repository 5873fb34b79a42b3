"""Global deduplication: host boilerplate lines, exact duplicates, MinHash-LSH near duplicates.

Duplicates cross partitions, so the rules are global; `deduplicate_parts` applies them to documents spread
over many parts holding one part's text at a time. Order of work:
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from llm_assets.lake import PartLoader, PartWriter, removed_frame
from llm_assets.profiles import CurationConfig
from llm_assets.text import HASH_SEED, NGRAM_MULTIPLIERS, mix64, normalized_text, word_ngram_hashes

log = logging.getLogger(__name__)

STAGE = "deduplicated_documents"
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


def near_duplicate_clusters(signatures: np.ndarray, has_ngrams: np.ndarray,
                            cfg: CurationConfig) -> np.ndarray:
    """Cluster id per document: connected components of LSH candidate pairs (same band bucket)."""
    docs = signatures.shape[0]
    if signatures.shape[1] != cfg.minhash_bands * cfg.minhash_rows:
        raise ValueError(f"signatures have {signatures.shape[1]} columns, expected "
                         f"{cfg.minhash_bands} bands x {cfg.minhash_rows} rows")
    eligible = np.flatnonzero(has_ngrams)
    rows_from, rows_to = [], []
    band_mult = NGRAM_MULTIPLIERS[: cfg.minhash_rows]
    for band in range(cfg.minhash_bands):
        block = signatures[eligible, band * cfg.minhash_rows:(band + 1) * cfg.minhash_rows]
        bucket = mix64((block.astype(np.uint64) * band_mult[None, :]).sum(axis=1, dtype=np.uint64))
        order = np.argsort(bucket, kind="stable")
        same = bucket[order][1:] == bucket[order][:-1]
        rows_from.append(eligible[order[:-1][same]])
        rows_to.append(eligible[order[1:][same]])
    src = np.concatenate(rows_from) if rows_from else np.zeros(0, np.int64)
    dst = np.concatenate(rows_to) if rows_to else np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(docs, docs))
    _, labels = connected_components(graph, directed=False)
    return labels


def _line_keys(docs: pl.DataFrame, with_lines: bool = False) -> pl.DataFrame:
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
        _line_keys(docs, with_lines=True)
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


_REQUIRED = {"warc_record_id", "url", "host", "text", "fetch_time"}


def _load(load: PartLoader, part: str) -> pl.DataFrame:
    docs = load(part)
    missing = _REQUIRED - set(docs.columns)
    if missing and docs.height == 0:  # an empty part written without a schema holds no documents either
        docs = docs.with_columns(pl.lit(None, pl.Datetime("us", "UTC") if c == "fetch_time" else pl.Utf8).alias(c)
                                 for c in sorted(missing))
    elif missing:
        raise ValueError(f"deduplicate: input documents of part {part!r} lack columns {sorted(missing)}")
    return docs.with_columns(pl.col("text").fill_null(""),
                             pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"))


def _page_hash(text: pl.Expr) -> pl.Expr:
    return normalized_text(text).hash(seed=HASH_SEED)


def _first_of_group(index: pl.DataFrame, group: str) -> pl.DataFrame:
    """`_rep`: the `_ord` of the group's first document in representative order (`index` is sorted)."""
    return index.with_columns(pl.col("_ord").first().over(group).alias("_rep"))


def deduplicate_parts(parts: Sequence[str], load: PartLoader, write: PartWriter,
                      cfg: CurationConfig) -> dict:
    """Deduplicate documents spread over `parts` with memory bounded by one part plus a small index.

    `load(part)` returns a part's documents, `write(part, kept, removed)` takes its results. Three passes
    over the parts: (1) page hashes and per-line keys; (2) boilerplate cut and MinHash signatures of the
    exact-duplicate survivors; (3) the decisions applied and written. Between passes only hashes, fetch
    times, ids and signatures are held, never text. Returns counts: input, kept, removed, per reason.
    """
    if not parts:
        return {"input": 0, "kept": 0, "removed": 0, "removed_by_reason": {}}
    first = _index_parts(parts, load, cfg)
    # the signatures live only for the call that clusters them: pass 3 holds the decisions alone
    decisions = _decide(first, *_sign_parts(parts, load, cfg, first), cfg)
    return _apply_decisions(parts, load, write, first, decisions)


@dataclass
class _FirstPass:
    """What pass 1 learns: every document's place in representative order, the exact duplicates found
    before the boilerplate cut, the documents that survive them, and the hosts' boilerplate line keys."""

    index: pl.DataFrame  # _part, _row, warc_record_id, fetch_time, host, _page, _ord, _rep
    exact_before: pl.DataFrame  # _ord, _reason, _rep, _cluster
    survivors: pl.DataFrame  # the rows of `index` that are their exact group's representative
    keys: pl.DataFrame  # host, _key


def _index_parts(parts: Sequence[str], load: PartLoader, cfg: CurationConfig) -> _FirstPass:
    """Pass 1: an index of every document and the (host, line, page) triples for the boilerplate rule."""
    index_parts, line_parts = [], []
    for number, part in enumerate(parts):
        docs = _load(load, part).with_columns(_page_hash(pl.col("text")).alias("_page"))
        index_parts.append(docs.select(pl.lit(number, pl.UInt32).alias("_part"), "_row", "warc_record_id",
                                       "fetch_time", "host", "_page"))
        line_parts.append(_line_keys(docs).join(docs.select("_row", "_page"), on="_row")
                          .select("host", "_key", "_page").unique())
        log.info("dedup pass 1/3: part %d/%d (%s), %d documents", number + 1, len(parts), part, docs.height)
        del docs
    # representative order: earliest fetch, then lowest id (then input position, for full determinism)
    index = (pl.concat(index_parts).sort("fetch_time", "warc_record_id", "_part", "_row", nulls_last=True)
             .with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_ord")))
    del index_parts
    index = _first_of_group(index, "_page")
    exact_before = index.filter(pl.col("_ord") != pl.col("_rep")).select(
        "_ord", pl.lit("exact_duplicate").alias("_reason"), "_rep",
        pl.col("_page").rank("dense").cast(pl.Int64).alias("_cluster"))
    survivors = index.filter(pl.col("_ord") == pl.col("_rep")).drop("_rep")
    line_pages = pl.concat(line_parts).unique().join(survivors.select("host", "_page").unique(),
                                                     on=["host", "_page"], how="semi")
    del line_parts
    keys = boilerplate_keys(line_pages, cfg)
    log.info("dedup: %d documents, %d exact duplicates, %d boilerplate line keys", index.height,
             exact_before.height, keys.height)
    return _FirstPass(index, exact_before, survivors, keys)


def _sign_parts(parts: Sequence[str], load: PartLoader, cfg: CurationConfig,
                first: _FirstPass) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Pass 2: cut boilerplate from the survivors; `(after, signatures, has_ngrams)`, where `after` holds
    per survivor `_ord`, `_empty` (nothing left), `_exact` (hash of what is left) and `_sig` (its row in
    `signatures`)."""
    after_parts, signature_parts, has_ngram_parts = [], [], []
    for number, part in enumerate(parts):
        docs = _survivors_of_part(_load(load, part), first.survivors, number)
        docs = cut_boilerplate(docs, first.keys).with_columns(
            (pl.col("text") == "").alias("_empty"), _page_hash(pl.col("text")).alias("_exact"))
        after_parts.append(docs.select("_ord", "_empty", "_exact"))
        signatures, has_ngrams = minhash_signatures(docs.select(normalized_text(pl.col("text")))["text"], cfg)
        signature_parts.append(signatures)
        has_ngram_parts.append(has_ngrams)
        log.info("dedup pass 2/3: part %d/%d (%s), %d signatures", number + 1, len(parts), part, docs.height)
        del docs
    after = pl.concat(after_parts).with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_sig"))
    signatures = np.concatenate(signature_parts) if signature_parts else np.zeros(
        (0, cfg.minhash_bands * cfg.minhash_rows), np.uint32)
    has_ngrams = np.concatenate(has_ngram_parts) if has_ngram_parts else np.zeros(0, bool)
    return after, signatures, has_ngrams


def _decide(first: _FirstPass, after: pl.DataFrame, signatures: np.ndarray, has_ngrams: np.ndarray,
            cfg: CurationConfig) -> pl.DataFrame:
    """Every removal: `_ord`, `_reason`, `_cluster` and `duplicate_of` (the representative's id)."""
    after = _first_of_group(after.sort("_ord"), "_exact")
    boilerplate_only = after.filter(pl.col("_empty")).select(
        "_ord", pl.lit("boilerplate_only").alias("_reason"), pl.lit(None, pl.UInt32).alias("_rep"),
        pl.lit(None, pl.Int64).alias("_cluster"))
    after = after.filter(~pl.col("_empty"))
    exact_after = after.filter(pl.col("_ord") != pl.col("_rep")).select(
        "_ord", pl.lit("exact_duplicate").alias("_reason"), "_rep",
        pl.col("_exact").rank("dense").cast(pl.Int64).alias("_cluster"))
    unique = after.filter(pl.col("_ord") == pl.col("_rep")).drop("_rep")
    rows = unique["_sig"].to_numpy()
    clusters = near_duplicate_clusters(signatures[rows], has_ngrams[rows], cfg)
    unique = _first_of_group(unique.with_columns(pl.Series("_cluster", clusters, dtype=pl.Int64)), "_cluster")
    near = unique.filter(pl.col("_ord") != pl.col("_rep")).select(
        "_ord", pl.lit("near_duplicate").alias("_reason"), "_rep", "_cluster")
    log.info("dedup: %d boilerplate-only, %d exact duplicates after the cut, %d near duplicates in %d clusters",
             boilerplate_only.height, exact_after.height, near.height, near["_cluster"].n_unique())
    return (pl.concat([first.exact_before, boilerplate_only, exact_after, near])
            .join(first.index.select(pl.col("_ord").alias("_rep"), pl.col("warc_record_id").alias("duplicate_of")),
                  on="_rep", how="left").drop("_rep"))


def _apply_decisions(parts: Sequence[str], load: PartLoader, write: PartWriter, first: _FirstPass,
                     decisions: pl.DataFrame) -> dict:
    """Pass 3: write each part's kept rows (boilerplate cut) and removed rows; return the counts."""
    counts: dict = {"input": first.index.height, "kept": 0, "removed": 0, "removed_by_reason": {}}
    for number, part in enumerate(parts):
        docs = _load(load, part)
        columns = [c for c in docs.columns if c != "_row"]
        docs = (docs.join(first.index.filter(pl.col("_part") == number).select("_row", "_ord"), on="_row")
                .join(decisions, on="_ord", how="left"))
        before = docs.join(first.exact_before.select("_ord"), on="_ord", how="semi")
        cut = cut_boilerplate(docs.join(first.survivors.select("_ord"), on="_ord", how="semi"), first.keys)
        removed_after = cut.filter(pl.col("_reason").is_not_null())
        kept = cut.filter(pl.col("_reason").is_null()).sort("_ord").select(*columns, "boilerplate_lines_removed")
        removed = pl.concat([_duplicate_removed(frame) for frame in (before, removed_after)],
                            how="diagonal_relaxed")
        write(part, kept, removed)
        counts["kept"] += kept.height
        counts["removed"] += removed.height
        for reason, n in removed["reason"].value_counts().iter_rows() if removed.height else ():
            counts["removed_by_reason"][reason] = counts["removed_by_reason"].get(reason, 0) + n
        log.info("dedup pass 3/3: part %d/%d (%s), %d kept, %d removed", number + 1, len(parts), part,
                 kept.height, removed.height)
    return counts


def _survivors_of_part(docs: pl.DataFrame, survivors: pl.DataFrame, number: int) -> pl.DataFrame:
    """The part's documents that survived the first exact-duplicate pass, with their `_ord`."""
    return docs.join(survivors.filter(pl.col("_part") == number).select("_row", "_ord"), on="_row")


def _duplicate_removed(rows: pl.DataFrame) -> pl.DataFrame:
    rows = rows.sort("_ord")
    return removed_frame(rows, STAGE, pl.col("_reason")).with_columns(
        rows["duplicate_of"], rows["_cluster"].cast(pl.Int64).alias("cluster_id"))


def deduplicate(docs: pl.DataFrame, cfg: CurationConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`(kept, removed)` of one in-memory frame; the rules are those of the module docstring.

    Exact duplicates are looked for both before and after the boilerplate cut (a page copied to another
    host differs only in the host's boilerplate). Kept rows keep every input column (with `text` cleaned
    of boilerplate lines) and add `boilerplate_lines_removed`. Removed rows are
    `warc_record_id, url, stage, reason, sample, duplicate_of, cluster_id`.
    """
    out: dict = {}
    deduplicate_parts(["all"], lambda _: docs, lambda _, kept, removed: out.update(kept=kept, removed=removed),
                      cfg)
    return out["kept"], out["removed"]
