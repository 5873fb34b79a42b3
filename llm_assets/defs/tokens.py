"""Tokenizer and token shards: BPE trained on the train split, documents encoded into binary shards."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from llm_assets.tokens import checks as token_checks
from llm_assets.tokens.shards import write_shards
from llm_assets.tokens.tokenizer import (
    TOKENIZER_FILE,
    measure_compression,
    mixture_texts,
    split_counts,
    train_tokenizer,
)

from .common import check, global_kept_files, metadata_value, scratch_dir, spec
from .resources import EngineResource, LakeResource

GROUP = "tokens"
OWNERS = ["team:modeling"]


def mixture_files(lake: LakeResource):
    return global_kept_files(lake, "training_mixture")


def tokenizer_path(lake: LakeResource):
    """The trained tokenizer as a local file (fetched from an object-store lake)."""
    return lake.fetch("tokenizer") / TOKENIZER_FILE


@asset(
    deps=["training_mixture"], group_name=GROUP, owners=OWNERS, kinds={"huggingface"},
    code_version="tokenizer-1",
    description="Byte-level BPE (HF tokenizers) trained on the train split, with document-boundary and "
    "chat-turn special tokens; a tokenizer.json that transformers loads unchanged.",
    check_specs=[spec("tokenizer", "round_trip", "decode(encode(text)) == text on validation documents.",
                      blocking=True)],
)
def tokenizer(context: AssetExecutionContext, lake: LakeResource):
    size = lake.profile_def().tokenizer
    files = mixture_files(lake)
    documents = split_counts(files)
    if not documents.get("train"):
        raise ValueError(f"training_mixture has 0 train documents ({documents.get('validation', 0)} validation): "
                         "nothing to train the tokenizer on")
    with lake.working("tokenizer") as folder:
        out = folder / TOKENIZER_FILE
        stats = train_tokenizer(mixture_texts(files, "train", max_characters=size.train_characters),
                                size.vocab_size, out)
    # with no validation documents (a tiny crawl), compression and the round trip are measured on train text
    measured = "validation" if documents.get("validation") else "train"
    sample = list(mixture_texts(files, measured, max_characters=20_000_000))
    compression = measure_compression(out, sample)
    context.log.info("tokenizer: %s; %s %s", {k: stats[k] for k in ("vocab_size", "training_seconds")},
                     measured, compression)
    yield MaterializeResult(metadata={
        "path": MetadataValue.path(f"{lake.url('tokenizer')}/{TOKENIZER_FILE}"),
        **{k: metadata_value(v) for k, v in stats.items()},
        **{f"{measured}/{k}": metadata_value(v) for k, v in compression.items()},
        "measured_on": measured if measured == "validation" else "train (the validation split is empty)",
    })
    passed, details = token_checks.check_round_trip(out, sample)
    yield check("round_trip", passed, split=measured, **details)


@asset(
    deps=["tokenizer", "training_mixture"], group_name=GROUP, owners=OWNERS, kinds={"numpy"},
    code_version="token_shards-1",
    description="Documents encoded in parallel batches, each followed by the end-of-document token, in "
    "fixed-size binary shards (header, document index) per split, with a checksummed manifest.",
    check_specs=[
        spec("token_shards", "integrity", "Headers and checksums are valid.", blocking=True),
        spec("token_shards", "token_range", "No token id is >= the vocabulary size.", blocking=True),
        spec("token_shards", "splits_nonempty", "Blocks when train has no tokens; warns when validation has none "
             "(held-out loss and perplexity go unmeasured).", blocking=True),
        spec("token_shards", "no_validation_leak", "No validation document is in train.", blocking=True),
    ],
)
def token_shards(lake: LakeResource, engine: EngineResource):
    size = lake.profile_def().tokenizer
    with lake.working("token_shards") as out, engine.open() as running, \
            scratch_dir(lake, "token_shards", running) as scratch:
        manifest = write_shards(mixture_files(lake), tokenizer_path(lake), out, size.shard_tokens,
                                size.batch_documents, running, scratch)
    totals = {split: sum(s["tokens"] for s in shards) for split, shards in manifest["splits"].items()}
    yield MaterializeResult(metadata={
        "path": MetadataValue.path(lake.url("token_shards")),
        "dagster/row_count": sum(totals.values()),
        **{f"tokens/{split}": n for split, n in totals.items()},
        "shards": sum(len(s) for s in manifest["splits"].values()),
        "dtype": manifest["dtype"],
        "vocab_size": manifest["vocab_size"],
    })
    for name, fn in (("integrity", lambda: token_checks.check_shard_integrity(out, tokenizer_path(lake))),
                     ("token_range", lambda: token_checks.check_token_range(out)),
                     ("splits_nonempty", lambda: token_checks.check_splits_nonempty(out)),
                     ("no_validation_leak", lambda: token_checks.check_no_validation_leak(out))):
        passed, details = fn()
        if name == "splits_nonempty" and not passed and details["tokens"]["train"] > 0:
            # training runs without a validation split; only held-out loss and perplexity go unmeasured
            yield check(name, False, blocking_severity=False, **details,
                        detail="the validation split is empty: held-out loss and perplexity are not measured")
            continue
        yield check(name, passed, **details)
