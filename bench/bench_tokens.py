"""Tokenizer and shard-writer throughput, side by side over the same texts.

    python bench/bench_tokens.py [--mixture 'data/training_mixture/kept/*.parquet']
                                 [--source synthetic|prose] [--megabytes 8] [--profile default]

Rows: BPE training time (vocab from the profile), `Tokenizer.encode_batch` alone (the ceiling),
`write_shards` end to end (Parquet in, shards + manifest out; goal >= 0.85 of the ceiling), and
tiktoken running OUR merges (an `Encoding` built from tokenizer.json's ranks, since tiktoken's own
`gpt2` files would have to be downloaded). Without `--mixture` the texts are the profile's synthetic
crawl (resiliparse plain text of its HTML pages) or, with `--source prose`, generated prose.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl

from llm_assets.profiles import get_profile
from llm_assets.tokens import shards
from llm_assets.tokens.special import SPECIAL_TOKENS
from llm_assets.tokens.tokenizer import (
    byte_level_symbols,
    load_tokenizer,
    measure_compression,
    train_tokenizer,
)

GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def generated_prose(megabytes: float, seed: int = 0) -> list[str]:
    """Documents of Zipf-distributed made-up words, digits and punctuation: enough variety to fill a vocab."""
    rng = random.Random(seed)
    syllables = [a + b for a in "bdfgklmnprstvz" for b in ("a", "e", "i", "o", "u", "ai", "ou", "ie")]
    lexicon = ["".join(rng.choice(syllables) for _ in range(rng.choice((1, 1, 2, 2, 3, 4))))
               for _ in range(20000)]
    weights = [1.0 / (rank + 1) for rank in range(len(lexicon))]
    docs, size = [], 0
    while size < megabytes * 1e6:
        words = rng.choices(lexicon, weights, k=rng.randint(30, 600))
        sentences, i = [], 0
        while i < len(words):
            n = rng.randint(5, 20)
            sentence = " ".join(words[i:i + n]).capitalize()
            if rng.random() < 0.2:
                sentence += f" in {rng.randint(1700, 2024)}"
            sentences.append(sentence + rng.choice((".", ".", ".", "?", "!", ";")))
            i += n
        doc = " ".join(sentences) + ("\n\n" if rng.random() < 0.3 else "")
        docs.append(doc)
        size += len(doc)
    return docs


def synthetic_crawl_texts(profile_name: str | None, work: Path) -> list[str]:
    """Plain text of the synthetic crawl's HTML pages (the profile's size), extracted with resiliparse."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str

    from llm_assets.crawl import read_warc
    from llm_assets.synthetic import generate_crawl

    profile = get_profile(profile_name)
    generate_crawl(work / "crawl", seed=0, size=profile.synthetic, profile_name=profile.name)
    texts = []
    for path in sorted((work / "crawl").glob("crawl-*.warc.gz")):
        records = read_warc(str(path)).records.filter(pl.col("content_type") == "text/html")
        for body, charset in zip(records["body"].to_list(), records["charset"].to_list(), strict=True):
            text = extract_plain_text(bytes_to_str(body, charset or "utf-8"), main_content=True)
            if text.strip():
                texts.append(text)
    return texts


def tiktoken_from_ours(tokenizer_path: Path):
    """A tiktoken Encoding with our vocabulary: rank = our id (merge order), bytes via the byte-level map."""
    import json

    import tiktoken

    model = json.loads(tokenizer_path.read_text())["model"]
    to_byte = {ch: b for b, ch in enumerate(byte_level_symbols())}
    ranks = {bytes(to_byte[c] for c in token): i for token, i in model["vocab"].items()
             if token not in SPECIAL_TOKENS}
    specials = {t: model["vocab"][t] for t in SPECIAL_TOKENS}
    return tiktoken.Encoding(name="llm_assets_bpe", pat_str=GPT2_SPLIT, mergeable_ranks=ranks,
                             special_tokens=specials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixture", help="glob of training_mixture Parquet files (default: generated prose)")
    parser.add_argument("--source", choices=("synthetic", "prose"), default="synthetic",
                        help="without --mixture: text of the profile's synthetic crawl, or generated prose")
    parser.add_argument("--megabytes", type=float, default=8.0, help="generated prose size")
    parser.add_argument("--profile", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    size = get_profile(args.profile).tokenizer

    work = Path(tempfile.mkdtemp(prefix="bench_tokens_"))
    try:
        run(args, size, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, size, work: Path) -> None:
    if args.mixture:
        files = sorted(Path(p) for p in glob.glob(args.mixture))
        frame = pl.read_parquet(files, columns=["text", "split"])
        source = f"mixture {args.mixture} ({len(files)} files)"
    else:
        if args.source == "synthetic":
            texts = synthetic_crawl_texts(args.profile, work)
            source = f"synthetic crawl of profile {get_profile(args.profile).name}, resiliparse text"
        else:
            texts = generated_prose(args.megabytes)
            source = f"generated prose ({args.megabytes} MB)"
        frame = pl.DataFrame({"text": texts, "split": ["validation" if i % 20 == 0 else "train"
                                                       for i in range(len(texts))]})
    frame = frame.with_columns(pl.format("<urn:uuid:{}>", pl.int_range(pl.len())).alias("warc_record_id"))
    mixture = work / "mixture.parquet"
    frame.write_parquet(mixture)
    texts = frame["text"].drop_nulls().to_list()
    texts = [t for t in texts if t]
    chars = sum(map(len, texts))
    print(f"texts: {source}: {len(texts)} documents, {chars / 1e6:.1f} M characters; "
          f"cores: {os.cpu_count()}; vocab {size.vocab_size}, batch_documents {size.batch_documents}, "
          f"shard_tokens {size.shard_tokens}")

    tokenizer_path = work / "tokenizer.json"
    train_texts = frame.filter(pl.col("split") == "train")["text"].drop_nulls().to_list()
    train_seconds = time.perf_counter()
    stats = train_tokenizer(train_texts, size.vocab_size, tokenizer_path)
    train_seconds = time.perf_counter() - train_seconds
    compression = measure_compression(tokenizer_path, texts[:2000])

    tokenizer = load_tokenizer(tokenizer_path)
    batch = size.batch_documents
    batches = [texts[i:i + batch] for i in range(0, len(texts), batch)]

    def encode_all(fn):
        return sum(len(e.ids) for b in batches for e in fn(b, add_special_tokens=False))

    def run_writer():
        return shards.write_shards([mixture], tokenizer_path, work / "shards", size.shard_tokens, batch)

    contenders = {
        "encode_batch alone (ceiling)": lambda: encode_all(tokenizer.encode_batch),
        "encode_batch_fast alone": lambda: encode_all(tokenizer.encode_batch_fast),
        "write_shards (parquet -> shards)": run_writer,
    }
    tiktoken_note = ""
    try:
        encoding = tiktoken_from_ours(tokenizer_path)
        threads = os.cpu_count() or 1
        tiktoken_name = f"tiktoken, our ranks ({threads} threads)"
        contenders[tiktoken_name] = lambda: encoding.encode_ordinary_batch(texts, num_threads=threads)
    except Exception as err:  # an offline machine or an older tiktoken: report, do not fail the bench
        tiktoken_note = f"tiktoken not measurable offline here: {err}"

    # interleaved repeats, so load from other processes on shared cores hits every contender alike
    times: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    results: dict[str, object] = {}
    for _ in range(args.repeats):
        for name, fn in contenders.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            results[name] = fn()
            times[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)  # all threads: robust to others' load

    manifest = results["write_shards (parquet -> shards)"]
    counts = {name: results[name] for name in contenders if name.startswith("encode")}
    counts["write_shards (parquet -> shards)"] = (sum(manifest["tokens"].values())
                                                  - sum(manifest["documents"].values()))  # minus EOTs
    if not tiktoken_note:
        tk_ids = results[tiktoken_name]
        counts[tiktoken_name] = sum(map(len, tk_ids))
        ours = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
        same = sum(a == b for a, b in zip(ours, tk_ids, strict=True))
        tiktoken_note = f"tiktoken ids identical to ours on {same}/{len(texts)} documents"
    rate = {name: counts[name] / min(times[name]) for name in contenders}
    ceiling = rate["encode_batch alone (ceiling)"]
    writer_rate = rate["write_shards (parquet -> shards)"]
    fast_ceiling = rate["encode_batch_fast alone"]
    rows = [(name, counts[name], min(times[name]), statistics.median(times[name]), min(cpu[name]))
            for name in contenders]
    cpu_rate = {name: counts[name] / min(cpu[name]) for name in contenders}

    print(f"\n{'what':<38}{'tokens':>11}{'best s':>8}{'median s':>10}{'tokens/s':>11}{'vs ceiling':>11}"
          f"{'CPU s':>8}{'tok/CPU s':>11}")
    for name, n, best, median, cpu_best in rows:
        print(f"{name:<38}{n:>11,}{best:>8.3f}{median:>10.3f}{n / best:>11,.0f}{n / best / ceiling:>11.2f}"
              f"{cpu_best:>8.2f}{n / cpu_best:>11,.0f}")
    print(f"\nwrite_shards / encode_batch      = {writer_rate / ceiling:.2f} wall, "
          f"{cpu_rate['write_shards (parquet -> shards)'] / cpu_rate['encode_batch alone (ceiling)']:.2f} CPU"
          f"  (goal >= 0.85)")
    print(f"write_shards / encode_batch_fast = {writer_rate / fast_ceiling:.2f} wall, "
          f"{cpu_rate['write_shards (parquet -> shards)'] / cpu_rate['encode_batch_fast alone']:.2f} CPU")
    print(tiktoken_note)
    print(f"BPE training: vocab {stats['vocab_size']} on {stats['documents']} train documents "
          f"({stats['characters'] / 1e6:.1f} M chars): {stats['training_seconds']:.2f} s "
          f"(with saving {train_seconds:.2f} s)")
    print(f"compression: {compression['chars_per_token']:.2f} chars/token, "
          f"{compression['bytes_per_token']:.2f} bytes/token")
    print(f"shards: {manifest['tokens']} tokens in "
          f"{ {s: len(v) for s, v in manifest['splits'].items()} } files")


if __name__ == "__main__":
    main()
