"""Benchmark contamination: n-gram overlap (default 13 words) between benchmark items and training text.

An item's words are its query followed by its choices, lower-cased, split on word characters, with
one-character words dropped so option labels such as "A)" in a leaked quiz page do not break a match.
Its n-grams are the runs of `n` consecutive words at least half of which come from the query, or the
whole item when it has fewer than `n` words.
Training Parquet files (a `text` column) are streamed in record batches; each batch's n-grams are looked
up among the benchmark's (`llm_assets.text.ngram_hits`, by n-gram hash).

An item is flagged when at least `min_overlap` of its n-grams occur in the training text (default one
half): a leaked item repeats all of them, while two different questions about the same person share a
long description and so a few 13-grams. `min_overlap=0` flags any shared n-gram (the GPT-3 rule).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from llm_assets.benchmarks import Item, leak_texts
from llm_assets.lake import parquet_file
from llm_assets.text import ngram_hits, phrase_hashes

log = logging.getLogger(__name__)

WORD_PATTERN = r"\w\w+"  # words of two or more characters
_WORD_RE = re.compile(WORD_PATTERN)


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


def item_ngrams(item: Item, n: int = 13) -> list[str]:
    """The item's n-grams as space-joined strings (the whole item when it has fewer than `n` words).

    Every n-gram holds at least half its words (or the whole query, if shorter) from the query: items
    often share one list of choices, so a run of mostly choice words says nothing about which question
    leaked.
    """
    # the question as it could leak (an MMLU query holds its lettered options too) and the answers
    question, answers = leak_texts(item)
    query_words = _words(question)
    words = query_words + [w for answer in answers for w in _words(answer)]
    if not words:
        return []
    if len(words) < n:
        return [" ".join(words)]
    from_query = min(len(query_words), (n + 1) // 2)
    last_start = min(len(words) - n, max(len(query_words) - from_query, 0))
    return [" ".join(words[i:i + n]) for i in range(last_start + 1)]


def _benchmark_ngrams(tasks: dict[str, list[Item]], n: int) -> pl.DataFrame:
    """One row per distinct n-gram of each item: task, item, ngram (its hash), length (its words)."""
    rows = {"task": [], "item": [], "ngram": [], "length": []}
    for task, items in tasks.items():
        for index, item in enumerate(items):
            for gram in dict.fromkeys(item_ngrams(item, n)):
                rows["task"].append(task)
                rows["item"].append(index)
                rows["ngram"].append(gram)
                rows["length"].append(gram.count(" ") + 1)
    bench = pl.DataFrame(rows, schema={"task": pl.Utf8, "item": pl.Int64, "ngram": pl.Utf8, "length": pl.Int64})
    return bench.with_columns(pl.Series("ngram", phrase_hashes(bench["ngram"]), dtype=pl.UInt64))


def _text_ngrams(texts: pl.Series, first_doc: int, wanted: dict[int, np.ndarray]) -> pl.DataFrame:
    """(doc, ngram) for every n-gram of `texts` whose hash is in `wanted` (hashes by n-gram length)."""
    words = texts.fill_null("").str.to_lowercase().str.extract_all(WORD_PATTERN).list.join(" ")
    doc, hashes = ngram_hits(words, wanted)
    return pl.DataFrame({"doc": doc + first_doc, "ngram": hashes},
                        schema={"doc": pl.Int64, "ngram": pl.UInt64}).unique()


@dataclass
class ContaminationReport:
    """`items`: task, item, ngrams, matched_ngrams, matched_documents, overlap (matched share), contaminated
    (+ labelled_contaminated when the benchmark carries it). `summary`: per task items, contaminated, fraction."""

    items: pl.DataFrame
    summary: pl.DataFrame
    n: int
    documents_scanned: int


def find_contamination(tasks: dict[str, list[Item]], training_files: Iterable[str | Path], n: int = 13,
                       text_column: str = "text", batch_rows: int = 2048,
                       min_overlap: float = 0.5) -> ContaminationReport:
    """Stream `training_files` and flag benchmark items whose n-grams occur in the training text."""
    if not 0.0 <= min_overlap <= 1.0:
        raise ValueError(f"min_overlap must be a fraction in [0, 1], got {min_overlap}")
    bench = _benchmark_ngrams(tasks, n)
    wanted = {length: np.unique(bench.filter(pl.col("length") == length)["ngram"].to_numpy())
              for length in sorted(bench["length"].unique().to_list())}
    matches: list[pl.DataFrame] = []
    documents = 0
    started = time.monotonic()
    for file in training_files:
        handle = parquet_file(file)
        if handle.metadata.num_rows == 0:  # an empty part may have been written without columns
            continue
        if text_column not in handle.schema_arrow.names:
            raise ValueError(f"{file}: no {text_column!r} column (columns: {', '.join(handle.schema_arrow.names)})")
        for batch in handle.iter_batches(columns=[text_column], batch_size=batch_rows):
            texts = pl.from_arrow(batch.column(0)).cast(pl.Utf8)
            found = _text_ngrams(texts, documents, wanted)
            if not found.is_empty():
                matches.append(found)
            documents += len(texts)
        log.info("contamination: scanned %s, %d documents so far (%.1fs)", file, documents,
                 time.monotonic() - started)
    hits = (pl.concat(matches) if matches else pl.DataFrame(schema={"doc": pl.Int64, "ngram": pl.UInt64}))
    per_item = (bench.join(hits, on="ngram", how="inner")
                .group_by("task", "item")
                .agg(pl.col("ngram").n_unique().alias("matched_ngrams"),
                     pl.col("doc").n_unique().alias("matched_documents")))
    totals = bench.group_by("task", "item").agg(pl.len().alias("ngrams"))
    labelled = [{"task": task, "item": index, "labelled_contaminated": bool(item["contaminated"])}
                for task, items in tasks.items() for index, item in enumerate(items) if "contaminated" in item]
    all_items = pl.DataFrame([{"task": task, "item": index} for task, items in tasks.items()
                              for index in range(len(items))],
                             schema={"task": pl.Utf8, "item": pl.Int64})
    report = (all_items.join(totals, on=["task", "item"], how="left")
              .join(per_item, on=["task", "item"], how="left")
              .with_columns(pl.col("ngrams", "matched_ngrams", "matched_documents").fill_null(0).cast(pl.Int64))
              .with_columns((pl.col("matched_ngrams") / pl.col("ngrams")).fill_nan(0.0).alias("overlap"))
              .with_columns(((pl.col("matched_ngrams") > 0) & (pl.col("overlap") >= min_overlap))
                            .alias("contaminated")))
    if labelled:
        report = report.join(pl.DataFrame(labelled), on=["task", "item"], how="left")
    summary = report.group_by("task", maintain_order=True).agg(
        pl.len().alias("items"), pl.col("contaminated").sum().alias("contaminated"),
        pl.col("contaminated").mean().alias("fraction"))
    return ContaminationReport(items=report, summary=summary, n=n, documents_scanned=documents)


def scores_by_contamination(item_results: pl.DataFrame, report: ContaminationReport) -> pl.DataFrame:
    """acc / acc_norm / n per task on the clean and the contaminated subsets.

    `item_results` is `MultipleChoiceResult.items` (task, item, acc, acc_norm, ...).
    """
    joined = item_results.select("task", "item", "acc", "acc_norm").join(
        report.items.select("task", "item", "contaminated"), on=["task", "item"], how="inner")
    return (joined.with_columns(pl.when(pl.col("contaminated")).then(pl.lit("contaminated"))
                                .otherwise(pl.lit("clean")).alias("subset"))
            .group_by("task", "subset", maintain_order=True)
            .agg(pl.col("acc").mean(), pl.col("acc_norm").mean(), pl.len().alias("n"))
            .sort("task", "subset"))
