"""The training program under Dagster Pipes: log lines and the materialization metadata reach Dagster."""

import json
import os
import sys
from pathlib import Path

import pytest

dagster = pytest.importorskip("dagster")

from sample_data import write_sample_corpus  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def test_pretrain_reports_through_pipes(tmp_path):
    corpus = write_sample_corpus(tmp_path / "corpus", documents=120, vocab_size=300)
    out = tmp_path / "run"
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps({
        "shards": str(corpus["shards"]), "tokenizer": str(corpus["tokenizer"]), "out": str(out),
        "model": {"n_layer": 1, "n_head": 2, "n_kv_head": 1, "d_model": 32, "d_ff": 64, "context": 32},
        "train": {"max_steps": 6, "micro_batch": 4, "lr": 3e-3, "warmup_steps": 1, "grad_accum": 1,
                  "checkpoint_every": 3, "eval_every": 3, "eval_batches": 1},
        "accelerator": "cpu", "peak_flops": 1e10, "log_every": 2}))

    @dagster.asset
    def base_checkpoint(context: dagster.AssetExecutionContext, pipes: dagster.PipesSubprocessClient):
        return pipes.run(command=[sys.executable, "-m", "llm_assets.training", "pretrain", "--config",
                                  str(config_path)],
                         context=context, env={**os.environ, "PYTHONPATH": str(REPO)}).get_materialize_result()

    instance = dagster.DagsterInstance.ephemeral()
    result = dagster.materialize([base_checkpoint], resources={"pipes": dagster.PipesSubprocessClient(cwd=str(REPO))},
                                 instance=instance)
    assert result.success
    materializations = result.asset_materializations_for_node("base_checkpoint")
    metadata = {k: v.value for k, v in materializations[-1].metadata.items()}
    assert metadata["steps"] == 6 and metadata["tokens_seen"] == 6 * 4 * 32
    assert metadata["val_loss"] > 0 and metadata["mfu"] > 0
    assert metadata["path"] == str(out) and Path(metadata["loss_curve"]).is_file()
    logs = [e.user_message for e in instance.all_logs(result.run_id) if "step 6/6 loss" in e.user_message]
    assert logs, "progress lines should arrive as Dagster log messages"
