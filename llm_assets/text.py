"""Text as words: one normalization, word n-gram hashes, and the search for known n-grams in texts.

Deduplication signs documents with these n-gram hashes; decontamination, the contamination report and
the SFT data checks look benchmark n-grams up in training text with `ngram_hits`. An n-gram is hashed
from its words' hashes, so equal word runs hash equally whichever text they come from.
"""

from __future__ import annotations

import numpy as np
import polars as pl

HASH_SEED = 0x5EED
# word n-grams are combined as sum(h[i+k] * multiplier[k]); odd multipliers make the sum order-sensitive
NGRAM_MULTIPLIERS = np.random.default_rng(HASH_SEED).integers(1, 2**63, size=64, dtype=np.uint64) * 2 + 1


def normalized_text(text: pl.Expr) -> pl.Expr:
    """Lower-case words separated by single spaces; punctuation and symbols dropped."""
    return (
        text.str.to_lowercase()
        .str.replace_all(r"[^\p{L}\p{N}\s]+", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def mix64(x: np.ndarray) -> np.ndarray:
    """A finalizer (splitmix64) so every output bit depends on every input bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def word_ngram_hashes(normalized: pl.Series, n: int) -> tuple[np.ndarray, np.ndarray]:
    """`(doc_index, ngram_hash)` for every word n-gram of every text, sorted by doc_index.

    `normalized` holds texts of words separated by one space (`normalized_text`). A text shorter than
    `n` words gives one n-gram made of all its words; an empty text gives none.
    """
    if n < 1 or n > len(NGRAM_MULTIPLIERS):
        raise ValueError(f"n-gram size must be 1..{len(NGRAM_MULTIPLIERS)}, got {n}")
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
    word_hash = words["w"].hash(seed=HASH_SEED).to_numpy().astype(np.uint64)
    total = len(doc)
    ngram = word_hash * NGRAM_MULTIPLIERS[0]
    # same_doc_at[k][i]: word i+k exists and belongs to the same document as word i
    reaches_end = np.ones(total, dtype=bool)
    for k in range(1, n):
        if k >= total:  # fewer words in all texts than the n-gram: none reaches its end
            reaches_end = np.zeros(total, dtype=bool)
            break
        same = np.zeros(total, dtype=bool)
        same[: total - k] = doc[k:] == doc[: total - k]
        term = np.zeros(total, dtype=np.uint64)
        term[: total - k] = word_hash[k:] * NGRAM_MULTIPLIERS[k]
        ngram = ngram + np.where(same, term, np.uint64(0))
        reaches_end = same
    doc_start = np.ones(total, dtype=bool)
    doc_start[1:] = doc[1:] != doc[:-1]
    words_per_doc = np.bincount(doc)
    short_doc = words_per_doc[doc] < n
    valid = reaches_end if n > 1 else np.ones(total, dtype=bool)
    valid = valid | (doc_start & short_doc)
    return doc[valid], mix64(ngram[valid])


def word_counts(normalized: pl.Series) -> np.ndarray:
    """Words per text of `normalized` (0 for an empty text)."""
    counts = normalized.fill_null("").str.count_matches(" ").to_numpy().astype(np.int64) + 1
    counts[(normalized.fill_null("") == "").to_numpy()] = 0
    return counts


def phrase_hashes(phrases: pl.Series) -> np.ndarray:
    """The hash of each normalized phrase taken whole, as the n-gram of its own length (0 when empty).

    It equals the hash `word_ngram_hashes` gives the same words inside a longer text, so a phrase of k
    words is found in a text by looking its hash up among the text's k-grams.
    """
    counts = word_counts(phrases)
    out = np.zeros(len(phrases), dtype=np.uint64)
    for k in np.unique(counts[counts > 0]):
        rows = np.flatnonzero(counts == k)
        doc, hashes = word_ngram_hashes(phrases.gather(rows), int(k))
        out[rows[doc]] = hashes
    return out


def ngram_table(phrases: pl.Series, n: int, min_words: int = 1) -> dict[int, np.ndarray]:
    """Sorted unique n-gram hashes of normalized `phrases`, keyed by n-gram length: the n-grams of the
    phrases of at least `n` words, and each shorter phrase of at least `min_words` words whole."""
    counts = word_counts(phrases)
    table: dict[int, np.ndarray] = {}
    long_phrases = phrases.filter(pl.Series(counts >= n))
    if len(long_phrases):
        table[n] = np.unique(word_ngram_hashes(long_phrases, n)[1])
    short = (counts < n) & (counts >= min_words)
    for k in np.unique(counts[short]):
        table[int(k)] = np.unique(phrase_hashes(phrases.filter(pl.Series(counts == k))))
    return table


def ngram_hits(normalized: pl.Series, ngrams: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """`(text index, n-gram hash)` of every n-gram of the normalized texts that `ngrams` holds.

    `ngrams` maps an n-gram length to the hashes looked for (`ngram_table`); the texts are searched
    for n-grams of each of those lengths.
    """
    docs, hashes = [np.zeros(0, np.int64)], [np.zeros(0, np.uint64)]
    for k, wanted in ngrams.items():
        doc, doc_hashes = word_ngram_hashes(normalized, k)
        hit = np.isin(doc_hashes, wanted)
        docs.append(doc[hit])
        hashes.append(doc_hashes[hit])
    return np.concatenate(docs), np.concatenate(hashes)
