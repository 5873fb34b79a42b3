"""`python -m llm_assets.training pretrain|sft --config FILE [--ray]`: train alone or under Dagster Pipes.

Under Pipes (launched by the Dagster asset) progress lines go to `pipes.log.info` and the final metrics
to `pipes.report_asset_materialization`; otherwise lines go to stdout and metrics to `metrics.json`.
A failure prints one line on stderr (LLM_ASSETS_DEBUG=1: the traceback), naming a full disk and its folder,
writes it next to the config file as `<config>.error` (into blocks reserved at start, so a full disk still
takes it) for the launching asset to report, and exits with status 1.

`--ray` runs the same training as a Ray Train job (`ray_train`): `devices` x `num_nodes` workers on the
cluster at `$LLM_ASSETS_RAY_ADDRESS` (unset: a local one), each with one GPU when the accelerator is gpu.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path

from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes

from llm_assets.training import error_path
from llm_assets.training.config import PretrainConfig, SFTConfig, load_config
from llm_assets.training.failure import failure_message, release_error_file, reserve_error_file, write_error
from llm_assets.training.lifeline import die_with_parent
from llm_assets.training.pretrain import run_pretraining
from llm_assets.training.ray_train import train_on_ray
from llm_assets.training.sft import run_sft

logger = logging.getLogger("llm_assets.training")

# metrics reported as asset metadata (the rest stay in metrics.json)
METADATA_KEYS = ("train_loss", "val_loss", "val_perplexity", "tokens_seen", "tokens_per_s", "mfu", "parameters",
                 "steps", "unigram_entropy", "world_size", "precision", "last_ckpt_set_aside")
SFT_METADATA_KEYS = ("train_loss", "assistant_loss_before", "assistant_loss_after", "examples", "steps", "epochs",
                     "tokens_seen", "assistant_tokens_seen", "tokens_per_s", "parameters", "world_size", "precision",
                     "last_ckpt_set_aside")


def is_launching_rank() -> bool:
    """True in the process Dagster (or the user) started; DDP children of Lightning set LOCAL_RANK/NODE_RANK."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def materialization_metadata(metrics: dict, keys: tuple[str, ...] = METADATA_KEYS) -> dict:
    metadata = {k: metrics[k] for k in keys if metrics.get(k) is not None}
    # the asset draws the plot from this file: the message stays short (Pipes' file reader once read a long
    # one, with the image inline, half written and lost the materialization)
    metadata["loss_curve"] = {"raw_value": metrics["loss_curve"], "type": "path"}
    metadata["path"] = {"raw_value": metrics["path"], "type": "path"}
    return metadata


def pretrain_command(config_path: str, ray: bool = False) -> int:
    def train(emit):
        config = load_config(PretrainConfig, config_path)
        return train_on_ray("pretrain", config, emit) if ray else run_pretraining(config, emit=emit)

    return train_command(train, METADATA_KEYS, config_path, "pretrain")


def sft_command(config_path: str, ray: bool = False) -> int:
    def train(emit):
        config = load_config(SFTConfig, config_path)
        return train_on_ray("sft", config, emit) if ray else run_sft(config, emit=emit)

    return train_command(train, SFT_METADATA_KEYS, config_path, "sft")


def written_folders(config_path: str | None) -> list[Path]:
    """Where a run writes: its config's folder and its `out` (read again here: the config may be the error)."""
    if config_path is None:
        return []
    folders = []
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError, KeyError):
        folders.append(Path(json.loads(Path(config_path).read_text())["out"]))
    return [*folders, Path(config_path).resolve().parent]  # out first: named when both are on one full disk


def train_command(train, metadata_keys: tuple[str, ...], config_path: str | None = None,
                  command: str = "train") -> int:
    """Run `train(emit)` with progress going to Pipes (when launched by Dagster) or stdout; 1 on failure."""
    use_pipes = is_launching_rank() and PipesEnvVarParamsLoader().is_dagster_pipes_process()
    debug = os.environ.get("LLM_ASSETS_DEBUG", "").lower() in ("1", "true", "yes", "on")
    reporting = config_path is not None and is_launching_rank()
    if reporting:
        error_path(config_path).unlink(missing_ok=True)
        reserve_error_file(config_path)  # a disk that fills up during training still takes the error line
    with open_dagster_pipes() if use_pipes else contextlib.nullcontext() as pipes:
        emit = pipes.log.info if pipes is not None else (lambda line: print(line, flush=True))
        try:
            metrics = train(emit)
        except Exception as err:
            if debug:
                raise
            message = failure_message(err, written_folders(config_path))
            print(f"llm_assets.training {command}: error: {message}", file=sys.stderr, flush=True)
            if reporting and not write_error(config_path, message):
                print(f"llm_assets.training {command}: could not write {error_path(config_path)} either",
                      file=sys.stderr, flush=True)
            return 1
        finally:
            if reporting:
                release_error_file(config_path)
        if pipes is not None and metrics:
            pipes.report_asset_materialization(metadata=materialization_metadata(metrics, metadata_keys))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llm_assets.training", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pretrain = commands.add_parser("pretrain", help="pretrain the base model from token shards")
    pretrain.add_argument("--config", required=True, help="JSON file: shards, tokenizer, out, model, train, ...")
    sft = commands.add_parser("sft", help="fine-tune the base checkpoint on chat examples (assistant tokens only)")
    sft.add_argument("--config", required=True, help="JSON file: examples, base, out, profile, sft, accelerator, ...")
    for program in (pretrain, sft):
        program.add_argument("--ray", action="store_true",
                             help="train as a Ray Train job: devices x num_nodes workers, one GPU each on "
                                  "gpu, at $LLM_ASSETS_RAY_ADDRESS (unset: a local cluster)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "pretrain":
        return pretrain_command(args.config, ray=args.ray)
    if args.command == "sft":
        return sft_command(args.config, ray=args.ray)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    # as a program only: an orphan would keep training (and its run the `gpu` pool) after its launcher died
    die_with_parent(who="llm_assets.training")
    sys.exit(main())
