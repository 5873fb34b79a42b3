"""Tokenizer and token shards: BPE trained on the train split, documents encoded into binary shards."""

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from llm_assets.tokens import checks as token_checks
from llm_assets.tokens.shards import write_shards
from llm_assets.tokens.tokenizer import measure_compression, mixture_texts, train_tokenizer

from .curation import check, kept_files, metadata_value, spec, stage_parts
from .resources import LakeResource

GROUP = "tokens"
OWNERS = ["team:modeling"]


def mixture_files(lake: LakeResource):
    return kept_files(lake, "training_mixture", stage_parts(lake, "training_mixture"))


def tokenizer_path(lake: LakeResource):
    return lake.asset_dir("tokenizer") / "tokenizer.json"


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
    out = tokenizer_path(lake)
    stats = train_tokenizer(mixture_texts(mixture_files(lake), "train"), size.vocab_size, out)
    validation = list(mixture_texts(mixture_files(lake), "validation"))
    compression = measure_compression(out, validation)
    context.log.info("tokenizer: %s; validation %s", {k: stats[k] for k in ("vocab_size",
                     "training_seconds")}, compression)
    yield MaterializeResult(metadata={
        "path": MetadataValue.path(str(out)),
        **{k: metadata_value(v) for k, v in stats.items()},
        **{f"validation/{k}": metadata_value(v) for k, v in compression.items()},
    })
    passed, details = token_checks.check_round_trip(out, validation)
    yield check("round_trip", passed, **details)


@asset(
    deps=["tokenizer", "training_mixture"], group_name=GROUP, owners=OWNERS, kinds={"numpy"},
    code_version="token_shards-1",
    description="Documents encoded in parallel batches, each followed by the end-of-document token, in "
    "fixed-size binary shards (header, document index) per split, with a checksummed manifest.",
    check_specs=[
        spec("token_shards", "integrity", "Headers and checksums are valid.", blocking=True),
        spec("token_shards", "token_range", "No token id is >= the vocabulary size.", blocking=True),
        spec("token_shards", "splits_nonempty", "Train and validation have tokens.", blocking=True),
        spec("token_shards", "no_validation_leak", "No validation document is in train.", blocking=True),
    ],
)
def token_shards(lake: LakeResource):
    size = lake.profile_def().tokenizer
    out = lake.asset_dir("token_shards")
    manifest = write_shards(mixture_files(lake), tokenizer_path(lake), out, size.shard_tokens,
                            size.batch_documents)
    totals = {split: sum(s["tokens"] for s in shards) for split, shards in manifest["splits"].items()}
    yield MaterializeResult(metadata={
        "path": MetadataValue.path(str(out)),
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
        yield check(name, passed, **details)
