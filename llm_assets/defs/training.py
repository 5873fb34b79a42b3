"""Training assets: the Lightning program launched through Dagster Pipes, one at a time (`gpu` pool)."""

import json
import sys

from dagster import (
    AssetExecutionContext,
    ConfigurableResource,
    PipesSubprocessClient,
    asset,
)

from llm_assets.training.checks import loss_is_finite

from .curation import check, spec
from .resources import LakeResource

GROUP = "training"
OWNERS = ["team:modeling"]
GPU_POOL = "gpu"


class TrainerResource(ConfigurableResource):
    """Where training runs: accelerator, devices, nodes, strategy, precision; None = the profile's."""

    accelerator: str | None = None
    devices: int | None = None
    num_nodes: int | None = None
    strategy: str | None = None
    precision: str | None = None

    def runtime(self) -> dict:
        return {k: v for k, v in self.model_dump().items() if v is not None}


def launch(context: AssetExecutionContext, pipes: PipesSubprocessClient, command: str, config: dict,
           config_path) -> list:
    """Write the program's JSON config next to its output and run it through Pipes."""
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(config, indent=2))
    context.log.info("launching %s with %s", command, config_path)
    invocation = pipes.run(
        command=[sys.executable, "-m", "llm_assets.training", command, "--config", str(config_path)],
        context=context,
    )
    return list(invocation.get_results())


@asset(
    deps=["token_shards", "tokenizer"], group_name=GROUP, owners=OWNERS, kinds={"pytorch", "lightning"},
    pool=GPU_POOL, code_version="base_checkpoint-1",
    description="Decoder-only transformer (Llama architecture) pretrained on the token shards by a "
    "standalone Lightning program launched through Dagster Pipes; resumes from last.ckpt.",
    check_specs=[
        spec("base_checkpoint", "loss_finite_and_learned",
             "Final losses are finite and below the unigram entropy of the training tokens.",
             blocking=True),
    ],
)
def base_checkpoint(context: AssetExecutionContext, lake: LakeResource, trainer: TrainerResource,
                    pipes: PipesSubprocessClient):
    out = lake.asset_dir("base_checkpoint")
    shards = lake.asset_dir("token_shards")
    config = {"profile": lake.profile, "shards": str(shards),
              "tokenizer": str(lake.asset_dir("tokenizer") / "tokenizer.json"), "out": str(out),
              **trainer.runtime()}
    yield from launch(context, pipes, "pretrain", config, lake.asset_dir("configs") / "pretrain.json")
    metrics = json.loads((out / "metrics.json").read_text())
    entropy = metrics["unigram_entropy"]
    train_loss, val_loss = metrics.get("train_loss"), metrics.get("val_loss")
    finite, why = loss_is_finite(train_loss, val_loss)
    learned = finite and val_loss is not None and val_loss < entropy
    yield check("loss_finite_and_learned", learned, train_loss=train_loss, val_loss=val_loss,
                unigram_entropy=entropy, detail=why)
