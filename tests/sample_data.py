"""A small generated corpus, tokenizer and token shards, for tests and benchmarks that need training data.

The text follows a tiny grammar (subject, verb, object, place), so a model can learn it in a few steps and a
falling loss is evidence of learning rather than noise.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl

from llm_assets.lake import write_parquet
from llm_assets.tokens.shards import write_shards
from llm_assets.tokens.tokenizer import train_tokenizer

SUBJECTS = ["the cat", "a dog", "my neighbour", "the old farmer", "a young student", "the river", "our teacher"]
VERBS = ["sees", "likes", "builds", "paints", "follows", "carries", "finds"]
OBJECTS = ["a red boat", "the green house", "an apple", "seven stones", "the blue door", "a long letter"]
PLACES = ["in the village", "near the sea", "under the bridge", "at the market", "in Springfield"]


def sample_texts(documents: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(documents):
        sentences = []
        for _ in range(int(rng.integers(3, 9))):
            words = [SUBJECTS[rng.integers(len(SUBJECTS))], VERBS[rng.integers(len(VERBS))],
                     OBJECTS[rng.integers(len(OBJECTS))], PLACES[rng.integers(len(PLACES))]]
            sentences.append(" ".join(words).capitalize() + ".")
        texts.append(" ".join(sentences))
    return texts


def write_sample_corpus(out_dir: str | os.PathLike, documents: int = 300, vocab_size: int = 320,
                        validation_fraction: float = 0.1, shard_tokens: int = 4096, seed: int = 0) -> dict:
    """Write `tokenizer.json`, `mixture.parquet` and `shards/` under `out_dir`; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = sample_texts(documents, seed)
    n_validation = max(1, int(documents * validation_fraction))
    mixture = pl.DataFrame({
        "warc_record_id": [f"<urn:uuid:sample-{i:06d}>" for i in range(documents)],
        "text": texts,
        "split": ["validation"] * n_validation + ["train"] * (documents - n_validation),
    })
    mixture_path = write_parquet(mixture, out / "mixture.parquet")
    tokenizer_path = out / "tokenizer.json"
    train_tokenizer(texts, vocab_size, tokenizer_path)
    shards = out / "shards"
    write_shards([mixture_path], tokenizer_path, shards, shard_tokens=shard_tokens, batch_documents=64)
    return {"tokenizer": tokenizer_path, "shards": shards, "mixture": mixture_path}
