"""Quality: heuristic rule families (Gopher, C4, FineWeb) and a linear quality classifier.

Each rule family is one small class; calling it on a text returns `None` to keep the document or a
reason such as `gopher_quality:mean_word_length`. Thresholds default to the published values
(Gopher: Rae et al. 2021; C4: Raffel et al. 2020; FineWeb: Penedo et al. 2024) and live in
`HeuristicThresholds`; `CurationConfig.heuristic_overrides` replaces any of them by name.

The classifier is logistic regression on hashed word unigrams and bigrams, trained on reference
("high quality") text against other crawl pages. Reference text is the pages of `cfg.reference_hosts` in
the crawl (the encyclopedia of a synthetic crawl), the texts of `cfg.reference_files` (Parquet `text`
column, JSONL `text` field, or plain text with one document per blank-line-separated block), or both.
With no reference text, or too few documents on either side, the model is skipped: `metrics.json` says
why, no model file exists, and the quality stage keeps every document the heuristics pass. Its weights
are saved as safetensors, so loading it runs no pickled code.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import polars as pl
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_fscore_support

from llm_assets.lake import PartLoader, PartWriter, removed_frame
from llm_assets.profiles import CurationConfig

log = logging.getLogger(__name__)

STAGE = "quality_documents"
MODEL_FILE = "quality_model.safetensors"
METRICS_FILE = "metrics.json"

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("•", "●", "○", "▪", "◦", "-", "*", "–", "—", "·", "‣", "⁃")
ELLIPSES = ("...", "…")
C4_TERMINAL = (".", "?", "!", '"', "”")
LINE_TERMINAL = (".", "?", "!", '"', "'", "”", "’", "…", ")", ":", ";")
POLICY_PHRASES = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                  "use cookies")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_LINE_BREAK = re.compile(r"\n+")
_ALPHA = re.compile(r"[^\W\d_]")
_WORD_CHAR = re.compile(r"\w")
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")


@dataclass(frozen=True)
class HeuristicThresholds:
    """Published defaults of the heuristic filters; every one can be overridden by name."""

    # Gopher quality
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    min_alpha_words_ratio: float = 0.8
    min_stop_words: int = 2
    # Gopher repetition
    max_dup_line_ratio: float = 0.3
    max_dup_paragraph_ratio: float = 0.3
    max_dup_line_char_ratio: float = 0.2
    max_dup_paragraph_char_ratio: float = 0.2
    max_top_ngram_char_ratio: tuple[tuple[int, float], ...] = ((2, 0.2), (3, 0.18), (4, 0.16))
    max_dup_ngram_char_ratio: tuple[tuple[int, float], ...] = (
        (5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))
    # C4
    c4_drop_lines_without_terminal_punct: bool = True
    c4_min_words_per_line: int = 3
    c4_max_word_length: int = 1000
    c4_min_sentences: int = 5
    # FineWeb
    min_line_punct_ratio: float = 0.12
    short_line_length: int = 30
    max_short_line_ratio: float = 0.67
    max_dup_line_char_share: float = 0.01
    max_newline_word_ratio: float = 0.3

    @classmethod
    def from_config(cls, cfg: CurationConfig) -> HeuristicThresholds:
        overrides = dict(getattr(cfg, "heuristic_overrides", {}) or {})
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"CurationConfig.heuristic_overrides has unknown names {sorted(unknown)}; "
                             f"valid: {[f.name for f in fields(cls)]}")
        return replace(cls(), **overrides)


def _words(text: str) -> list[str]:
    return text.split()


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(count, characters) of items that already occurred earlier in the list."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


class GopherQuality:
    """Document shape: length, word length, symbols, bullets, ellipses, alphabetic words, stop words."""

    name = "gopher_quality"

    def __init__(self, t: HeuristicThresholds):
        self.t = t

    def __call__(self, text: str) -> str | None:
        t = self.t
        words = _words(text)
        content_words = [w for w in words if _WORD_CHAR.search(w)]
        n = len(content_words)
        if n < t.min_words:
            return f"{self.name}:too_few_words"
        if n > t.max_words:
            return f"{self.name}:too_many_words"
        mean_length = sum(len(w) for w in content_words) / n
        if not t.min_mean_word_length <= mean_length <= t.max_mean_word_length:
            return f"{self.name}:mean_word_length"
        symbols = text.count("#") + sum(text.count(e) for e in ELLIPSES)
        if symbols / n > t.max_symbol_word_ratio:
            return f"{self.name}:symbol_word_ratio"
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines and sum(line.startswith(BULLETS) for line in lines) / len(lines) > t.max_bullet_lines_ratio:
            return f"{self.name}:bullet_lines"
        if lines and sum(line.endswith(ELLIPSES) for line in lines) / len(lines) > t.max_ellipsis_lines_ratio:
            return f"{self.name}:ellipsis_lines"
        if sum(bool(_ALPHA.search(w)) for w in words) / max(len(words), 1) < t.min_alpha_words_ratio:
            return f"{self.name}:alpha_words"
        if sum(w.lower().strip(".,;:!?\"'()") in STOP_WORDS for w in words) < t.min_stop_words:
            return f"{self.name}:stop_words"
        return None


class GopherRepetition:
    """Repeated lines, paragraphs and word n-grams, by count and by share of characters."""

    name = "gopher_repetition"

    def __init__(self, t: HeuristicThresholds):
        self.t = t

    def __call__(self, text: str) -> str | None:
        t = self.t
        text = text.strip()
        if not text:
            return f"{self.name}:empty"
        paragraphs = _PARAGRAPH_BREAK.split(text)
        count, chars = _duplicates(paragraphs)
        if count / len(paragraphs) > t.max_dup_paragraph_ratio:
            return f"{self.name}:dup_paragraph_ratio"
        if chars / len(text) > t.max_dup_paragraph_char_ratio:
            return f"{self.name}:dup_paragraph_char_ratio"
        lines = _LINE_BREAK.split(text)
        count, chars = _duplicates(lines)
        if count / len(lines) > t.max_dup_line_ratio:
            return f"{self.name}:dup_line_ratio"
        if chars / len(text) > t.max_dup_line_char_ratio:
            return f"{self.name}:dup_line_char_ratio"
        words = _words(text)
        word_chars = sum(len(w) for w in words) or 1
        for n, limit in t.max_top_ngram_char_ratio:
            if len(words) < n:
                continue
            ngrams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
            top, top_count = ngrams.most_common(1)[0]
            if top_count > 1 and sum(len(w) for w in top) * top_count / word_chars > limit:
                return f"{self.name}:top_{n}gram_char_ratio"
        for n, limit in t.max_dup_ngram_char_ratio:
            if self._duplicated_ngram_chars(words, n) / word_chars > limit:
                return f"{self.name}:dup_{n}gram_char_ratio"
        return None

    @staticmethod
    def _duplicated_ngram_chars(words: list[str], n: int) -> int:
        """Characters of words covered by n-grams seen earlier (each word counted once)."""
        seen: set[tuple[str, ...]] = set()
        covered = np.zeros(len(words), dtype=bool)
        for i in range(len(words) - n + 1):
            gram = tuple(words[i:i + n])
            if gram in seen:
                covered[i:i + n] = True
            else:
                seen.add(gram)
        if not covered.any():
            return 0
        return sum(len(w) for w, c in zip(words, covered, strict=True) if c)


class C4Rules:
    """C4's clean-up: drops javascript, policy, short and unterminated lines; drops the document for
    lorem ipsum, curly brackets, or too few sentences left. Returns `(reason, cleaned_text)`."""

    name = "c4"

    def __init__(self, t: HeuristicThresholds):
        self.t = t

    def clean(self, text: str) -> tuple[str | None, str]:
        t = self.t
        lowered = text.lower()
        if "lorem ipsum" in lowered:
            return f"{self.name}:lorem_ipsum", text
        if "{" in text:
            return f"{self.name}:curly_bracket", text
        kept = []
        for line in text.splitlines():
            line = line.strip()
            if not line:
                continue
            lower_line = line.lower()
            words = line.split()
            if "javascript" in lower_line or any(p in lower_line for p in POLICY_PHRASES):
                continue
            if t.c4_drop_lines_without_terminal_punct and not line.endswith(C4_TERMINAL):
                continue
            if len(words) < t.c4_min_words_per_line:
                continue
            if max(len(w) for w in words) > t.c4_max_word_length:
                continue
            kept.append(line)
        cleaned = "\n".join(kept)
        if not kept:
            return f"{self.name}:no_lines_left", cleaned
        if len(_SENTENCE_END.findall(cleaned)) < t.c4_min_sentences:
            return f"{self.name}:too_few_sentences", cleaned
        return None, cleaned

    def __call__(self, text: str) -> str | None:
        return self.clean(text)[0]


class FineWebRules:
    """FineWeb's additions: share of lines with terminal punctuation, short lines, duplicated-line
    characters, and newlines per word (lists)."""

    name = "fineweb"

    def __init__(self, t: HeuristicThresholds):
        self.t = t

    def __call__(self, text: str) -> str | None:
        t = self.t
        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            return f"{self.name}:empty"
        if sum(line.endswith(LINE_TERMINAL) for line in lines) / len(lines) < t.min_line_punct_ratio:
            return f"{self.name}:line_punct_ratio"
        if sum(len(line) <= t.short_line_length for line in lines) / len(lines) > t.max_short_line_ratio:
            return f"{self.name}:short_line_ratio"
        if _duplicates(lines)[1] / max(len(text.replace("\n", "")), 1) > t.max_dup_line_char_share:
            return f"{self.name}:char_dup_ratio"
        if text.count("\n") / max(len(_words(text)), 1) > t.max_newline_word_ratio:
            return f"{self.name}:list_ratio"
        return None


def apply_heuristics(texts: list[str], t: HeuristicThresholds) -> tuple[list[str | None], list[str]]:
    """Reason (or None) and C4-cleaned text per document; families run in Gopher, C4, FineWeb order
    and the first reason wins. The Gopher and FineWeb rules see the text before C4's line clean-up."""
    gopher_quality, gopher_repetition = GopherQuality(t), GopherRepetition(t)
    c4, fineweb = C4Rules(t), FineWebRules(t)
    reasons: list[str | None] = []
    cleaned: list[str] = []
    for i, text in enumerate(texts):
        reason = gopher_quality(text) or gopher_repetition(text)
        c4_reason, c4_text = c4.clean(text) if reason is None else (None, text)
        reason = reason or c4_reason or fineweb(text)
        reasons.append(reason)
        cleaned.append(c4_text)
        if (i + 1) % 20_000 == 0:
            log.info("quality heuristics: %d / %d documents", i + 1, len(texts))
    return reasons, cleaned


# ----------------------------------------------------------------------------- classifier

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


class QualityModelSkipped(ValueError):
    """The quality model cannot be trained on this crawl (no reference text, or too few documents)."""


REFERENCE_SUFFIXES = (".parquet", ".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".txt", ".txt.gz")


def _reference_file_texts(path: Path) -> list[str]:
    name = path.name.lower()
    if name.endswith(".parquet"):
        try:
            return pl.read_parquet(path, columns=["text"])["text"].drop_nulls().cast(pl.Utf8).to_list()
        except pl.exceptions.ColumnNotFoundError:
            raise ValueError(f"reference file {path}: Parquet without a `text` column") from None
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        if name.endswith((".txt", ".txt.gz")):
            return _PARAGRAPH_BREAK.split(handle.read())
        texts = []
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"reference file {path}:{number}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise ValueError(f"reference file {path}:{number}: expected an object with a string `text` field")
            texts.append(row["text"])
        return texts


def read_reference_texts(paths: list[str | Path] | tuple) -> pl.DataFrame:
    """`reference_id, text` of every non-empty reference document in `paths` (files, or folders of them).

    Parquet: the `text` column; JSONL (`.jsonl`, `.ndjson`, gzipped too): the `text` field of each line;
    plain text (`.txt`, gzipped too): one document per block of lines between blank lines.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            found = sorted(f for f in path.iterdir() if f.is_file() and f.name.lower().endswith(REFERENCE_SUFFIXES))
            if not found:
                raise ValueError(f"reference folder {path} holds no {', '.join(REFERENCE_SUFFIXES)} files")
            files.extend(found)
        elif not path.is_file():
            raise FileNotFoundError(f"reference file {path} does not exist (CurationConfig.reference_files)")
        elif not path.name.lower().endswith(REFERENCE_SUFFIXES):
            raise ValueError(f"reference file {path}: unknown type; use {', '.join(REFERENCE_SUFFIXES)}")
        else:
            files.append(path)
    ids, texts = [], []
    for index, path in enumerate(files):
        for number, text in enumerate(_reference_file_texts(path)):
            text = text.strip()
            if text:
                ids.append(f"reference:{index}:{path.name}:{number}")
                texts.append(text)
    return pl.DataFrame({"reference_id": ids, "text": texts}, schema={"reference_id": pl.Utf8, "text": pl.Utf8})


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
    meta = (docs.select("warc_record_id", "host").collect() if schema
            else pl.DataFrame(schema={"warc_record_id": pl.Utf8, "host": pl.Utf8}))
    is_reference = meta["host"].is_in(hosts)
    from_hosts, others = meta.filter(is_reference), meta.filter(~is_reference)
    positives = pl.concat([from_hosts.select("warc_record_id"),
                           reference.select(pl.col("reference_id").alias("warc_record_id"))])
    minimum = max(2, int(getattr(cfg, "quality_min_train_docs", 2)))
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


def _skip(out: Path, reason: str, cfg: CurationConfig) -> dict:
    """Record that the model was skipped: metrics.json says why, and no (stale) model file is left."""
    (out / MODEL_FILE).unlink(missing_ok=True)
    metrics = {"skipped": True, "skip_reason": reason, "model_path": None,
               "reference_hosts": list(cfg.reference_hosts), "reference_files": list(cfg.reference_files)}
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    log.warning("quality classifier skipped: %s; the quality stage keeps what the heuristics pass", reason)
    return metrics


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


def effective_threshold(scores: np.ndarray, cfg: CurationConfig) -> float:
    """`cfg.quality_threshold`, lowered so that at most `cfg.quality_max_drop_share` of `scores` fall
    under it (a model that is sure of itself would otherwise drop every non-reference page)."""
    threshold = float(cfg.quality_threshold)
    share = float(getattr(cfg, "quality_max_drop_share", 1.0))
    if len(scores) and share < 1.0:
        threshold = min(threshold, float(np.quantile(scores, max(share, 0.0), method="lower")))
    return threshold


def score_quality(docs: pl.DataFrame, model_path: str | Path | None, cfg: CurationConfig
                  ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`(passing, heuristic_removed)`: documents past the heuristic families, with `text` after C4's line
    clean-up and the model's `quality_score` (null when `model_path` is None: the model was skipped); and
    the removed rows of those the heuristics dropped."""
    thresholds = HeuristicThresholds.from_config(cfg)
    reasons, cleaned = apply_heuristics(docs["text"].fill_null("").to_list(), thresholds)
    docs = docs.with_columns(pl.Series("_reason", reasons, dtype=pl.Utf8),
                             pl.Series("_cleaned", cleaned, dtype=pl.Utf8))
    heuristic_drops = docs.filter(pl.col("_reason").is_not_null())
    passing = docs.filter(pl.col("_reason").is_null()).with_columns(pl.col("_cleaned").alias("text"))
    scores = quality_scores(passing["text"].to_list(), model_path) if model_path is not None else None
    passing = passing.drop("_reason", "_cleaned").with_columns(pl.Series("quality_score", scores, dtype=pl.Float64)
                                                               if scores is not None
                                                               else pl.lit(None, pl.Float64).alias("quality_score"))
    return passing, removed_frame(heuristic_drops, STAGE, pl.col("_reason"))


def split_by_score(passing: pl.DataFrame, heuristic_removed: pl.DataFrame, threshold: float | None
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`(kept, removed)`: scored documents at or over `threshold` kept; the rest join the heuristic drops.
    With no threshold (the model was skipped) every scored document is kept."""
    if threshold is None:
        return passing, heuristic_removed
    model_drops = passing.filter(pl.col("quality_score") < threshold)
    removed = pl.concat([heuristic_removed, removed_frame(model_drops, STAGE, "quality_model").with_columns(
        model_drops["quality_score"])], how="diagonal_relaxed")
    return passing.filter(pl.col("quality_score") >= threshold), removed


def filter_quality(docs: pl.DataFrame, model_path: str | Path | None, cfg: CurationConfig
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Heuristic families first, then the model's `quality_score` against `effective_threshold`.

    Kept rows: the input columns with `text` after C4's line clean-up, plus `quality_score` (null when
    `model_path` is None: the model was skipped and only the heuristics remove documents).
    Removed rows: `warc_record_id, url, stage, reason, sample` (+ `quality_score` for model drops).
    """
    passing, heuristic_removed = score_quality(docs, model_path, cfg)
    threshold = (effective_threshold(passing["quality_score"].to_numpy(), cfg) if model_path is not None
                 else None)
    kept, removed = split_by_score(passing, heuristic_removed, threshold)
    log.info("quality: kept %d, removed %d by heuristics and %d by the model (score < %s)", kept.height,
             heuristic_removed.height, removed.height - heuristic_removed.height,
             "no model" if threshold is None else f"{threshold:.4f}")
    return kept, removed


def filter_quality_parts(parts: list[str], load: PartLoader, write: PartWriter, model_path: str | Path | None,
                         cfg: CurationConfig, scratch: str | Path) -> float | None:
    """`filter_quality` over documents spread over `parts`, one part's text in memory at a time.

    `load(part)` returns a part's documents and `write(part, kept, removed)` takes its results. The model
    threshold depends on every score, so scored parts wait in `scratch` (a folder this function may fill
    and empty) until all are scored. Returns the threshold used (None when `model_path` is None: the model
    was skipped and every document past the heuristics is kept).
    """
    scratch = Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    scores = []
    for number, part in enumerate(parts, 1):
        passing, heuristic_removed = score_quality(load(part), model_path, cfg)
        passing.write_parquet(scratch / f"{number}.passing.parquet")
        heuristic_removed.write_parquet(scratch / f"{number}.removed.parquet")
        scores.append(passing["quality_score"].to_numpy())
        log.info("quality pass 1/2: part %d/%d (%s), %d past the heuristics", number, len(parts), part,
                 passing.height)
    threshold = None
    if model_path is not None:
        threshold = effective_threshold(np.concatenate(scores) if scores else np.zeros(0), cfg)
        log.info("quality: model threshold %.4f", threshold)
    else:
        log.info("quality: no model (skipped); every document past the heuristics is kept")
    for number, part in enumerate(parts, 1):
        passing = pl.read_parquet(scratch / f"{number}.passing.parquet")
        heuristic_removed = pl.read_parquet(scratch / f"{number}.removed.parquet")
        write(part, *split_by_score(passing, heuristic_removed, threshold))
        (scratch / f"{number}.passing.parquet").unlink()
        (scratch / f"{number}.removed.parquet").unlink()
    return threshold
