"""The engine layer of deduplication: map and reduce tasks over parts, exchanging hashes through Parquet
files in a scratch folder, so no task holds more than one part's text or one hash bucket's keys
(`deduplicate_parts`); `deduplicate` runs the same on one in-memory frame. The rules are in `rules`."""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from llm_assets.engine import LocalEngine, RayEngine
from llm_assets.lake import (
    PartLoader,
    PartWriter,
    reason_counts,
    removed_frame,
    uri,
    write_parquet,
)
from llm_assets.profiles import CurationConfig
from llm_assets.text import HASH_SEED, normalized_text

from .exchange import PARTS_PER_GROUP, Shuffle, group_name
from .rules import band_hashes, boilerplate_keys, components, cut_boilerplate, line_keys, minhash_signatures

log = logging.getLogger(__name__)

STAGE = "deduplicated_documents"

_REQUIRED = {"warc_record_id", "url", "host", "text", "fetch_time"}
# representative order: earliest fetch, then lowest id, then input position (part, row) for full determinism
_ORDER = ["fetch_time", "warc_record_id", "_part", "_row"]
_NODE_PART = 2**32  # a document's node number in the pair graph: part * 2**32 + row
# hash buckets of each shuffle: a bucket holds about the keys of PARTS_PER_BUCKET parts (ids and hashes, not
# text)
PARTS_PER_BUCKET = 8
MAX_BUCKETS = 256


def _load(load: PartLoader, part: str) -> pl.DataFrame:
    docs = load(part)
    missing = _REQUIRED - set(docs.columns)
    if missing and docs.height == 0:  # an empty part written without a schema holds no documents either
        docs = docs.with_columns(pl.lit(None, pl.Datetime("us", "UTC") if c == "fetch_time" else pl.Utf8).alias(c)
                                 for c in sorted(missing))
    elif missing:
        raise ValueError(f"deduplicate: input documents of part {part!r} lack columns {sorted(missing)}")
    # an empty part may carry untyped (null) columns: give the shuffled ones their types
    typed = {"warc_record_id": pl.Utf8, "url": pl.Utf8, "host": pl.Utf8, "text": pl.Utf8,
             "fetch_time": pl.Datetime("us", "UTC")}
    return docs.with_columns(*(pl.col(c).cast(t) for c, t in typed.items() if docs.schema[c] == pl.Null)).with_columns(
        pl.col("text").fill_null(""), pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"))


def _page_hash(text: pl.Expr) -> pl.Expr:
    return normalized_text(text).hash(seed=HASH_SEED)


def _bucket_of(hashes: pl.Expr, buckets: int) -> pl.Expr:
    return (hashes % buckets).cast(pl.UInt32).alias("_bucket")


def _representatives(rows: pl.DataFrame, group: str) -> pl.DataFrame:
    """`rows` with `_is_rep` (first of its `group` in representative order) and `duplicate_of` (the id of
    the group's representative; null for the representative itself)."""
    rows = rows.sort(_ORDER, nulls_last=True)
    rep = pl.col("warc_record_id").first().over(group)
    first = pl.int_range(pl.len()).over(group) == 0
    return rows.with_columns(first.alias("_is_rep"), pl.when(first).then(None).otherwise(rep).alias("duplicate_of"))


def _index_task(number: int, job: Shuffle) -> int:
    """Map 1: each document's place in representative order and its page hash; the (host, line, page)
    triples of the boilerplate rule."""
    docs = _load(job.load, job.parts[number]).with_columns(_page_hash(pl.col("text")).alias("_page"))
    job.put_buckets("index", number, docs.select(pl.lit(number, pl.UInt32).alias("_part"), "_row", "warc_record_id",
                                         "fetch_time", "host", "_page", _bucket_of(pl.col("_page"), job.buckets)))
    lines = line_keys(docs).join(docs.select("_row", "_page"), on="_row").select("host", "_key", "_page").unique()
    job.put_buckets("lines", number, lines.with_columns(_bucket_of(pl.col("host").hash(HASH_SEED), job.buckets)))
    return docs.height


def _merge(files: list, target, row_group_by: str | None) -> int:
    """`files` rewritten as one file `target` (a row group per value of `row_group_by`), then deleted.
    Returns the rows merged."""
    merged = pl.concat([pl.read_parquet(uri(f)) for f in files], how="vertical_relaxed")
    write_parquet(merged, target, row_group_by=row_group_by)
    for f in files:
        f.unlink()
    return merged.height


def _combine_task(group: int, job: Shuffle, steps: tuple[str, ...]) -> int:
    """After a map step: the per-part files of each of `steps` of one group of parts, combined into one file
    with a row group per bucket, so a reduce task opens one file per group. Holds the group's hashes and
    ids, not text."""
    first = group * job.group_parts
    numbers = range(first, min(first + job.group_parts, len(job.parts)))
    return sum(_merge([job.file(step, n) for n in numbers], job.combined(step, group), "_bucket") for step in steps)


def _gather_task(group: int, job: Shuffle, steps: tuple[str, ...]) -> int:
    """After a reduce step: the files its tasks wrote for one group of parts (one per bucket, `put_by_part`)
    combined into one with a row group per part, so a part's task opens one file, not one per bucket."""
    return sum(_merge(sorted((job.folder(step) / group_name(group)).glob("*.parquet"), key=str),
                      job.combined(step, group), "_part") for step in steps)


def _gather_keys_task(_: int, job: Shuffle) -> int:
    """After the boilerplate step: its per-bucket key files as one, which every part's task reads."""
    return _merge(sorted(job.folder("keys").glob("*.parquet"), key=str), job.file("keys", "all"), None)


def _exact_before_task(bucket: int, job: Shuffle) -> int:
    """Reduce 1 (by page hash): exact duplicates before the boilerplate cut; the survivors' (host, page)
    pairs, bucketed by host for reduce 2."""
    rows = _representatives(job.bucket("index", bucket), "_page")
    job.put_by_part("exact_before", bucket, rows.select("_part", "_row", "_is_rep", "duplicate_of"))
    survivors = rows.filter(pl.col("_is_rep")).select("host", "_page").unique()
    job.put_buckets("survivors", bucket, survivors.with_columns(_bucket_of(pl.col("host").hash(HASH_SEED), job.buckets)))
    return int((~rows["_is_rep"]).sum())


def _boilerplate_task(bucket: int, job: Shuffle) -> int:
    """Reduce 2 (by host): the hosts' boilerplate line keys, judged on the pages that survived reduce 1."""
    survivors = job.bucket("survivors", bucket).select("host", "_page").unique()
    line_pages = job.bucket("lines", bucket).select("host", "_key", "_page").unique().join(
        survivors, on=["host", "_page"], how="semi")
    keys = boilerplate_keys(line_pages, job.cfg)
    job.put("keys", bucket, keys)
    return keys.height


def _survivors(docs: pl.DataFrame, job: Shuffle, number: int) -> pl.DataFrame:
    """The part's documents that survived the first exact-duplicate pass, boilerplate cut."""
    reps = job.of_part("exact_before", number).filter(pl.col("_is_rep")).select("_row").collect()
    docs = docs.join(reps, on="_row", how="semi")
    return cut_boilerplate(docs, job.keys_for(docs["host"]))


def _cut_task(number: int, job: Shuffle) -> int:
    """Map 2: the boilerplate cut of the survivors; per document whether it is now empty and the hash of
    what is left, bucketed by that hash for reduce 3."""
    docs = _survivors(_load(job.load, job.parts[number]), job, number).with_columns(
        pl.lit(number, pl.UInt32).alias("_part"), (pl.col("text") == "").alias("_empty"),
        _page_hash(pl.col("text")).alias("_exact"))
    job.put_buckets("after", number, docs.select("_part", "_row", "warc_record_id", "fetch_time", "_empty", "_exact",
                                                 _bucket_of(pl.col("_exact"), job.buckets)))
    return docs.height


def _exact_after_task(bucket: int, job: Shuffle) -> int:
    """Reduce 3 (by hash after the cut): exact duplicates that only the host's boilerplate told apart."""
    rows = _representatives(job.bucket("after", bucket).filter(~pl.col("_empty")), "_exact")
    job.put_by_part("exact_after", bucket, rows.filter(~pl.col("_is_rep")).select("_part", "_row", "duplicate_of"))
    return int((~rows["_is_rep"]).sum())


def _sign_task(number: int, job: Shuffle) -> int:
    """Map 3: MinHash signatures of the part's unique documents (not empty after the cut, not an exact
    duplicate), as LSH band buckets bucketed for reduce 4. The cut is made again: cheaper than storing
    the cut text, and signing stays the only pass over it."""
    drop = job.of_part("exact_after", number).select("_row").collect()
    docs = (_survivors(_load(job.load, job.parts[number]), job, number).join(drop, on="_row", how="anti")
            .filter(pl.col("text") != ""))
    signatures, has_ngrams = minhash_signatures(docs.select(normalized_text(pl.col("text")))["text"], job.cfg)
    signed, hashes = docs.filter(pl.Series(has_ngrams)), band_hashes(signatures[has_ngrams], job.cfg)
    bands = pl.DataFrame({
        "_part": pl.Series(np.full(hashes.size, number, np.uint32)),
        "_row": pl.Series(np.repeat(signed["_row"].to_numpy(), hashes.shape[1]), dtype=pl.UInt32),
        "_band": pl.Series(np.tile(np.arange(hashes.shape[1], dtype=np.uint8), len(signed))),
        "_hash": pl.Series(hashes.reshape(-1), dtype=pl.UInt64),
    })
    job.put_buckets("bands", number, bands.with_columns(_bucket_of(pl.col("_hash"), job.buckets)))
    return signed.height


def _candidate_pairs_task(bucket: int, job: Shuffle) -> int:
    """Reduce 4 (by band bucket): documents that share a band bucket, as edges to the bucket's first member."""
    node = pl.col("_part").cast(pl.UInt64) * _NODE_PART + pl.col("_row").cast(pl.UInt64)
    edges = (job.bucket("bands", bucket).select("_band", "_hash", node.alias("_node"))
             .with_columns(pl.col("_node").min().over("_band", "_hash").alias("_to"))
             .filter(pl.col("_node") != pl.col("_to")).select("_node", "_to").unique())
    job.put("edges", bucket, edges)
    return edges.height


def _clusters_task(_: int, job: Shuffle) -> tuple[int, int]:
    """Connected components of the candidate pairs (only documents with a near duplicate take part); per
    cluster the representative, and a removal for every other member. Returns (removals, clusters)."""
    edges = job.scan("edges").collect()
    if edges.height == 0:
        job.put_by_part("near", 0, pl.DataFrame(schema={"_part": pl.UInt32, "_row": pl.UInt32,
                                                        "duplicate_of": pl.Utf8}))
        return 0, 0
    nodes = np.unique(np.concatenate([edges["_node"].to_numpy(), edges["_to"].to_numpy()]))
    lookup = pl.DataFrame({"_node": pl.Series(nodes, dtype=pl.UInt64)})
    src, dst = np.searchsorted(nodes, edges["_node"].to_numpy()), np.searchsorted(nodes, edges["_to"].to_numpy())
    labels = components(src, dst, len(nodes))
    members = lookup.with_columns(pl.Series("_cluster", labels, dtype=pl.Int64),
                                  (pl.col("_node") // _NODE_PART).cast(pl.UInt32).alias("_part"),
                                  (pl.col("_node") % _NODE_PART).cast(pl.UInt32).alias("_row"))
    # streamed: the members are a few percent of the documents, the scan is all of them
    keys = (job.scan("after")
            .select("_part", "_row", "warc_record_id", "fetch_time")
            .join(members.lazy().select("_part", "_row", "_cluster"), on=["_part", "_row"])
            .collect(engine="streaming"))
    rows = _representatives(keys, "_cluster").filter(~pl.col("_is_rep"))
    job.put_by_part("near", 0, rows.select("_part", "_row", "duplicate_of"))
    return rows.height, int(labels.max()) + 1


def _apply_task(number: int, job: Shuffle) -> tuple[int, int, dict]:
    """Map 4: the part's kept rows (boilerplate cut, in representative order) and removed rows, written.
    Returns (kept, removed, removed by reason)."""
    part = job.parts[number]
    docs = _load(job.load, part)
    columns = [c for c in docs.columns if c != "_row"]
    before = docs.join(job.of_part("exact_before", number).filter(~pl.col("_is_rep"))
                       .select("_row", "duplicate_of").collect(), on="_row")
    empty = (pl.scan_parquet(uri(job.group_file("after", number)))
             .filter((pl.col("_part") == number) & pl.col("_empty"))
             .select("_row", pl.lit(None, pl.Utf8).alias("duplicate_of"), pl.lit("boilerplate_only").alias("_reason")))
    later = pl.concat([empty.collect()] + [
        job.of_part(step, number).select("_row", "duplicate_of", pl.lit(reason).alias("_reason")).collect()
        for step, reason in (("exact_after", "exact_duplicate"), ("near", "near_duplicate"))])
    cut = _survivors(docs, job, number).join(later, on="_row", how="left")
    kept = (cut.filter(pl.col("_reason").is_null()).sort("fetch_time", "warc_record_id", "_row", nulls_last=True)
            .select(*columns, "boilerplate_lines_removed"))
    removed = pl.concat([_duplicate_removed(before.with_columns(pl.lit("exact_duplicate").alias("_reason"))),
                         _duplicate_removed(cut.filter(pl.col("_reason").is_not_null()))], how="diagonal_relaxed")
    job.write(part, kept, removed)
    reasons = reason_counts(removed)
    log.info("dedup: part %d/%d (%s), %d kept, %d removed", number + 1, len(job.parts), part, kept.height,
             removed.height)
    return kept.height, removed.height, reasons


def _pass_through_task(number: int, parts: tuple[str, ...], load: PartLoader, write: PartWriter
                       ) -> tuple[int, int, dict]:
    """With dedup switched off: a part's rows written as they came (no line cut), nothing removed."""
    docs = _load(load, parts[number])
    kept = docs.drop("_row").with_columns(pl.lit(0, pl.Int32).alias("boilerplate_lines_removed"))
    write(parts[number], kept, _duplicate_removed(docs.head(0).with_columns(
        pl.lit(None, pl.Utf8).alias("_reason"), pl.lit(None, pl.Utf8).alias("duplicate_of"))))
    return kept.height, 0, {}


def _duplicate_removed(rows: pl.DataFrame) -> pl.DataFrame:
    """Removed rows in representative order, with the representative's id and a cluster number derived from
    it (the same for every document removed in favour of one representative, whatever the engine)."""
    rows = rows.sort("fetch_time", "warc_record_id", "_row", nulls_last=True)
    cluster = pl.when(pl.col("duplicate_of").is_not_null()).then(
        (pl.col("duplicate_of").hash(HASH_SEED) // 2).cast(pl.Int64))
    return removed_frame(rows, STAGE, pl.col("_reason")).with_columns(
        rows["duplicate_of"], rows.select(cluster.alias("cluster_id"))["cluster_id"])


def deduplicate_parts(parts: Sequence[str], load: PartLoader, write: PartWriter, cfg: CurationConfig,
                      engine: LocalEngine | RayEngine | None = None, scratch: str | Path | None = None,
                      buckets: int | None = None) -> dict:
    """Deduplicate documents spread over `parts`; no task holds more than one part's text or one hash
    bucket's keys.

    `load(part)` returns a part's documents, `write(part, kept, removed)` takes its results; both must be
    picklable for the ray engine (e.g. `functools.partial` of the lake's functions). The work is map and
    reduce tasks on `engine` (default: in this process), exchanging hashes through files under `scratch`
    (a folder every task can read; default a temporary one) in `buckets` hash buckets (default: one per
    `PARTS_PER_BUCKET` parts; the decisions do not depend on it). After each map step, a task per group of
    `PARTS_PER_GROUP` parts combines the group's files into one, so a reduce task opens one file per group,
    and after each reduce step the same for the files a part's task reads back:
    1. map per part: page hashes and (host, line) keys;
    2. reduce per page-hash bucket: exact duplicates; per host bucket: boilerplate line keys;
    3. map per part: the cut and the hash of what is left; reduce per bucket: exact duplicates after it;
    4. map per part: MinHash band buckets of the unique documents; reduce per band bucket: documents
       sharing one (candidate pairs);
    5. one task: connected components of the candidate pairs, one representative each;
    6. map per part: the decisions applied and written.
    Returns counts: input, kept, removed, per reason, and per part `(kept, removed, reasons)`.
    """
    if not parts:
        return {"input": 0, "kept": 0, "removed": 0, "removed_by_reason": {}, "parts": {}}
    engine = engine or LocalEngine()
    if "dedup" in cfg.off:
        log.info("dedup: switched off (curation.off names dedup); every page is kept as it came")
        written = engine.map(_pass_through_task, list(range(len(parts))), "dedup (off)", parts=tuple(parts),
                             load=load, write=write)
        return _totals(parts, sum(kept for kept, _, _ in written), written)
    with contextlib.ExitStack() as stack:
        if scratch is None:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="dedup-"))
        buckets = buckets or max(1, min(MAX_BUCKETS, math.ceil(len(parts) / PARTS_PER_BUCKET)))
        job = Shuffle(tuple(parts), load, write, cfg, str(scratch), buckets, PARTS_PER_GROUP)
        numbers, buckets = list(range(len(parts))), list(range(job.buckets))
        sizes = engine.map(_index_task, numbers, "dedup 1/8 (page hashes)", job=job)
        groups = job.groups()
        engine.map(_combine_task, groups, "dedup 1/8 (combine)", job=job, steps=("index", "lines"))
        exact_before = sum(engine.map(_exact_before_task, buckets, "dedup 2/8 (exact duplicates)", job=job))
        keys = sum(engine.map(_boilerplate_task, buckets, "dedup 3/8 (boilerplate lines)", job=job))
        engine.map(_gather_task, groups, "dedup 3/8 (gather)", job=job, steps=("exact_before",))
        engine.map(_gather_keys_task, [0], "dedup 3/8 (gather keys)", job=job)
        log.info("dedup: %d documents in %d parts, %d exact duplicates, %d boilerplate line keys, %d buckets",
                 sum(sizes), len(parts), exact_before, keys, job.buckets)
        engine.map(_cut_task, numbers, "dedup 4/8 (boilerplate cut)", job=job)
        engine.map(_combine_task, groups, "dedup 4/8 (combine)", job=job, steps=("after",))
        exact_after = sum(engine.map(_exact_after_task, buckets, "dedup 5/8 (exact duplicates after the cut)",
                                     job=job))
        engine.map(_gather_task, groups, "dedup 5/8 (gather)", job=job, steps=("exact_after",))
        signed = sum(engine.map(_sign_task, numbers, "dedup 6/8 (MinHash)", job=job))
        engine.map(_combine_task, groups, "dedup 6/8 (combine)", job=job, steps=("bands",))
        pairs = sum(engine.map(_candidate_pairs_task, buckets, "dedup 7/8 (LSH candidate pairs)", job=job))
        (near, clusters), = engine.map(_clusters_task, [0], "dedup 7/8 (clusters)", job=job)
        engine.map(_gather_task, groups, "dedup 7/8 (gather)", job=job, steps=("near",))
        log.info("dedup: %d exact duplicates after the cut, %d documents signed, %d candidate pairs, %d near "
                 "duplicates in %d clusters", exact_after, signed, pairs, near, clusters)
        written = engine.map(_apply_task, numbers, "dedup 8/8 (write)", job=job)
    return _totals(parts, sum(sizes), written)


def _totals(parts: Sequence[str], documents: int, written: list[tuple[int, int, dict]]) -> dict:
    """The counts `deduplicate_parts` returns, from each part's `(kept, removed, reasons)`."""
    counts: dict = {"input": documents, "kept": 0, "removed": 0, "removed_by_reason": Counter(), "parts": {}}
    for part, (kept, removed, reasons) in zip(parts, written, strict=True):
        counts["kept"] += kept
        counts["removed"] += removed
        counts["removed_by_reason"].update(reasons)
        counts["parts"][part] = (kept, removed, reasons)
    counts["removed_by_reason"] = dict(counts["removed_by_reason"])
    return counts


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
