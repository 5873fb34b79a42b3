"""The quality classifier: logistic regression on hashed word unigrams and bigrams, reference text against
other crawl pages.

Reference ("high quality") text is the pages of `cfg.reference_hosts` in the crawl (the encyclopedia of a
synthetic crawl), the texts of `cfg.reference_files` (see `reference`), or both. With no reference text, or
too few documents on either side, the model is skipped: `metrics.json` says why, no model file exists, and the
quality stage keeps every document the heuristics pass. Its weights are saved as safetensors, so loading it runs
no pickled code.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import polars as pl
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_fscore_support

from llm_assets.profiles import CurationConfig
from llm_assets.text import HASH_SEED

from .reference import read_reference_texts

log = logging.getLogger(__name__)

MODEL_FILE = "quality_model.safetensors"
METRICS_FILE = "metrics.json"


class QualityModelSkipped(ValueError):
    """The quality model cannot be trained on this crawl (no reference text, or too few documents)."""


def train_quality_classifier(docs: pl.DataFrame | pl.LazyFrame, out_dir: str | Path, cfg: CurationConfig,
                             n_features: int = 1 << 18, validation_share: float = 0.2) -> dict:
    """Train the quality model on `training_documents(docs, cfg)`: reference text against as many other
    pages.

    Writes `out_dir/quality_model.safetensors` and `out_dir/metrics.json`; returns the metrics:
    validation precision/recall/F1 and accuracy, train/validation sizes, and the model path. When the
    model cannot be trained (see `training_documents`), returns and writes `skipped: True` and
    `skip_reason`, and removes any model file of an earlier run.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if "quality_model" in cfg.off:
        return _skip(out, "switched off (curation.off names quality_model)", cfg)
    reference = read_reference_texts(cfg.reference_files)
    try:
        data = training_documents(docs, cfg, reference)
    except QualityModelSkipped as skipped:
        return _skip(out, str(skipped), cfg)
    is_val = stable_fraction(data["warc_record_id"], "quality-validation") < validation_share
    vectorizer = _vectorizer(n_features)
    features = vectorizer.transform(data["text"].to_list())
    labels = data["label"].to_numpy()
    train_idx, val_idx = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    if len(np.unique(labels[train_idx])) < 2:
        return _skip(out, "the quality model's training split holds a single class; need more documents", cfg)
    from_files = int(data["warc_record_id"].str.starts_with("reference:").sum())
    log.info("quality classifier: training on %d documents (%d reference), validating on %d",
             len(train_idx), int(labels[train_idx].sum()), len(val_idx))
    model = LogisticRegression(C=4.0, max_iter=500)
    model.fit(features[train_idx], labels[train_idx])
    metrics: dict = {"skipped": False, "train_documents": len(train_idx), "validation_documents": len(val_idx),
                     "reference_documents": int(labels.sum()), "reference_from_files": from_files,
                     "other_documents": int((labels == 0).sum()), "reference_hosts": list(cfg.reference_hosts),
                     "reference_files": list(cfg.reference_files), "n_features": n_features}
    if len(val_idx):
        predicted = model.predict(features[val_idx])
        p, r, f, _ = precision_recall_fscore_support(labels[val_idx], predicted, average="binary",
                                                     zero_division=0)
        metrics.update(precision=float(p), recall=float(r), f1=float(f),
                       accuracy=float((predicted == labels[val_idx]).mean()))
    model_path = out / MODEL_FILE
    tmp = model_path.with_name(f".{MODEL_FILE}.tmp")
    save_file({"coef": model.coef_[0].astype(np.float32), "intercept": model.intercept_.astype(np.float32)},
              str(tmp), metadata={"n_features": str(n_features), "ngram_range": "1,2",
                                  "features": "sklearn HashingVectorizer, l2, no alternate sign"})
    tmp.replace(model_path)
    metrics["model_path"] = str(model_path)
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    log.info("quality classifier: %s", {k: v for k, v in metrics.items() if k != "model_path"})
    return metrics


def trained_model(model_dir: str | Path) -> Path | None:
    """The model file `train_quality_classifier` wrote in `model_dir`, or None when it skipped the model."""
    model_dir = Path(model_dir)
    metrics_file = model_dir / METRICS_FILE
    if not metrics_file.exists():
        raise FileNotFoundError(f"quality_classifier is not materialized: {metrics_file} does not exist; "
                                "materialize it first")
    if json.loads(metrics_file.read_text()).get("skipped"):
        return None
    return model_dir / MODEL_FILE


def quality_scores(texts: list[str], model_path: str | Path) -> np.ndarray:
    """Probability of 'reference-like' per text from a saved quality model."""
    path = Path(model_path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"quality model {path} not found; run train_quality_classifier first")
    weights = load_file(str(path))
    coef, intercept = weights["coef"], float(weights["intercept"][0])
    if not texts:
        return np.zeros(0)
    features = _vectorizer(len(coef)).transform(texts)
    return 1.0 / (1.0 + np.exp(-(features @ coef + intercept)))


def training_documents(docs: pl.DataFrame | pl.LazyFrame, cfg: CurationConfig,
                       reference: pl.DataFrame | None = None) -> pl.DataFrame:
    """`warc_record_id, text, label` of the quality model's training set, chosen from ids and hosts only.

    Positives are pages of `cfg.reference_hosts` plus the texts of `reference` (`read_reference_texts`
    of `cfg.reference_files` when not given; their ids start with `reference:`), at most
    `cfg.quality_max_train_docs` and at most as many as there are other pages, hash-chosen; negatives as
    many other crawl pages, hash round-robin over hosts. With a lazy frame (the stage's part files) only the chosen documents' text is ever read.
    Raises `QualityModelSkipped` without reference text or with fewer than `cfg.quality_min_train_docs`
    documents on either side.
    """
    docs = docs.lazy()
    if reference is None:
        reference = read_reference_texts(cfg.reference_files)
    hosts = list(cfg.reference_hosts)
    schema = docs.collect_schema().names()
    meta = (_candidates(docs, hosts, cfg.quality_max_train_docs) if schema
            else pl.DataFrame(schema={"warc_record_id": pl.Utf8, "host": pl.Utf8}))
    is_reference = meta["host"].is_in(hosts)
    from_hosts, others = meta.filter(is_reference), meta.filter(~is_reference)
    positives = pl.concat([from_hosts.select("warc_record_id"),
                           reference.select(pl.col("reference_id").alias("warc_record_id"))])
    minimum = max(2, int(cfg.quality_min_train_docs))
    if positives.height == 0:
        raise QualityModelSkipped(
            "no reference text: the crawl has no pages of the reference hosts "
            f"{tuple(hosts) if hosts else '(none configured)'} and no reference files are configured "
            "(CurationConfig.reference_files, `curate --reference`)")
    if positives.height < minimum or others.height < minimum:
        raise QualityModelSkipped(
            f"too few documents to train the quality model: {positives.height} reference and "
            f"{others.height} other, need at least {minimum} of each (CurationConfig.quality_min_train_docs)")
    # balanced classes: reference files can hold far more texts than the crawl has other pages
    cap = min(cfg.quality_max_train_docs, others.height)
    if positives.height > cap:
        positives = _hash_sample(positives, cap, "quality-positives", balance_hosts=False)
    negatives = _hash_sample(others, positives.height, "quality-negatives", balance_hosts=True)
    chosen = pl.concat([positives.select("warc_record_id", pl.lit(1).alias("label")),
                        negatives.select("warc_record_id", pl.lit(0).alias("label"))])
    texts = docs.select("warc_record_id", "text").join(chosen.lazy(), on="warc_record_id", how="semi").collect()
    texts = pl.concat([texts, reference.select(pl.col("reference_id").alias("warc_record_id"), "text")
                       .join(chosen, on="warc_record_id", how="semi")])
    return chosen.join(texts.unique("warc_record_id"), on="warc_record_id", how="left",
                       maintain_order="left").select(
        "warc_record_id", "text", "label")


CANDIDATES_PER_CHOICE = 10  # each class's candidates are cut to 10x the documents the model trains on


def _candidates(docs: pl.LazyFrame, hosts: list[str], cap: int) -> pl.DataFrame:
    """`warc_record_id, host` of the documents the training set is chosen from: all of them, unless a class
    (reference hosts, others) has more than `CANDIDATES_PER_CHOICE` x `cap`; then a hash of the id keeps
    about that many of it. So the scan is streamed and what it holds is bounded by the cap, not the crawl."""
    is_reference = pl.col("host").is_in(hosts)
    sizes = dict(docs.select(is_reference.fill_null(False).alias("_ref")).group_by("_ref").len()
                 .collect(engine="streaming").iter_rows())
    wanted = CANDIDATES_PER_CHOICE * max(1, cap)
    if all(n <= wanted for n in sizes.values()):
        return docs.select("warc_record_id", "host").collect()

    def below(n: int) -> pl.Expr:  # a hash under this bound keeps about `wanted` of `n` documents
        bound = min(2**64 - 1, int(2**64 * wanted / n)) if n > wanted else 2**64 - 1
        return pl.col("warc_record_id").hash(HASH_SEED) <= pl.lit(bound, dtype=pl.UInt64)

    keep = (pl.when(is_reference.fill_null(False)).then(below(sizes.get(True, 0)))
            .otherwise(below(sizes.get(False, 0))))
    log.info("quality classifier: choosing from about %d of %s documents per class", wanted, sizes)
    # sorted: the streamed scan's row order is not the files' order, and the training set's order is kept
    return docs.select("warc_record_id", "host").filter(keep).collect(engine="streaming").sort("warc_record_id")


def stable_fraction(keys: pl.Series, salt: str) -> np.ndarray:
    """A number in [0, 1) per key from BLAKE2b: identical on every machine, version and run."""
    salt_bytes = salt.encode()
    return np.array(
        [int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8, key=salt_bytes).digest(), "big")
         for k in keys.cast(pl.Utf8).fill_null("").to_list()],
        dtype=np.float64,
    ) / 2.0**64


def _vectorizer(n_features: int) -> HashingVectorizer:
    return HashingVectorizer(n_features=n_features, ngram_range=(1, 2), alternate_sign=False,
                             lowercase=True, norm="l2")


def _hash_sample(docs: pl.DataFrame, count: int, salt: str, balance_hosts: bool) -> pl.DataFrame:
    """`count` hash-chosen documents; with `balance_hosts`, taken round-robin across hosts.

    A plain random sample is mostly the few largest hosts, so the model would never see the rare bad
    sites (spam, adult, junk) as negatives; round-robin gives every host an equal share.
    """
    ranked = docs.with_columns(pl.Series("_u", stable_fraction(docs["warc_record_id"], salt)))
    if not balance_hosts:
        return ranked.sort("_u").head(count).drop("_u")
    ranked = ranked.with_columns(pl.col("_u").rank("ordinal").over("host").alias("_turn"))
    return ranked.sort("_turn", "_u").head(count).drop("_u", "_turn")


def _skip(out: Path, reason: str, cfg: CurationConfig) -> dict:
    """Record that the model was skipped: metrics.json says why, and no (stale) model file is left."""
    (out / MODEL_FILE).unlink(missing_ok=True)
    metrics = {"skipped": True, "skip_reason": reason, "model_path": None,
               "reference_hosts": list(cfg.reference_hosts), "reference_files": list(cfg.reference_files)}
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    log.warning("quality classifier skipped: %s; the quality stage keeps what the heuristics pass", reason)
    return metrics

