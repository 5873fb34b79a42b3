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


class TrainingLauncher(ConfigurableResource):
    """Runs `python -m llm_assets.training ...` through Dagster Pipes: a local subprocess by default, or a
    Kubernetes pod (dagster-k8s `PipesK8sClient`) with GPU requests; the program is the same."""

    backend: str = "subprocess"  # or "kubernetes"
    image: str | None = None
    namespace: str | None = None
    gpus: int = 0
    env: dict[str, str] = {}

    def run(self, context: AssetExecutionContext, args: list[str]) -> list:
        if self.backend == "subprocess":
            client = PipesSubprocessClient(env=self.env or None)
            invocation = client.run(command=[sys.executable, "-m", "llm_assets.training", *args], context=context)
        elif self.backend == "kubernetes":
            from dagster_k8s import PipesK8sClient

            limits = {"nvidia.com/gpu": str(self.gpus)} if self.gpus else {}
            invocation = PipesK8sClient().run(
                context=context, image=self.image, namespace=self.namespace, env=self.env,
                command=["python", "-m", "llm_assets.training", *args],
                base_pod_spec={"containers": [{"name": "training", "resources": {"limits": limits}}]},
            )
        else:
            raise ValueError(f"TrainingLauncher.backend must be 'subprocess' or 'kubernetes', not {self.backend!r}")
        return list(invocation.get_results())


def launch(context: AssetExecutionContext, launcher: TrainingLauncher, command: str, config: dict,
           config_path) -> list:
    """Write the program's JSON config where the program can read it and launch it."""
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(json.dumps(config, indent=2))
    context.log.info("launching %s with %s", command, config_path)
    return launcher.run(context, [command, "--config", str(config_path)])


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
                    launcher: TrainingLauncher):
    out = lake.asset_dir("base_checkpoint")
    shards = lake.asset_dir("token_shards")
    config = {"profile": lake.profile, "shards": str(shards),
              "tokenizer": str(lake.asset_dir("tokenizer") / "tokenizer.json"), "out": str(out),
              **trainer.runtime()}
    yield from launch(context, launcher, "pretrain", config, lake.asset_dir("configs") / "pretrain.json")
    metrics = json.loads((out / "metrics.json").read_text())
    entropy = metrics["unigram_entropy"]
    train_loss, val_loss = metrics.get("train_loss"), metrics.get("val_loss")
    finite, why = loss_is_finite(train_loss, val_loss)
    learned = finite and val_loss is not None and val_loss < entropy
    yield check("loss_finite_and_learned", learned, train_loss=train_loss, val_loss=val_loss,
                unigram_entropy=entropy, detail=why)
