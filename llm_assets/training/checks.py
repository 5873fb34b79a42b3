"""Sanity checks for training: the unigram entropy of the training tokens (a loss to beat) and finiteness."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from llm_assets.tokens.shards import load_manifest, read_tokens


def unigram_entropy(shards_dir: str | os.PathLike, split: str = "train", max_tokens: int | None = None) -> float:
    """Entropy in nats/token of the token frequencies of `split`: what a model that ignores context scores.

    A trained model's loss should be well below it; a loss near it means the model learned only frequencies.
    """
    manifest = load_manifest(shards_dir)
    counts = np.zeros(int(manifest["vocab_size"]), dtype=np.int64)
    seen = 0
    for entry in manifest["splits"].get(split, []):
        tokens = read_tokens(Path(shards_dir) / entry["file"])
        if max_tokens is not None:
            tokens = tokens[: max(0, max_tokens - seen)]
        counts += np.bincount(tokens, minlength=len(counts))[: len(counts)]
        seen += len(tokens)
        if max_tokens is not None and seen >= max_tokens:
            break
    if seen == 0:
        raise ValueError(f"{shards_dir}: split {split!r} has no tokens")
    probs = counts[counts > 0] / seen
    return float(-(probs * np.log(probs)).sum())


def loss_is_finite(*losses: float | None) -> tuple[bool, str]:
    """(ok, message): every given loss is a finite number."""
    bad = [loss for loss in losses if loss is None or not math.isfinite(loss)]
    if bad:
        return False, f"non-finite loss values {bad}: training diverged (lower lr, check data)"
    return True, "all losses finite"
