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

Modules: `rules` (the algorithms on one in-memory frame: MinHash signatures and LSH bands, clusters,
boilerplate line keys and the cut), `shuffle` (the engine layer: map and reduce tasks that apply the
rules to documents spread over many parts, on the local or the ray engine, and `deduplicate` for one frame)
and `exchange` (the scratch files through which those tasks pass hashes).
"""

from .rules import (
    band_hashes,
    boilerplate_keys,
    cut_boilerplate,
    line_keys,
    minhash_signatures,
    near_duplicate_clusters,
    word_windows,
)
from .shuffle import MAX_BUCKETS, PARTS_PER_BUCKET, PARTS_PER_GROUP, STAGE, deduplicate, deduplicate_parts

__all__ = [
    "MAX_BUCKETS",
    "PARTS_PER_BUCKET",
    "PARTS_PER_GROUP",
    "STAGE",
    "band_hashes",
    "boilerplate_keys",
    "cut_boilerplate",
    "deduplicate",
    "deduplicate_parts",
    "line_keys",
    "minhash_signatures",
    "near_duplicate_clusters",
    "word_windows",
]
