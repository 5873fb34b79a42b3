"""Steps/s of the Lightning pretraining job against a plain PyTorch loop, plus achieved FLOP/s and MFU.

Same model, data stream, optimizer, schedule, clipping, precision (32-true) and seed on both sides; the
matmul peak is measured in this script. Runs alternate (plain, Lightning, plain, Lightning, ...) so CPU
contention from other work hits both alike. Usage:

    python bench/bench_training.py [--steps 25] [--repeats 2]   (package installed, or PYTHONPATH=.)
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from llm_assets.modeling.model import DecoderLM, ModelConfig
from llm_assets.training.config import PretrainConfig, config_from_dict
from llm_assets.training.data import RandomWindowBatches, ShardWindows
from llm_assets.training.flops import flops_per_token, measure_matmul_peak
from llm_assets.training.module import lr_factor
from llm_assets.training.pretrain import run_pretraining

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' generated sample corpus
from sample_data import write_sample_corpus  # noqa: E402

MODEL = {"n_layer": 4, "n_head": 4, "n_kv_head": 2, "d_model": 128, "d_ff": 352, "context": 128}
TRAIN = {"micro_batch": 16, "grad_accum": 1, "lr": 2e-3, "warmup_steps": 5, "min_lr_ratio": 0.1,
         "weight_decay": 0.1, "grad_clip": 1.0, "seed": 1337}


def plain_loop(shards: Path, vocab_size: int, steps: int) -> float:
    """Steps/s of a hand-written loop (first step left out, like the Lightning figure)."""
    torch.manual_seed(TRAIN["seed"])
    config = ModelConfig(vocab_size=vocab_size, **MODEL)
    model = DecoderLM(config).train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": TRAIN["weight_decay"]},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=TRAIN["lr"], betas=(0.9, 0.95))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, TRAIN["warmup_steps"], steps, TRAIN["min_lr_ratio"]))
    data = RandomWindowBatches(ShardWindows(shards, "train", config.context), TRAIN["micro_batch"],
                               TRAIN["seed"], rank=0, length=steps)
    durations = []
    started = time.perf_counter()
    for step in range(steps):
        batch = data[step]
        _, loss = model(batch["input_ids"], batch["targets"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["grad_clip"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        schedule.step()
        loss.item()
        now = time.perf_counter()
        durations.append(now - started)
        started = now
    timed = durations[1:]
    return len(timed) / sum(timed)


def lightning_job(corpus: dict, out: Path, steps: int) -> dict:
    config = config_from_dict(PretrainConfig, {
        "shards": str(corpus["shards"]), "tokenizer": str(corpus["tokenizer"]), "out": str(out),
        "model": MODEL, "peak_flops": 1.0, "resume": False, "log_every": 10**9,
        "train": {**TRAIN, "max_steps": steps, "checkpoint_every": 10**9, "eval_every": 0, "eval_batches": 1,
                  "accelerator": "cpu", "precision": "32-true"}}, "bench config")
    return run_pretraining(config, emit=lambda _: None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_sample_corpus(Path(tmp) / "corpus", documents=1500, vocab_size=512, shard_tokens=1 << 16)
        vocab_size = 512
        peak = measure_matmul_peak("cpu", size=1024, seconds=1.0)
        plain, lightning = [], []
        for repeat in range(args.repeats):
            plain.append(plain_loop(corpus["shards"], vocab_size, args.steps))
            lightning.append(lightning_job(corpus, Path(tmp) / f"run{repeat}", args.steps)["steps_per_s"])
        config = ModelConfig(vocab_size=vocab_size, **MODEL)
        tokens_per_step = TRAIN["micro_batch"] * MODEL["context"]
        fpt = flops_per_token(config)

    rows = []
    for name, runs in (("plain PyTorch loop", plain), ("Lightning job", lightning)):
        steps_per_s = statistics.median(runs)
        flops = steps_per_s * tokens_per_step * fpt
        rows.append((name, steps_per_s, steps_per_s * tokens_per_step, flops, flops / peak))
    print(f"\nmodel {MODEL}, micro_batch {TRAIN['micro_batch']}, {args.steps} steps x {args.repeats} repeats, "
          f"fp32 on CPU ({torch.get_num_threads()} threads)")
    print(f"matmul peak (1024x1024 fp32): {peak / 1e9:.1f} GFLOP/s; model FLOPs/token: {fpt / 1e6:.2f} M")
    print(f"{'run':<20} {'steps/s':>9} {'tokens/s':>10} {'GFLOP/s':>9} {'MFU':>7}   per-repeat steps/s")
    for (name, steps_per_s, tokens_per_s, flops, mfu), runs in zip(rows, (plain, lightning), strict=True):
        print(f"{name:<20} {steps_per_s:>9.2f} {tokens_per_s:>10,.0f} {flops / 1e9:>9.2f} {mfu:>7.1%}   "
              + ", ".join(f"{r:.2f}" for r in runs))
    print(f"Lightning / plain steps/s: {rows[1][1] / rows[0][1]:.3f} (goal >= 0.95)")


if __name__ == "__main__":
    main()
