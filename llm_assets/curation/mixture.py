"""The training mixture: benchmark decontamination, per-site weights, a train/validation split.

1. Decontamination drops every document that shares a word n-gram (`cfg.decontamination_ngram`, 13 by
   default, over normalized lower-case text) with a benchmark item (`contaminated`). An item's texts
   are its query, the query followed by each choice, and the query followed by all choices; a text
   shorter than n words is matched whole (when it has at least `MIN_WHOLE_ITEM_WORDS` words).
2. Each site's weight (`cfg.source_weights`, sites not listed weigh 1.0) becomes whole copies plus a
   hash-chosen extra copy for the fractional part; weight 0.3 keeps a hash-chosen 30% of the site's
   documents and drops the rest (`downsampled`).
3. The split is by document: a hash of `warc_record_id` puts a `cfg.validation_fraction` share in
   `validation`. Validation documents keep exactly one copy so held-out loss is not weighted twice.
   When the hash puts no document of a whole crawl in validation (a tiny crawl) and it has at least
   two documents, the train document with the lowest split hash moves to validation.
All choices hash the document id with BLAKE2b, so the mixture is the same on every run and machine.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from llm_assets.benchmarks import leak_texts, load_items
from llm_assets.curation.quality import stable_fraction
from llm_assets.engine import LocalEngine
from llm_assets.lake import PartLoader, PartWriter, reason_counts, removed_frame, uri
from llm_assets.profiles import CurationConfig
from llm_assets.text import ngram_hits, ngram_table, normalized_text

log = logging.getLogger(__name__)

STAGE = "training_mixture"
MIN_WHOLE_ITEM_WORDS = 5
_DOCS_PER_CHUNK = 5_000


def site_of_host(host: str | None, overrides: dict[str, str] | None = None) -> str:
    """Site name of a host: an explicit override, else the second-level label (`www.wikiverse.org` ->
    `wikiverse`; `bbc.co.uk` -> `bbc` because short labels before the suffix count as the suffix); an IP
    address is its own site."""
    if not host:
        return ""
    host = host.lower().rstrip(".")
    if overrides and host in overrides:
        return overrides[host]
    name = host[1:].split("]")[0] if host.startswith("[") else host.split(":")[0]
    try:  # an address has no labels to read a site from: the address is the site
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    labels = name.split(".")
    if len(labels) == 1:
        return labels[0]
    if len(labels) >= 3 and len(labels[-2]) <= 3 and len(labels[-1]) == 2:  # e.g. co.uk, com.au
        return labels[-3]
    return labels[-2]


def site_column(hosts: pl.Series, cfg: CurationConfig,
                site_of: Callable[[str | None], str] | None = None) -> pl.Series:
    """`site` per host by `site_of` (default `site_of_host` with `cfg.host_sites` overrides)."""
    overrides = dict(cfg.host_sites)
    rule = site_of or (lambda h: site_of_host(h, overrides))
    hosts = hosts.fill_null("")
    mapping = {h: rule(h) for h in hosts.unique().to_list()}
    return hosts.replace_strict(mapping, return_dtype=pl.Utf8).alias("site")


def read_benchmark_items(paths: Iterable[str | Path]) -> list[dict]:
    """`{query, choices}` of benchmark files in any format `llm_assets.benchmarks` reads: the question and
    answers that could leak into web text (`leak_texts`; an open question's answers stand for choices)."""
    return [dict(zip(("query", "choices"), leak_texts(item), strict=True))
            for path in paths for item in load_items(path)]


def benchmark_ngrams(items: list[dict], n: int) -> dict[int, np.ndarray]:
    """Sorted unique n-gram hashes of all item texts, keyed by n-gram length (n, or shorter whole texts)."""
    texts: list[str] = []
    for item in items:
        query, choices = item["query"], item["choices"]
        texts.append(query)
        texts.extend(f"{query} {choice}" for choice in choices)
        if choices:
            texts.append(f"{query} {' '.join(choices)}")
    if not texts:
        return {}
    normalized = pl.Series(texts).to_frame("t").select(normalized_text(pl.col("t")))["t"]
    return ngram_table(normalized, n, MIN_WHOLE_ITEM_WORDS)


def contaminated_mask(texts: pl.Series, ngrams: dict[int, np.ndarray]) -> np.ndarray:
    """True for each text that contains any of the benchmark n-grams."""
    mask = np.zeros(len(texts), dtype=bool)
    if not ngrams:
        return mask
    for lo in range(0, len(texts), _DOCS_PER_CHUNK):
        chunk = texts.slice(lo, _DOCS_PER_CHUNK).to_frame("t").select(normalized_text(pl.col("t")))["t"]
        mask[lo + np.unique(ngram_hits(chunk, ngrams)[0])] = True
    return mask


def contaminated_rows(files: Iterable[str | Path], benchmark_files: Iterable[str | Path], n: int) -> int:
    """Rows of the mixture `files` that still share an n-gram with a benchmark item (0 when decontaminated)."""
    ngrams = benchmark_ngrams(read_benchmark_items(benchmark_files), n)
    if not ngrams:
        return 0
    return sum(int(contaminated_mask(pl.read_parquet(uri(f), columns=["text"])["text"], ngrams).sum()) for f in files)


def build_mixture(docs: pl.DataFrame, cfg: CurationConfig, benchmark_files: list[Path] | tuple = (),
                  site_of: Callable[[str | None], str] | None = None,
                  ngrams: dict[int, np.ndarray] | None = None,
                  validation_ids: frozenset[str] | set[str] = frozenset()) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`(kept, removed)`: kept rows are `text, split, warc_record_id, url, host, site, copy` (and
    `fetch_time` when the input has it), one row per copy; removed rows are `warc_record_id, url, stage,
    reason, sample` (`contaminated` or `downsampled`). Every decision is per document, so parts of a crawl
    can be mixed one at a time; `ngrams` (from `benchmark_ngrams`) then saves reading the benchmark files
    for each part. Documents in `validation_ids` go to validation whatever their hash."""
    missing = {"warc_record_id", "url", "host", "text"} - set(docs.columns)
    if docs.height == 0:  # an empty part, perhaps written without a schema: give it the string columns
        docs = docs.with_columns(*(pl.lit(None, pl.Utf8).alias(c) for c in sorted(missing)),
                                 *(pl.col(c).cast(pl.Utf8) for c, t in docs.schema.items() if t == pl.Null))
    elif missing:
        raise ValueError(f"build_mixture: input documents lack columns {sorted(missing)}")
    if not 0.0 <= cfg.validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {cfg.validation_fraction}")
    bad = {s: w for s, w in cfg.source_weights.items() if not (w >= 0 and np.isfinite(w))}
    if bad:
        raise ValueError(f"source_weights must be finite and >= 0; bad entries {bad}")

    if ngrams is None:
        ngrams = benchmark_ngrams(read_benchmark_items(benchmark_files), cfg.decontamination_ngram)
    log.info("mixture: %d benchmark n-grams; scanning %d documents", sum(len(v) for v in ngrams.values()),
             docs.height)
    contaminated = pl.Series(contaminated_mask(docs["text"], ngrams))
    removed = [removed_frame(docs.filter(contaminated), STAGE, "contaminated")]
    docs = docs.filter(~contaminated)

    weights = {str(k): float(v) for k, v in cfg.source_weights.items()}
    docs = docs.with_columns(site_column(docs["host"], cfg, site_of))
    docs = docs.with_columns(
        pl.Series("_sample_u", stable_fraction(docs["warc_record_id"], "mixture-sample")),
        pl.Series("_split_u", stable_fraction(docs["warc_record_id"], "mixture-split")),
        pl.col("site").replace_strict(weights, default=1.0, return_dtype=pl.Float64).alias("_weight"),
    ).with_columns(
        pl.when((pl.col("_split_u") < cfg.validation_fraction)
                | pl.col("warc_record_id").is_in(list(validation_ids))).then(pl.lit("validation"))
        .otherwise(pl.lit("train")).alias("split"),
        (pl.col("_weight").floor() + (pl.col("_sample_u") < pl.col("_weight") % 1.0).cast(pl.Float64))
        .cast(pl.Int64).alias("_copies"),
    ).with_columns(
        pl.when(pl.col("split") == "validation").then(pl.col("_copies").clip(upper_bound=1))
        .otherwise(pl.col("_copies")).alias("_copies")
    )
    dropped = docs.filter(pl.col("_copies") == 0)
    removed.append(removed_frame(dropped, STAGE, "downsampled"))
    kept = (
        docs.filter(pl.col("_copies") > 0)
        .with_columns(pl.int_ranges(0, pl.col("_copies"), dtype=pl.Int64).alias("copy"))
        .explode("copy")
        # fetch_time orders the documents in the token shards, whatever the crawl's split into files
        .select("text", "split", "warc_record_id", "url", "host", "site", "copy",
                *(["fetch_time"] if "fetch_time" in docs.columns else []))
    )
    log.info("mixture: %d contaminated, %d downsampled, %d rows kept (%d validation)",
             removed[0].height, dropped.height, kept.height,
             kept.filter(pl.col("split") == "validation").height)
    return kept, pl.concat(removed, how="diagonal_relaxed")


@dataclass(frozen=True)
class _MixtureJob:
    """What every mixture task needs, as plain values (a task may run in another process or host)."""

    parts: tuple[str, ...]
    load: PartLoader
    write: PartWriter
    cfg: CurationConfig
    site_of: Callable[[str | None], str] | None


def _mix_task(number: int, job: _MixtureJob, ngrams: dict[int, np.ndarray],
              validation_ids: frozenset[str] = frozenset()) -> dict:
    """Mix one part and write it; returns its counts and its train document with the lowest split hash."""
    part = job.parts[number]
    kept, removed = build_mixture(job.load(part), job.cfg, site_of=job.site_of, ngrams=ngrams,
                                  validation_ids=validation_ids)
    job.write(part, kept, removed)
    ids = kept.filter(pl.col("copy") == 0).select("warc_record_id", "split")
    train_ids = ids.filter(pl.col("split") == "train")["warc_record_id"]
    lowest = None
    if train_ids.len():
        u = stable_fraction(train_ids, "mixture-split")
        lowest = (float(u[int(np.argmin(u))]), number, train_ids[int(np.argmin(u))])
    log.info("mixture: part %d/%d (%s), %d rows", number + 1, len(job.parts), part, kept.height)
    reasons = reason_counts(removed)
    return {"train": train_ids.len(), "validation": ids.height - train_ids.len(), "lowest": lowest,
            "written": (kept.height, removed.height, reasons)}


def build_mixture_parts(parts: list[str], load: PartLoader, write: PartWriter, cfg: CurationConfig,
                        benchmark_files: list[Path] | tuple = (),
                        site_of: Callable[[str | None], str] | None = None, engine=None) -> dict:
    """`build_mixture` part by part, one task per part on `engine` (default: in this process): `load(part)`
    gives a part's documents, `write(part, kept, removed)` takes its mixture rows (both picklable for the
    ray engine); the benchmark n-grams are built once and shared. If no document landed in validation
    and at least two are in train, the part holding the train document with the lowest split hash is
    mixed and written again with that document in validation. Returns `train_documents`,
    `validation_documents`, `moved_to_validation` (that document's id, or None) and per part
    `(kept, removed, reasons)` as `parts`."""
    items = read_benchmark_items(benchmark_files)
    ngrams = benchmark_ngrams(items, cfg.decontamination_ngram)
    log.info("mixture: %d benchmark items from %d files", len(items), len(benchmark_files))
    engine = engine or LocalEngine()
    job = _MixtureJob(tuple(parts), load, write, cfg, site_of)
    results = engine.map(_mix_task, list(range(len(parts))), "mixture", job=job, ngrams=ngrams)
    train = sum(r["train"] for r in results)
    validation = sum(r["validation"] for r in results)
    written = {part: r["written"] for part, r in zip(parts, results, strict=True)}
    candidates = [r["lowest"] for r in results if r["lowest"] is not None]
    moved = None
    if validation == 0 and train >= 2 and cfg.validation_fraction > 0 and candidates:
        _, number, moved = min(candidates)
        again = _mix_task(number, job, ngrams, frozenset({moved}))
        written[parts[number]] = again["written"]
        train, validation = train - 1, 1
        log.info("mixture: no document hashed into validation; moved %s there (a crawl of %d documents)",
                 moved, train + 1)
    return {"train_documents": train, "validation_documents": validation, "moved_to_validation": moved,
            "parts": written}
