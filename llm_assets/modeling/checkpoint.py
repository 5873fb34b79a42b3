"""Checkpoint folders: `model.safetensors` + `config.json` + `tokenizer.json`, loadable without Lightning."""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from llm_assets.modeling.model import DecoderLM, ModelConfig
from llm_assets.tokens.tokenizer import TOKENIZER_FILE, load_tokenizer

if TYPE_CHECKING:
    from llm_assets.tokens.tokenizer import Tokenizer

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "llm_assets.DecoderLM"
LAST_CKPT = "last.ckpt"
FLOAT_DTYPES = frozenset({"F32", "F16", "BF16", "float32", "float16", "bfloat16"})
# rotary tables are built from config.json alone (not stored): past this and the weights' size, a damaged config
TABLE_BYTES_FLOOR = 256 << 20


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def model_state_dict(model: DecoderLM) -> dict[str, torch.Tensor]:
    """Weights as contiguous fp32 CPU tensors; the tied `lm_head.weight` is left out (it is `embed_tokens`)."""
    state = {}
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and model.config.tie_embeddings:
            continue
        state[name] = tensor.detach().to("cpu", torch.float32).contiguous()
    return state


def save_checkpoint_folder(model: DecoderLM, config: ModelConfig, tokenizer_path: str | os.PathLike,
                           out_dir: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write `model.safetensors`, `config.json` and a copy of `tokenizer.json` into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer_path = Path(tokenizer_path)
    if not tokenizer_path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {tokenizer_path} (the tokenizer asset's tokenizer.json)")
    write_config_and_tokenizer(config, tokenizer_path, out, extra)
    tmp = out / f".{WEIGHTS_FILE}.{uuid.uuid4().hex}.tmp"
    save_file(model_state_dict(model), str(tmp), metadata={"format": FORMAT})
    os.replace(tmp, out / WEIGHTS_FILE)
    return out


def write_config_and_tokenizer(config: ModelConfig, tokenizer_path: str | os.PathLike, out_dir: str | os.PathLike,
                               extra: dict | None = None) -> None:
    """`config.json` and `tokenizer.json` alone: written when training starts, so `last.ckpt` loads mid-run."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer_path = Path(tokenizer_path)
    if not tokenizer_path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {tokenizer_path} (the tokenizer asset's tokenizer.json)")
    _atomic_write_text(out / CONFIG_FILE, json.dumps({"format": FORMAT, "model": config.to_dict(),
                                                      **(extra or {})}, indent=2))
    if tokenizer_path.resolve() != (out / TOKENIZER_FILE).resolve():
        tmp_tok = out / f".{TOKENIZER_FILE}.{uuid.uuid4().hex}.tmp"
        shutil.copyfile(tokenizer_path, tmp_tok)
        os.replace(tmp_tok, out / TOKENIZER_FILE)


def read_model_config(folder: str | os.PathLike) -> ModelConfig:
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: not a checkpoint folder (expected {WEIGHTS_FILE}, "
                                f"{CONFIG_FILE}, {TOKENIZER_FILE})")
    try:
        values = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err}); the checkpoint folder is damaged, re-export or "
                         f"re-materialize it") from None
    if not isinstance(values, dict) or values.get("format") != FORMAT:
        found = values.get("format") if isinstance(values, dict) else type(values).__name__
        hint = " (a Hugging Face export: load it with transformers)" if isinstance(values, dict) and \
            values.get("architectures") else ""
        raise ValueError(f"{path}: format {found!r} is not {FORMAT!r}{hint}")
    if not isinstance(values.get("model"), dict):
        raise ValueError(f"{path}: no 'model' section with the model's sizes")
    try:
        return ModelConfig.from_dict(values["model"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None


def expected_tensors(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The stored tensors' shapes `config` implies (DecoderLM's layout), computed without building anything."""
    C, V, F = config.d_model, config.vocab_size, config.d_ff
    q, kv = config.n_head * config.head_dim, config.n_kv_head * config.head_dim
    block = {"input_layernorm.weight": (C,), "self_attn.q_proj.weight": (q, C), "self_attn.k_proj.weight": (kv, C),
             "self_attn.v_proj.weight": (kv, C), "self_attn.o_proj.weight": (C, q),
             "post_attention_layernorm.weight": (C,), "mlp.gate_proj.weight": (F, C), "mlp.up_proj.weight": (F, C),
             "mlp.down_proj.weight": (C, F)}
    shapes = {"embed_tokens.weight": (V, C)}
    shapes.update({f"layers.{i}.{name}": shape for i in range(config.n_layer) for name, shape in block.items()})
    shapes["norm.weight"] = (C,)
    if not config.tie_embeddings:
        shapes["lm_head.weight"] = (V, C)
    return shapes


def weights_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (dtype, shape) from a safetensors file's header alone; the library bounds it and checks it
    against the file's size, so nothing the header claims is allocated."""
    try:
        with safe_open(str(path), framework="pt") as f:
            slices = {name: f.get_slice(name) for name in f.keys()}  # noqa: SIM118 (safe_open is no dict)
            return {name: (s.get_dtype(), tuple(s.get_shape())) for name, s in slices.items()}
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{path}: not a readable safetensors file ({err}); re-materialize or re-export the "
                         f"checkpoint") from None


def check_weights_match_config(folder: Path, config: ModelConfig, stored: dict[str, tuple[str, tuple[int, ...]]],
                               source: str) -> None:
    """Refuse, in one line naming the tensor and both shapes, weights that are not the model config.json
    describes: checked before the model is built, so a crafted config cannot make the loader allocate."""
    layers = {int(n.split(".")[1]) for n in stored if n.startswith("layers.") and n.split(".")[1].isdigit()}
    if config.n_layer > len(layers):
        raise ValueError(f"{folder}: config.json says n_layer {config.n_layer} but {source} holds "
                         f"{len(layers)} layers; the checkpoint folder is damaged, re-materialize or re-export it")
    expected = expected_tensors(config)
    for name, shape in expected.items():
        dtype, found = stored.get(name, (None, None))
        if found is None:
            raise ValueError(f"{folder}: tensor {name} {list(shape)} from config.json is not in {source}")
        if found != shape:
            raise ValueError(f"{folder}: tensor {name} is {list(shape)} in config.json but {list(found)} in "
                             f"{source}; the checkpoint folder is damaged, re-materialize or re-export it")
        if str(dtype).removeprefix("torch.") not in FLOAT_DTYPES:
            raise ValueError(f"{folder}: tensor {name} in {source} is {dtype}, not a float type")
    unexpected = sorted(set(stored) - set(expected) - {"lm_head.weight"})
    if unexpected:
        raise ValueError(f"{folder}: {source} holds tensors config.json does not describe: {unexpected[:5]}")
    weight_bytes = sum(math.prod(shape) * 4 for shape in expected.values())
    tables = 2 * config.context * config.head_dim * 4
    if tables > max(weight_bytes, TABLE_BYTES_FLOOR):
        raise ValueError(f"{folder}: config.json's context {config.context} needs {tables >> 20} MiB of rotary "
                         f"tables, more than the weights themselves; the checkpoint folder is damaged")


def _read_weights(folder: Path, config: ModelConfig) -> dict[str, torch.Tensor]:
    """The stored weights, checked against `config`: `model.safetensors` (its header first), or `last.ckpt`
    (`torch.load(weights_only=True)`, memory bounded by its size) when that is newer."""
    weights, lightning_ckpt = folder / WEIGHTS_FILE, folder / LAST_CKPT
    if weights.is_file() and not (lightning_ckpt.is_file()
                                  and lightning_ckpt.stat().st_mtime > weights.stat().st_mtime):
        check_weights_match_config(folder, config, weights_header(weights), WEIGHTS_FILE)
        try:
            return load_file(str(weights))
        except Exception as err:  # safetensors raises its own error types for damaged files
            raise ValueError(f"{weights}: not a readable safetensors file ({err}); re-materialize or "
                             f"re-export the checkpoint") from None
    if not lightning_ckpt.is_file():
        raise FileNotFoundError(f"{folder}: neither {WEIGHTS_FILE} nor {LAST_CKPT} found")
    try:
        ckpt = torch.load(lightning_ckpt, map_location="cpu", weights_only=True)
        state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise ValueError(f"{lightning_ckpt}: not a readable Lightning checkpoint ({err}); delete it to "
                         f"use {WEIGHTS_FILE}, or retrain") from None
    check_weights_match_config(folder, config, {k: (str(v.dtype), tuple(v.shape)) for k, v in state.items()},
                               LAST_CKPT)
    return state


def load_checkpoint(folder: str | os.PathLike, device: str = "cpu") -> tuple[DecoderLM, Tokenizer]:
    """The model (eval mode, fp32, on `device`) and its tokenizer from a checkpoint folder.

    Reads `model.safetensors`, or the Lightning `last.ckpt` (with `torch.load(weights_only=True)`) when
    that is newer: a training run that has not finished, or one resumed after its last export. The weights'
    shapes are checked against `config.json` before the model is built.
    """
    folder = Path(folder)
    config = read_model_config(folder)
    state = _read_weights(folder, config)
    model = DecoderLM(config)
    if config.tie_embeddings:
        state.pop("lm_head.weight", None)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # tensor shapes that differ from config.json
        first = str(err).strip().splitlines()[-1].strip()
        raise ValueError(f"{folder}: weights do not match config.json ({first})") from None
    missing = [m for m in missing if not (config.tie_embeddings and m == "lm_head.weight")]
    if missing or unexpected:
        raise ValueError(f"{folder}: weights do not match config.json (missing {missing}, unexpected {unexpected})")
    tokenizer_file = folder / TOKENIZER_FILE
    if not tokenizer_file.is_file():
        raise FileNotFoundError(f"{tokenizer_file} missing from the checkpoint folder")
    try:
        tokenizer = load_tokenizer(tokenizer_file)  # special-token text in prompts stays text
    except ValueError as err:
        raise ValueError(f"{err}; copy the tokenizer asset's tokenizer.json there") from None
    check_vocabulary_fits(tokenizer, config, tokenizer_file)
    return model.to(device).eval(), tokenizer


def check_vocabulary_fits(tokenizer: Tokenizer, config: ModelConfig, tokenizer_file: Path) -> None:
    """A tokenizer with ids past the model's embedding rows would fail mid-generation: refuse it at load."""
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if size > config.vocab_size:
        raise ValueError(f"{tokenizer_file}: the tokenizer has {size} ids but the model's embeddings have "
                         f"{config.vocab_size} rows; use the tokenizer.json the checkpoint was trained with")
