"""Checkpoint folders: `model.safetensors` + `config.json` + `tokenizer.json`, loadable without Lightning."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from llm_assets.modeling.model import DecoderLM, ModelConfig

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
FORMAT = "llm_assets.DecoderLM"


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


def load_checkpoint(folder: str | os.PathLike, device: str = "cpu") -> tuple[DecoderLM, Tokenizer]:
    """The model (eval mode, fp32, on `device`) and its tokenizer from a checkpoint folder.

    Reads `model.safetensors`, or the Lightning `last.ckpt` (with `torch.load(weights_only=True)`) when
    that is newer: a training run that has not finished, or one resumed after its last export.
    """
    folder = Path(folder)
    config = read_model_config(folder)
    model = DecoderLM(config)
    weights, lightning_ckpt = folder / WEIGHTS_FILE, folder / "last.ckpt"
    if weights.is_file() and not (lightning_ckpt.is_file()
                                  and lightning_ckpt.stat().st_mtime > weights.stat().st_mtime):
        try:
            state = load_file(str(weights))
        except Exception as err:  # safetensors raises its own error types for damaged files
            raise ValueError(f"{weights}: not a readable safetensors file ({err}); re-materialize or "
                             f"re-export the checkpoint") from None
    elif lightning_ckpt.is_file():
        try:
            ckpt = torch.load(lightning_ckpt, map_location="cpu", weights_only=True)
            state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
        except Exception as err:  # torch raises several types for truncated or foreign files
            raise ValueError(f"{lightning_ckpt}: not a readable Lightning checkpoint ({err}); delete it to "
                             f"use {WEIGHTS_FILE}, or retrain") from None
    else:
        raise FileNotFoundError(f"{folder}: neither {WEIGHTS_FILE} nor last.ckpt found")
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
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
    except Exception as err:  # tokenizers raises a bare Exception for malformed files
        raise ValueError(f"{tokenizer_file}: not a readable tokenizer.json ({err}); copy the tokenizer "
                         f"asset's tokenizer.json there") from None
    return model.to(device).eval(), tokenizer
