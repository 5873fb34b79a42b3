"""Pretraining and fine-tuning as a Ray Train job: the same programs, one Ray worker per device.

`train_on_ray(command, config, emit)` runs `run_pretraining` or `run_sft` unchanged in every worker of a
`ray.train.torch.TorchTrainer`; only their Lightning Trainer differs: Ray's DDP (or FSDP) strategy and
cluster environment (`RayDDPStrategy`/`RayFSDPStrategy`, `RayLightningEnvironment`, `prepare_trainer`) in
the process group Ray Train set up. Each worker draws the data of its own global rank, as under Lightning's
own launcher, so a config trains the same model either way.

The config's runtime fields keep their meaning:
- `devices` x `num_nodes` is the number of workers (the world size); `devices` must be a number;
- `accelerator` gpu gives each worker one GPU, cpu one CPU, auto a GPU when the cluster has any;
- `strategy` fsdp trains with FSDP, auto or ddp with DDP; precision is resolved in the worker as usual.

Global rank zero writes the checkpoint folder (`last.ckpt`, which a rerun resumes, `metrics.json`, ...), so
on a cluster of several machines `out` must be storage that every worker and the caller reach; Ray Train's
own records of the job go to `out/.ray_train`. Rank zero's progress lines come back to the caller's `emit`
through a Ray queue.

The cluster is `$LLM_ASSETS_RAY_ADDRESS` (`auto`, `ray://host:10001`), else a local one started for the run
and stopped after it; a Ray session already open in this process is used as it is. Workers import
llm_assets: on a local cluster the installed package; on a remote one give a `runtime_env`
(`$LLM_ASSETS_RAY_RUNTIME_ENV`, a JSON object such as `{"pip": [...]}`) or nodes whose image holds it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L

from llm_assets.engine import RAY_ADDRESS_ENV, start_local_ray
from llm_assets.profiles import Runtime
from llm_assets.training.config import RUNTIME_SECTION, PretrainConfig, SFTConfig, TrainerFactory
from llm_assets.training.pretrain import run_pretraining
from llm_assets.training.sft import run_sft

log = logging.getLogger(__name__)

RUNTIME_ENV_ENV = "LLM_ASSETS_RAY_RUNTIME_ENV"  # JSON runtime_env for the job's workers (remote clusters)
NO_RAY = "training on Ray needs Ray Train: pip install -e '.[ray]'"
PROGRAMS: dict[str, Callable[..., dict]] = {"pretrain": run_pretraining, "sft": run_sft}
STRATEGIES = {"auto": "ddp", "ddp": "ddp", "fsdp": "fsdp"}
RAY_RUN_FOLDER = ".ray_train"  # Ray Train's own records of the job, inside the out folder


@dataclass(frozen=True)
class RayScaling:
    """How a run spreads over Ray: `workers` processes, each with one GPU or one CPU, under `strategy`."""

    workers: int
    use_gpu: bool
    strategy: str  # "ddp" or "fsdp"


def ray_scaling(runtime: Runtime, cluster_gpus: float = 0.0) -> RayScaling:
    """The Ray Train layout a config's runtime fields ask for (see the module docstring); `cluster_gpus`
    settles accelerator auto. A runtime Ray cannot place is a ValueError that names the field."""
    devices = runtime.devices
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        raise ValueError(f"training on Ray: devices = {devices!r}; give the number of workers per node "
                         f"(an integer >= 1): each worker drives one device")
    if runtime.num_nodes < 1:
        raise ValueError(f"training on Ray: num_nodes = {runtime.num_nodes}; give 1 or more")
    accelerator = runtime.accelerator
    if accelerator not in ("auto", "cpu", "gpu", "cuda"):
        raise ValueError(f"training on Ray: accelerator = {accelerator!r}; Ray Train places cpu or gpu "
                         f"workers (or auto: gpu when the cluster has GPUs)")
    strategy = STRATEGIES.get(runtime.strategy)
    if strategy is None:
        raise ValueError(f"training on Ray: strategy = {runtime.strategy!r}; use one of "
                         f"{', '.join(STRATEGIES)} (Ray's Lightning strategies for DDP and FSDP)")
    use_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and cluster_gpus >= 1)
    return RayScaling(workers=devices * runtime.num_nodes, use_gpu=use_gpu, strategy=strategy)


def ray_trainer_factory(use_gpu: bool, strategy: str) -> TrainerFactory:
    """Builds Trainers inside a Ray Train worker: Ray launched the processes and set up their process group,
    so Lightning gets Ray's strategy and cluster environment and launches nothing itself."""
    from ray.train.lightning import RayDDPStrategy, RayFSDPStrategy, RayLightningEnvironment, prepare_trainer

    def make_trainer(**kwargs) -> L.Trainer:
        # a fresh strategy per Trainer: a run cut by max_epochs builds its Trainer twice
        kwargs.update(accelerator="gpu" if use_gpu else "cpu", devices="auto", num_nodes=1,
                      strategy=RayFSDPStrategy() if strategy == "fsdp" else RayDDPStrategy(),
                      plugins=[RayLightningEnvironment()])
        return prepare_trainer(L.Trainer(**kwargs))

    return make_trainer


def _train_worker(loop_config: dict) -> None:
    """One Ray Train worker runs the program; rank zero's lines and then its metrics go to the queue."""
    import ray.train

    queue = loop_config["queue"]
    make_trainer = ray_trainer_factory(loop_config["use_gpu"], loop_config["strategy"])
    program = PROGRAMS[loop_config["command"]]
    metrics = program(loop_config["config"], emit=queue.put, callbacks=loop_config["callbacks"],
                      make_trainer=make_trainer)
    if ray.train.get_context().get_world_rank() == 0:
        queue.put(metrics)


def _import_ray():
    try:
        import ray
        import ray.train.lightning  # noqa: F401
        import ray.train.torch  # noqa: F401
        import ray.util.queue  # noqa: F401
    except ImportError:
        raise RuntimeError(NO_RAY) from None
    return ray


def runtime_env_from_environment() -> dict | None:
    """`$LLM_ASSETS_RAY_RUNTIME_ENV` as a dict, None when unset; not a JSON object: a ValueError."""
    text = os.environ.get(RUNTIME_ENV_ENV, "").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"${RUNTIME_ENV_ENV} is not valid JSON ({err}); give a Ray runtime_env "
                         f"object") from None
    if not isinstance(value, dict):
        raise ValueError(f"${RUNTIME_ENV_ENV} must be a JSON object (a Ray runtime_env), not "
                         f"{type(value).__name__}")
    return value


def _connect(ray, address: str | None, runtime_env: dict | None, workers: int) -> bool:
    """Join `address` or start a local cluster with room for `workers`; True when this call opened the
    session (and so must close it)."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, runtime_env=runtime_env)
    else:
        # one CPU per worker must fit even on a smaller machine, or the job would wait for resources forever
        start_local_ray(ray, num_cpus=max(workers, os.cpu_count() or 1), runtime_env=runtime_env)
    return True


def _worker_error(err: BaseException) -> BaseException:
    """The lowest failed rank's own exception, so messages name the file as they do without Ray."""
    failures = getattr(err, "worker_failures", None) or {}
    for rank in sorted(failures):
        failure = failures[rank]
        cause = getattr(failure, "cause", None) or failure
        if isinstance(cause, Exception):
            return cause
    return err


def _on_device(config: PretrainConfig | SFTConfig, use_gpu: bool) -> PretrainConfig | SFTConfig:
    """`config` with accelerator auto settled as the cluster decided: every worker reports and casts alike."""
    section = RUNTIME_SECTION[type(config)]
    runtime = dataclasses.replace(getattr(config, section), accelerator="gpu" if use_gpu else "cpu")
    return dataclasses.replace(config, **{section: runtime})


def train_on_ray(command: str, config: PretrainConfig | SFTConfig, emit: Callable[[str], None] = print,
                 callbacks: Sequence[L.Callback] = (), address: str | None = None,
                 runtime_env: dict | None = None) -> dict:
    """Run `command` (pretrain or sft) as a Ray Train job; return rank zero's metrics (as in `metrics.json`).

    `address` defaults to `$LLM_ASSETS_RAY_ADDRESS`, `runtime_env` to `$LLM_ASSETS_RAY_RUNTIME_ENV`;
    `callbacks` join every worker's Trainer. A worker's exception is raised here as the worker raised it.
    """
    if command not in PROGRAMS:
        raise ValueError(f"training on Ray: unknown command {command!r}; one of {', '.join(PROGRAMS)}")
    ray = _import_ray()
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.util.queue import Empty, Queue

    scaling = ray_scaling(config.runtime)  # a runtime Ray cannot place fails before any cluster starts
    address = address or os.environ.get(RAY_ADDRESS_ENV) or None
    runtime_env = runtime_env if runtime_env is not None else runtime_env_from_environment()
    started = _connect(ray, address, runtime_env, scaling.workers)
    try:
        scaling = ray_scaling(config.runtime, ray.cluster_resources().get("GPU", 0.0))
        log.info("training on Ray at %s: %d %s workers (%s)", address or "a local cluster", scaling.workers,
                 "GPU" if scaling.use_gpu else "CPU", scaling.strategy)
        queue = Queue(actor_options={"num_cpus": 0})
        trainer = TorchTrainer(
            _train_worker,
            train_loop_config={"command": command, "config": _on_device(config, scaling.use_gpu),
                               "queue": queue, "callbacks": list(callbacks), "use_gpu": scaling.use_gpu,
                               "strategy": scaling.strategy},
            scaling_config=ScalingConfig(num_workers=scaling.workers, use_gpu=scaling.use_gpu),
            # Ray's records stay with their run, on storage the workers reach anyway (it keeps no checkpoints:
            # last.ckpt is ours); a failed run is rerun by its caller and resumes from last.ckpt
            run_config=RunConfig(name=RAY_RUN_FOLDER, storage_path=str(Path(config.out).resolve()),
                                 failure_config=FailureConfig(max_failures=0)),
        )
        failure: list[BaseException] = []

        def fit() -> None:
            try:
                trainer.fit()
            except BaseException as err:  # re-raised in the calling thread below
                failure.append(err)

        # the job runs in a thread so that progress lines reach `emit` in the caller's thread as they come
        runner = threading.Thread(target=fit, name="ray-train-fit", daemon=True)
        runner.start()
        metrics: dict | None = None
        while runner.is_alive() or not queue.empty():
            try:
                item = queue.get(timeout=0.5)
            except Empty:
                continue
            if isinstance(item, dict):
                metrics = item
            else:
                emit(item)
        runner.join()
        if failure:
            raise _worker_error(failure[0]) from None
        if metrics is None:
            raise RuntimeError(f"training on Ray: the job ended without rank zero's metrics; see "
                               f"{config.out}")
        return metrics
    finally:
        if started:
            ray.shutdown()
