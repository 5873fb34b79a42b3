"""Export a checkpoint folder as a Hugging Face Llama folder (`AutoModelForCausalLM` / `AutoTokenizer`)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from llm_assets.modeling.checkpoint import WEIGHTS_FILE, read_model_config
from llm_assets.tokens.tokenizer import TOKENIZER_FILE

try:
    from llm_assets.tokens import special
except ImportError:  # the tokens library is optional for export
    special = None

logger = logging.getLogger(__name__)

ENDOFTEXT = "<|endoftext|>"
PAD = "<|pad|>"
END_OF_TURN = "<|end|>"


def hf_llama_config(config, tokenizer_vocab: dict[str, int]) -> dict:
    """The `config.json` of a `LlamaForCausalLM` with the same architecture as our `ModelConfig`."""
    eos = tokenizer_vocab.get(ENDOFTEXT)
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": config.vocab_size,
        "hidden_size": config.d_model,
        "intermediate_size": config.d_ff,
        "num_hidden_layers": config.n_layer,
        "num_attention_heads": config.n_head,
        "num_key_value_heads": config.n_kv_head,
        "head_dim": config.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": config.context,
        "initializer_range": config.init_std,
        "rms_norm_eps": config.norm_eps,
        "rope_theta": config.rope_theta,  # older transformers read this key
        "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_theta},
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": config.tie_embeddings,
        "bos_token_id": eos,
        "eos_token_id": eos,
        "pad_token_id": tokenizer_vocab.get(PAD, eos),
        "torch_dtype": "float32",
        "use_cache": True,
    }


def export_hf(checkpoint_folder: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write `out/` with `config.json`, `generation_config.json`, `model.safetensors` (HF names),
    `tokenizer.json` and `tokenizer_config.json` (eos/pad tokens and the chat template).

    `apply_chat_template` parses special tokens in the whole rendered string, so the template refuses message
    content that spells one; `tokenizer(text)` parses them too unless given `split_special_tokens=True`."""
    src, out = Path(checkpoint_folder), Path(out)
    config = read_model_config(src)
    weights_file = src / WEIGHTS_FILE
    if not weights_file.is_file():
        raise FileNotFoundError(f"{weights_file} missing: export needs a finished checkpoint folder")
    tokenizer_file = src / TOKENIZER_FILE
    if not tokenizer_file.is_file():
        raise FileNotFoundError(f"{tokenizer_file} missing from the checkpoint folder")
    try:
        vocab = json.loads(tokenizer_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{tokenizer_file}: not valid JSON ({err}); copy the tokenizer asset's tokenizer.json "
                         f"there") from None
    added = {t["content"]: t["id"] for t in vocab.get("added_tokens", [])}
    eos_token = ENDOFTEXT if ENDOFTEXT in added else None
    if eos_token is None:
        raise ValueError(f"{tokenizer_file}: special token {ENDOFTEXT} not found among added tokens")

    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; give a folder to export into")
    try:
        weights = load_file(str(weights_file))
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise ValueError(f"{weights_file}: not a readable safetensors file ({err}); re-materialize the "
                         f"checkpoint") from None
    out.mkdir(parents=True, exist_ok=True)
    # our module names are HF's inside `model.`; lm_head stays at the top level
    state = {(name if name == "lm_head.weight" else f"model.{name}"): tensor
             for name, tensor in weights.items()}
    if config.tie_embeddings:
        state.pop("lm_head.weight", None)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})

    hf_config = hf_llama_config(config, added)
    (out / "config.json").write_text(json.dumps(hf_config, indent=2))
    generation = {"bos_token_id": hf_config["bos_token_id"], "pad_token_id": hf_config["pad_token_id"],
                  "eos_token_id": sorted({added[t] for t in (ENDOFTEXT, END_OF_TURN) if t in added})}
    (out / "generation_config.json").write_text(json.dumps(generation, indent=2))

    shutil.copyfile(tokenizer_file, out / TOKENIZER_FILE)  # the name transformers reads too
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": config.context,
        "bos_token": eos_token,
        "eos_token": eos_token,
        "unk_token": None,
        "pad_token": PAD if PAD in added else eos_token,
        "additional_special_tokens": [t for t in added if t not in (ENDOFTEXT, PAD)],
        "clean_up_tokenization_spaces": False,
    }
    if special is not None and getattr(special, "CHAT_TEMPLATE", None):
        tokenizer_config["chat_template"] = special.CHAT_TEMPLATE
    (out / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    special_map = {k: tokenizer_config[k] for k in ("bos_token", "eos_token", "pad_token")}
    (out / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2))
    logger.info("exported %s to Hugging Face folder %s", src, out)
    return out
