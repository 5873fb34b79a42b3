"""Perplexity and bits per byte on held-out text, in fixed non-overlapping windows.

Documents are laid end to end, each preceded by the end-of-text token (the token shards' layout), cut
into windows of `window` inputs; every window starts with a fresh context. Only document tokens are
scored (predicting EOT has no bytes), so bits per byte = total NLL in nats / (ln 2 * total UTF-8 bytes)
compares models with different tokenizers.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from llm_assets.evaluation.adapter import ScoringModel

log = logging.getLogger(__name__)


@dataclass
class PerplexityResult:
    nll_nats: float  # summed over scored tokens
    tokens: int  # scored tokens
    bytes: int  # UTF-8 bytes of the scored documents
    documents: int
    windows: int

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll_nats / self.tokens) if self.tokens else float("nan")

    @property
    def bits_per_byte(self) -> float:
        return self.nll_nats / (math.log(2) * self.bytes) if self.bytes else float("nan")

    def as_dict(self) -> dict:
        return {**asdict(self), "perplexity": self.perplexity, "bits_per_byte": self.bits_per_byte}


def stream_nll(model: ScoringModel, tokens: np.ndarray, window: int | None = None, batch_size: int = 8
               ) -> tuple[float, int, int]:
    """Summed NLL (nats) of every non-EOT token of `tokens` after the first, scored in fixed windows.

    Returns `(nll, scored_tokens, windows)`.
    """
    window = min(window or model.max_length, model.max_length)
    tokens = torch.as_tensor(np.asarray(tokens, dtype=np.int64))
    starts = list(range(0, max(len(tokens) - 1, 0), window))
    nll, scored = 0.0, 0
    started = time.monotonic()
    for batch_no, first in enumerate(range(0, len(starts), batch_size)):
        batch_starts = starts[first:first + batch_size]
        idx = torch.full((len(batch_starts), window), model.pad_token_id, dtype=torch.long)
        rows, positions, targets = [], [], []
        for row, start in enumerate(batch_starts):
            inputs = tokens[start:start + window]
            following = tokens[start + 1:start + window + 1]
            idx[row, :len(inputs)] = inputs
            keep = torch.nonzero(following != model.eot_token_id).squeeze(1)
            rows.append(torch.full((len(keep),), row, dtype=torch.long))
            positions.append(keep)
            targets.append(following[keep])
        if sum(len(p) for p in positions) == 0:
            continue
        logprob, _ = model.token_logprobs(idx, torch.cat(rows), torch.cat(positions), torch.cat(targets))
        nll -= float(logprob.double().sum())
        scored += len(logprob)
        if batch_no % 20 == 19:
            log.info("perplexity: %d/%d windows (%.1fs)", first + len(batch_starts), len(starts),
                     time.monotonic() - started)
    return nll, scored, len(starts)


def perplexity_from_texts(model: ScoringModel, texts: Sequence[str], window: int | None = None,
                          batch_size: int = 8) -> PerplexityResult:
    """Perplexity and bits per byte of `texts` (empty texts are skipped)."""
    texts = [text for text in texts if text]
    pieces = []
    for text in texts:
        pieces.append([model.eot_token_id])
        pieces.append(model.encode(text, add_special_tokens=False))
    tokens = np.fromiter((t for piece in pieces for t in piece), dtype=np.int64)
    nll, scored, windows = stream_nll(model, tokens, window, batch_size)
    n_bytes = sum(len(text.encode("utf-8")) for text in texts)
    return PerplexityResult(nll, scored, n_bytes, len(texts), windows)


def _document_bytes(model: ScoringModel, tokens: np.ndarray) -> tuple[int, int]:
    """UTF-8 bytes and count of the documents in an EOT-separated token stream (decoded whole)."""
    ends = np.flatnonzero(tokens == model.eot_token_id)
    bounds = np.concatenate([[-1], ends, [len(tokens)]])
    n_bytes, documents = 0, 0
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if hi - lo > 1:
            n_bytes += len(model.decode(tokens[lo + 1:hi].tolist()).encode("utf-8"))
            documents += 1
    return n_bytes, documents


def perplexity_from_shards(model: ScoringModel, shard_dir: str | Path, split: str = "validation",
                           window: int | None = None, batch_size: int = 8,
                           max_tokens: int | None = None) -> PerplexityResult:
    """Perplexity and bits per byte of a token-shard split (the `token_shards` asset's `manifest.json`)."""
    from llm_assets.tokens.shards import load_manifest, read_tokens

    shard_dir = Path(shard_dir)
    manifest = load_manifest(shard_dir)
    entries = manifest["splits"].get(split)
    if not entries:
        raise ValueError(f"{shard_dir}/manifest.json: split {split!r} has no shards "
                         f"(splits: {', '.join(manifest['splits'])})")
    if manifest.get("eot_id") is not None and manifest["eot_id"] != model.eot_token_id:
        raise ValueError(f"{shard_dir}: shards use EOT id {manifest['eot_id']} but the model's tokenizer uses "
                         f"{model.eot_token_id}; score shards with the tokenizer that wrote them")
    parts = [np.asarray(read_tokens(shard_dir / entry["file"])) for entry in entries]
    # shards end each document with EOT; a leading EOT makes the first document's first token scored
    tokens = np.concatenate([[model.eot_token_id], *parts]).astype(np.int64)
    if max_tokens is not None and len(tokens) > max_tokens:
        last_eot = np.flatnonzero(tokens[:max_tokens] == model.eot_token_id)
        tokens = tokens[:last_eot[-1] + 1] if len(last_eot) > 1 else tokens[:max_tokens]
    nll, scored, windows = stream_nll(model, tokens, window, batch_size)
    n_bytes, documents = _document_bytes(model, tokens)
    log.info("%s perplexity over %d tokens of %d documents", split, scored, documents)
    return PerplexityResult(nll, scored, n_bytes, documents, windows)
