"""Training assets: the Lightning program launched through Dagster Pipes, one at a time (`gpu` pool)."""

import json
import math
import shutil
import sys
from pathlib import Path

import polars as pl
from dagster import (
    AssetExecutionContext,
    ConfigurableResource,
    MaterializeResult,
    MetadataValue,
    PipesSubprocessClient,
    asset,
)

from llm_assets.engine import RAY_ADDRESS_ENV
from llm_assets.evaluation.gain import paired_gain
from llm_assets.evaluation.multiple_choice import answer_accuracy
from llm_assets.lake import file_sha256, write_parquet
from llm_assets.modeling.checkpoint import WEIGHTS_FILE
from llm_assets.profiles import get_profile
from llm_assets.synthetic.crawl_folder import BENCHMARK_FILE
from llm_assets.tokens.shards import MANIFEST
from llm_assets.tokens.tokenizer import TOKENIZER_FILE
from llm_assets.training import error_path
from llm_assets.training.callbacks import LAST_CHECKPOINT, METRICS_FILE
from llm_assets.training.checks import loss_is_finite
from llm_assets.training.data import require_trainable
from llm_assets.training.failure import disk_full_cause, reported_failure
from llm_assets.training.lifeline import launcher_env
from llm_assets.training.resume import json_content_digest, reset_if_inputs_changed
from llm_assets.training.sft import ends_turn_check
from llm_assets.training.sft_data import (
    EXAMPLE_SCHEMA,
    chat_texts,
    check_examples,
    load_conversations,
    render_examples,
)

from .common import GPU_POOL, check, image_markdown, metadata_value, spec
from .resources import CrawlSource, LakeResource

GROUP = "training"
OWNERS = ["team:modeling"]
SKIPPED_FILE = "SKIPPED.txt"
EXAMPLES_FILE = "examples.parquet"


def _heldout_label() -> tuple[bool, str]:
    """Whether beats_base_on_heldout blocks in the profile this code location loads with, and its first words."""
    try:
        profile = get_profile()
    except ValueError:  # a bad profile or config: the runs report it
        return True, "Blocking unless the profile's sft.heldout_check_blocks is off"
    if profile.sft.heldout_check_blocks:
        return True, "Blocking"
    return False, f"A warning in the {profile.name} profile (sft.heldout_check_blocks off), blocking in the others"


HELDOUT_BLOCKS, HELDOUT_LABEL = _heldout_label()

NO_SFT = ("no fine-tuning data: a real crawl has no synthetic instruction set, so set LLM_ASSETS_SFT to "
          "Alpaca or chat JSONL files to train the assistant")


class TrainerResource(ConfigurableResource):
    """Where training runs: `profiles.Runtime`'s fields as Dagster config; None = the profile's."""

    accelerator: str | None = None
    devices: int | None = None
    num_nodes: int | None = None
    strategy: str | None = None
    precision: str | None = None

    def runtime(self) -> dict:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class TrainingLauncher(ConfigurableResource):
    """Runs `python -m llm_assets.training ...` through Dagster Pipes: a local subprocess by default, a
    Kubernetes pod (dagster-k8s `PipesK8sClient`) with GPU requests, or (`ray`) a local subprocess that trains
    as a Ray Train job (`--ray`); the program is the same.

    With `ray` the trainer resource's runtime says the job's size: `devices` x `num_nodes` workers, each with
    one GPU when `accelerator` is gpu (the `gpu` profile's), else one CPU. The cluster is `ray_address`, else
    `$LLM_ASSETS_RAY_ADDRESS`, else a local one started for the run; the out folders must be storage that
    the cluster's workers reach. `env` may set `LLM_ASSETS_RAY_RUNTIME_ENV` (JSON) for a remote cluster.
    """

    backend: str = "subprocess"  # or "kubernetes" or "ray"
    image: str | None = None
    namespace: str | None = None
    gpus: int = 0
    env: dict[str, str] = {}
    ray_address: str | None = None  # backend "ray": `auto` or `ray://host:10001`

    def run(self, context: AssetExecutionContext, args: list[str]) -> list:
        if self.backend in ("subprocess", "ray"):
            env = {**self.env, **({RAY_ADDRESS_ENV: self.ray_address} if self.ray_address else {})}
            client = PipesSubprocessClient(env=env or None)
            flags = ["--ray"] if self.backend == "ray" else []
            command = [sys.executable, "-m", "llm_assets.training", *args, *flags]
            # the child checks this pid and dies with this process (no orphan holding the pool after a kill -9)
            invocation = client.run(command=command, context=context, env=launcher_env())
        elif self.backend == "kubernetes":
            from dagster_k8s import PipesK8sClient

            limits = {"nvidia.com/gpu": str(self.gpus)} if self.gpus else {}
            invocation = PipesK8sClient().run(
                context=context, image=self.image, namespace=self.namespace, env=self.env,
                command=["python", "-m", "llm_assets.training", *args],
                base_pod_spec={"containers": [{"name": "training", "resources": {"limits": limits}}]},
            )
        else:
            raise ValueError(f"TrainingLauncher.backend must be 'subprocess', 'kubernetes' or 'ray', not "
                             f"{self.backend!r}")
        return list(invocation.get_results())


def launch(context: AssetExecutionContext, launcher: TrainingLauncher, command: str, config: dict,
           config_path, url: str | None = None) -> list:
    """Write the program's JSON config where the program can read it and launch it; a failed run raises
    the program's own one-line error (which it leaves next to the config) instead of Pipes' exit code, or the
    full disk that kept it from leaving one.
    `url`, when given, replaces the `path` the program reports (its local folder) in the materialization:
    the asset's folder in an object-store lake."""
    config_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        config_path.write_text(json.dumps(config, indent=2))
    except OSError as err:
        config_path.unlink(missing_ok=True)
        raise OSError(err.errno, f"{context.asset_key.to_user_string()}: could not write {config_path}: "
                                 f"{disk_full_cause(err, [config_path.parent]) or err.strerror}") from None
    error = error_path(config_path)
    error.unlink(missing_ok=True)
    context.log.info("launching %s with %s", command, config_path)
    try:
        results = launcher.run(context, [command, "--config", str(config_path)])
    except Exception:
        reported = reported_failure(config_path, [config["out"], config_path.parent])
        if reported:
            raise RuntimeError(f"{context.asset_key.to_user_string()}: the {command} program failed: "
                               f"{reported}") from None
        raise
    return [_as_reported(r, url) if isinstance(r, MaterializeResult) else r for r in results]


def _as_reported(result: MaterializeResult, url: str | None) -> MaterializeResult:
    """The program's materialization with its loss curve drawn inline from the file it names, and, with
    `url`, the lake's locations instead of the program's local folder."""
    metadata = dict(result.metadata or {})
    curve = metadata.get("loss_curve")
    if curve is not None and Path(str(curve.value)).is_file():
        metadata["loss_curve_plot"] = image_markdown(Path(str(curve.value)), "loss curve")
        if url is not None:
            metadata["loss_curve"] = MetadataValue.path(f"{url}/{Path(str(curve.value)).name}")
    if url is not None:
        metadata["path"] = MetadataValue.path(url)
    return MaterializeResult(asset_key=result.asset_key, metadata=metadata, check_results=result.check_results,
                             data_version=result.data_version, tags=result.tags)


def checkpoint_ready(folder: Path) -> bool:
    """A trained checkpoint is there (not a stage skipped for want of data)."""
    return (folder / WEIGHTS_FILE).is_file() and not (folder / SKIPPED_FILE).exists()


def mark_skipped(folder: Path, why: str) -> Path:
    """Replace `folder` by one that only says why the stage did not run (no stale model stays behind)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / SKIPPED_FILE).write_text(why + "\n")
    return folder


@asset(
    deps=["token_shards", "tokenizer"], group_name=GROUP, owners=OWNERS, kinds={"pytorch", "lightning"},
    pool=GPU_POOL, code_version="base_checkpoint-1",
    description="Decoder-only transformer (Llama architecture) pretrained on the token shards by a "
    "standalone Lightning program launched through Dagster Pipes; resumes from last.ckpt.",
    check_specs=[
        spec("base_checkpoint", "loss_finite_and_learned",
             "Blocks when a final loss is not finite or no better than ln(vocab); warns when it is, but not below "
             "the unigram entropy of the training tokens (training too short to beat token frequencies).",
             blocking=True),
    ],
)
def base_checkpoint(context: AssetExecutionContext, lake: LakeResource, trainer: TrainerResource,
                    launcher: TrainingLauncher):
    # the program reads and writes local files: on an object-store lake, the synced mirrors of the folders
    with lake.working("base_checkpoint") as out, lake.working("configs") as configs:
        yield from _pretrain(context, lake, trainer, launcher, out, configs)


def _pretrain(context: AssetExecutionContext, lake: LakeResource, trainer: TrainerResource,
              launcher: TrainingLauncher, out: Path, configs: Path):
    shards = lake.fetch("token_shards")
    config = {"profile": lake.profile, "shards": str(shards),
              "tokenizer": str(lake.fetch("tokenizer") / TOKENIZER_FILE), "out": str(out),
              **trainer.runtime()}
    context_len = lake.profile_def().model.context
    counts = require_trainable(shards, context_len)
    if counts["validation"]["windows"] == 0:
        context.log.warning("validation split has %d tokens, fewer than context + 1 = %d: no held-out loss; "
                            "the loss check uses the training loss", counts["validation"]["tokens"], context_len + 1)
    # the lake's locations, not the local mirror's, so a rerun from another host's mirror still resumes
    where = {"shards": lake.url("token_shards"), "tokenizer": f"{lake.url('tokenizer')}/{TOKENIZER_FILE}",
             "out": lake.url("base_checkpoint")}
    stale = reset_if_inputs_changed(out, {"config": {**config, **where},
                                          "sizes": [lake.profile_def().model, lake.profile_def().train],
                                          "shards": json_content_digest(shards / MANIFEST)})
    context.log.info("inputs changed since last.ckpt: training from scratch" if stale else
                     "same inputs as last.ckpt: resuming it" if (out / LAST_CHECKPOINT).is_file() else
                     "no last.ckpt: training from scratch")
    yield from launch(context, launcher, "pretrain", config, configs / "pretrain.json", lake.url("base_checkpoint"))
    metrics = json.loads((out / METRICS_FILE).read_text())
    entropy = metrics["unigram_entropy"]
    train_loss, val_loss = metrics.get("train_loss"), metrics.get("val_loss")
    judged = val_loss if val_loss is not None else train_loss
    finite, why = loss_is_finite(train_loss, *([val_loss] if val_loss is not None else []))
    # ln(vocab) is a model that learned nothing; between it and the unigram entropy the model learned, but too
    # briefly for this text to beat token frequencies: a warning that says so, not a broken run
    uniform = math.log(json.loads((shards / MANIFEST).read_text())["vocab_size"])
    learned = finite and judged < entropy
    broken = not finite or judged >= uniform
    if finite and not learned and not broken:
        why = (f"loss {judged:.3f} is under the {uniform:.3f} of a model that learned nothing but not under the "
               f"unigram entropy {entropy:.3f}: train longer for this text (train.max_steps in LLM_ASSETS_CONFIG)")
    yield check("loss_finite_and_learned", learned, blocking_severity=broken, train_loss=train_loss,
                val_loss=val_loss, unigram_entropy=entropy, uniform_entropy=uniform, detail=why,
                judged_on="validation loss" if val_loss is not None else
                "training loss (the validation split is shorter than one context window)")


@asset(
    deps=["tokenizer"], group_name=GROUP, owners=OWNERS, kinds={"parquet"}, code_version="sft_examples-2",
    description="Conversations rendered with the chat template and tokenized, with a loss mask on assistant "
    "tokens, and each single-turn one again as plain `Question: …\nAnswer: …` text (loss on the answer): the "
    "synthetic world's instruction/response pairs plus user files (Alpaca or chat JSONL).",
    check_specs=[
        spec("sft_examples", "within_context", "No example is longer than the model's context.", blocking=True),
        spec("sft_examples", "assistant_spans_non_empty", "Every assistant turn has content.", blocking=True),
        spec("sft_examples", "no_heldout_overlap", "No held-out benchmark question is in a user turn or plain "
             "question, and no held-out person is named in any example.", blocking=True),
    ],
)
def sft_examples(context: AssetExecutionContext, lake: LakeResource, crawl: CrawlSource):
    sources = crawl.sft_sources()
    context_len = lake.profile_def().model.context
    url = MetadataValue.path(f"{lake.url('sft_examples')}/{EXAMPLES_FILE}")
    if not sources:
        context.log.warning(NO_SFT)
        write_parquet(pl.DataFrame(schema=EXAMPLE_SCHEMA), lake.asset_dir("sft_examples") / EXAMPLES_FILE)
        yield MaterializeResult(metadata={"path": url, "dagster/row_count": 0, "skipped": NO_SFT})
        for name in ("within_context", "assistant_spans_non_empty", "no_heldout_overlap"):
            yield check(name, True, skipped=NO_SFT)
        return
    with lake.working("sft_examples") as folder:
        out = folder / EXAMPLES_FILE
        stats = render_examples(load_conversations(sources), lake.fetch("tokenizer") / TOKENIZER_FILE,
                                context_len, out, plain=lake.profile_def().sft.plain_questions)
    if stats["examples"] == 0:
        raise ValueError(f"sft_examples: none of the {stats['conversations']} conversations in "
                         f"{', '.join(str(s) for s in sources)} is usable (dropped: {stats['dropped']}); "
                         f"give conversations that fit the model's {context_len}-token context")
    yield MaterializeResult(metadata={"path": url, "dagster/row_count": stats["examples"],
                                      "sources": metadata_value([str(s) for s in sources]),
                                      **{k: metadata_value(v) for k, v in stats.items() if k not in ("examples", "path")}})
    results = check_examples(out, context_len, crawl.benchmarks())
    for name, (passed, details) in results.items():
        yield check(name, passed, **details)


@asset(
    deps=["base_checkpoint", "sft_examples", "token_shards"], group_name=GROUP, owners=OWNERS,
    kinds={"pytorch", "lightning"}, pool=GPU_POOL, code_version="assistant_checkpoint-2",
    description="The base model fine-tuned on the examples (loss on assistant tokens and plain answers) with "
    "pretraining windows from token_shards replayed in every batch, by the same Lightning program, launched "
    "through Pipes; exports to Hugging Face with a chat template.",
    check_specs=[
        spec("assistant_checkpoint", "ends_turn", "Blocks when fine-tuning did not lower the assistant-token "
             "loss; warns when it did but greedy replies do not yet close their turn with <|end|>.", blocking=True),
        spec("assistant_checkpoint", "beats_base_on_heldout", HELDOUT_LABEL + ": on held-out people's questions, "
             "in the benchmark's question form, the assistant's gain over the base (paired by item, one-sided 95 % "
             "lower bound) reaches sft.heldout_margin.", blocking=HELDOUT_BLOCKS)],
)
def assistant_checkpoint(context: AssetExecutionContext, lake: LakeResource, crawl: CrawlSource,
                         trainer: TrainerResource, launcher: TrainingLauncher):
    with lake.working("assistant_checkpoint") as out, lake.working("configs") as configs:
        yield from _fine_tune(context, lake, crawl, trainer, launcher, out, configs)


def _fine_tune(context: AssetExecutionContext, lake: LakeResource, crawl: CrawlSource, trainer: TrainerResource,
               launcher: TrainingLauncher, out: Path, configs: Path):
    base = lake.fetch("base_checkpoint")
    examples = lake.fetch("sft_examples") / EXAMPLES_FILE
    if not examples.is_file():
        raise FileNotFoundError(f"assistant_checkpoint: {examples} does not exist; materialize sft_examples first")
    if pl.scan_parquet(examples).select(pl.len()).collect().item() == 0:
        why = f"skipped: sft_examples has no examples ({NO_SFT})"
        context.log.warning(why)
        mark_skipped(out, why)
        yield MaterializeResult(metadata={"path": MetadataValue.path(lake.url("assistant_checkpoint")),
                                          "skipped": why})
        yield check("ends_turn", True, skipped=why)
        yield check("beats_base_on_heldout", True, blocking_severity=False, skipped=why)
        return
    (out / SKIPPED_FILE).unlink(missing_ok=True)
    sizes = lake.profile_def().sft
    shards = lake.fetch("token_shards")
    config = {"profile": lake.profile, "examples": str(examples), "base": str(base), "out": str(out),
              "shards": str(shards) if sizes.replay_windows else "", **trainer.runtime()}
    where = {"examples": f"{lake.url('sft_examples')}/{EXAMPLES_FILE}", "base": lake.url("base_checkpoint"),
             "out": lake.url("assistant_checkpoint"), "shards": lake.url("token_shards") if config["shards"] else ""}
    reset_if_inputs_changed(out, {"config": {**config, **where}, "sizes": sizes,
                                  "examples": file_sha256(config["examples"]),
                                  "base": file_sha256(base / WEIGHTS_FILE),
                                  "shards": json_content_digest(shards / MANIFEST) if config["shards"] else None})
    yield from launch(context, launcher, "sft", config, configs / "sft.json", lake.url("assistant_checkpoint"))
    texts = chat_texts(examples, 8)
    passed, blocking, details = ends_turn_check(out, texts, json.loads((out / METRICS_FILE).read_text()))
    yield check("ends_turn", passed, blocking_severity=blocking, **details)
    synthetic = crawl.synthetic_folder()
    if synthetic is None:
        yield check("beats_base_on_heldout", True, blocking_severity=False,
                    skipped="skipped: no synthetic benchmark (held-out people exist only in the synthetic world)")
        return
    bench = Path(synthetic) / BENCHMARK_FILE
    # the question form benchmark_scores reads (lm-eval's prompt), for both models
    base_acc, assistant_acc = (answer_accuracy(folder, bench, mode="base") for folder in (base, out))
    gain = paired_gain(base_acc["correct"].get("heldout", []), assistant_acc["correct"].get("heldout", []),
                       sizes.heldout_margin)
    yield check("beats_base_on_heldout", gain["passed"], blocking_severity=sizes.heldout_check_blocks,
                assistant_heldout=assistant_acc["accuracy"].get("heldout"),
                base_heldout=base_acc["accuracy"].get("heldout"),
                assistant_sft_people=assistant_acc["accuracy"].get("sft"),
                base_sft_people=base_acc["accuracy"].get("sft"), gain=gain["gain"],
                gain_lower_bound_95=gain["lower_bound"], margin=gain["margin"], heldout_items=gain["items"])
