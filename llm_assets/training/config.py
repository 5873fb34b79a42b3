"""The training programs' JSON configs: one typed config per program, one loader for all of them.

A config file names the program's inputs and output, optionally a `profile` whose sections give the sizes,
per-section overrides (`{"train": {"max_steps": 3000}}`), and top-level runtime keys (accelerator, devices,
num_nodes, strategy, precision: `profiles.Runtime`) that say where it runs. Without a profile every size
field without a default must be given. Values are checked like `LLM_ASSETS_CONFIG`'s (`config_checks`): an
unknown or ill-typed field fails naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import lightning as L
import torch

from llm_assets.config_checks import checked_value, replace_fields
from llm_assets.lake import read_json
from llm_assets.profiles import RUNTIME_FIELDS, ModelSize, Profile, Runtime, SFTSize, TrainSize, get_profile


@dataclass(frozen=True)
class PretrainConfig:
    """`python -m llm_assets.training pretrain`: token shards and their tokenizer in, base checkpoint out."""

    shards: str
    tokenizer: str  # the tokenizer.json that wrote the shards
    out: str
    model: ModelSize
    train: TrainSize  # its runtime fields say where it runs
    peak_flops: float | None = None  # per device; measured with a matmul benchmark when absent
    resume: bool = True
    log_every: int = 10

    @property
    def runtime(self) -> Runtime:
        return self.train


@dataclass(frozen=True)
class SFTConfig:
    """`python -m llm_assets.training sft`: examples Parquet and the base checkpoint in, assistant checkpoint out."""

    examples: str  # Parquet written by `sft_data.render_examples`
    base: str  # checkpoint folder of the pretrained model
    out: str
    sft: SFTSize
    shards: str = ""  # token_shards folder whose train windows are replayed (`sft.replay_windows`)
    runtime: Runtime = Runtime()  # with a profile: its pretraining section's
    resume: bool = True
    log_every: int = 10


Config = TypeVar("Config", PretrainConfig, SFTConfig)
# each program's name, the section its top-level runtime keys go to, and its required paths
KINDS = {PretrainConfig: "pretrain", SFTConfig: "sft"}
RUNTIME_SECTION = {PretrainConfig: "train", SFTConfig: "runtime"}
PATHS_HINT = {PretrainConfig: "shards folder, tokenizer.json path, out folder",
              SFTConfig: "examples Parquet, base checkpoint folder, out folder"}


def _profile_section(profile: Profile | None, name: str, cls: type):
    """The profile's values for section `name` (the runtime slice of its `train` for `runtime`), else `cls`."""
    if profile is None:
        return cls
    if name == "runtime":
        return Runtime(**{key: getattr(profile.train, key) for key in RUNTIME_FIELDS})
    return getattr(profile, name)


def config_from_dict(cls: type[Config], values: dict, where: str = "training config") -> Config:
    """A `cls` config from JSON-like values, every field checked; `where` (the file) starts every error."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(values).__name__}")
    values = dict(values)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    paths = [name for name, f in fields.items() if hints[name] is str and f.default is dataclasses.MISSING]
    for key in paths:
        if not values.get(key) or not isinstance(values[key], str):
            raise ValueError(f"{where}: {key!r} is required ({PATHS_HINT[cls]})")
    profile = get_profile(values.pop("profile")) if values.get("profile") else None
    runtime = {key: values.pop(key) for key in RUNTIME_FIELDS if key in values}
    sections = {name: hints[name] for name in fields if dataclasses.is_dataclass(hints[name])}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; keys are profile, {', '.join(fields)}, "
                         f"{', '.join(RUNTIME_FIELDS)}")
    built = {}
    for name, section_cls in sections.items():
        overrides = values.pop(name, None) or {}
        if name == RUNTIME_SECTION[cls] and isinstance(overrides, dict):
            overrides = {**overrides, **runtime}
        base = _profile_section(profile, name, section_cls)
        if base is section_cls and fields[name].default is not dataclasses.MISSING:
            base = fields[name].default
        built[name] = replace_fields(base, name, overrides, where)
    for name, value in values.items():
        typed, problem = checked_value(cls, name, value)
        if problem:
            raise ValueError(f"{where}: {name} = {json.dumps(value)} {problem}")
        built[name] = typed
    return cls(**built)


def load_config(cls: type[Config], path: str | os.PathLike) -> Config:
    """The `cls` config in the JSON file `path`, with errors that name the file."""
    path, kind = Path(path), KINDS[cls]
    values = read_json(path, f"{kind} config {path} not found", label=f"{kind} config {path}")
    return config_from_dict(cls, values, str(path))


# builds a Trainer from its keyword arguments: `L.Trainer` lets Lightning launch the processes itself; a
# launcher that started them already (Ray Train) swaps in its own strategy and cluster environment
TrainerFactory = Callable[..., L.Trainer]


def resolve_runtime(runtime: Runtime) -> tuple[str, str]:
    """(accelerator, precision) with "auto" resolved: bf16-mixed on a GPU that supports it, 32-true on CPU."""
    accelerator = runtime.accelerator
    if accelerator == "auto":
        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    precision = runtime.precision
    if precision == "auto":
        on_gpu = accelerator in ("gpu", "cuda") and torch.cuda.is_available()
        precision = "bf16-mixed" if on_gpu and torch.cuda.is_bf16_supported() else "32-true"
    return accelerator, precision
