"""A tiny randomly initialised Llama and a locally trained byte-level BPE tokenizer, written as a
Hugging Face folder: a stand-in checkpoint for tests and benchmarks that needs no download."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from llm_assets.tokens.special import ENDOFTEXT, PAD, SPECIAL_TOKENS


def train_byte_bpe(texts: Iterable[str], vocab_size: int = 512):
    """A byte-level BPE `tokenizers.Tokenizer` trained on `texts`, with the project's special tokens first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(list(texts), trainer=trainer)
    return tokenizer


def write_tiny_hf_checkpoint(folder: str | Path, texts: Iterable[str], vocab_size: int = 512, d_model: int = 64,
                             n_layer: int = 2, n_head: int = 4, context: int = 256, seed: int = 0) -> Path:
    """Train a tokenizer on `texts`, build a random `LlamaForCausalLM`, save both to `folder`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    tokenizer = train_byte_bpe(texts, vocab_size)
    hf_tokenizer = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=ENDOFTEXT, bos_token=ENDOFTEXT,
                                           pad_token=PAD, unk_token=None)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=d_model,
                         intermediate_size=d_model * 8 // 3, num_hidden_layers=n_layer,
                         num_attention_heads=n_head, num_key_value_heads=max(1, n_head // 2),
                         max_position_embeddings=context, tie_word_embeddings=True,
                         eos_token_id=tokenizer.token_to_id(ENDOFTEXT),
                         bos_token_id=tokenizer.token_to_id(ENDOFTEXT),
                         pad_token_id=tokenizer.token_to_id(PAD))
    model = LlamaForCausalLM(config)
    # a wider init than the default makes random choices differ clearly in log-likelihood
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0.0, 0.2)
    model.eval()
    model.save_pretrained(folder)
    hf_tokenizer.save_pretrained(folder)
    return folder
