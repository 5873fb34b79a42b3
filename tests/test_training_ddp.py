"""Pretraining with DDP over two CPU processes (gloo), launched as the standalone program."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sample_data import write_sample_corpus

REPO = Path(__file__).resolve().parents[1]


def test_ddp_on_two_cpu_processes(tmp_path):
    corpus = write_sample_corpus(tmp_path / "corpus", documents=150, vocab_size=300)
    out = tmp_path / "ddp"
    config = {"shards": str(corpus["shards"]), "tokenizer": str(corpus["tokenizer"]), "out": str(out),
              "model": {"n_layer": 1, "n_head": 2, "n_kv_head": 1, "d_model": 32, "d_ff": 64, "context": 32},
              "train": {"max_steps": 10, "micro_batch": 4, "grad_accum": 1, "lr": 3e-3, "warmup_steps": 2,
                        "checkpoint_every": 5, "eval_every": 5, "eval_batches": 2},
              "accelerator": "cpu", "devices": 2, "strategy": "ddp", "peak_flops": 1e10, "log_every": 5}
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_PIPES")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-m", "llm_assets.training", "pretrain", "--config", str(config_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps"] == 10
    assert metrics["tokens_seen"] == 10 * 4 * 32 * 2
    assert metrics["loss_finite"]
    assert "step 10/10 loss" in done.stdout
