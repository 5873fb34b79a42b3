"""A decoder-only transformer, architecturally identical to Hugging Face `LlamaForCausalLM`.

RMSNorm, rotary position embeddings (rotate-half convention, theta 10000), SwiGLU MLP,
grouped-query attention, tied or untied embeddings, `F.scaled_dot_product_attention`, and a
KV cache for generation. Module names follow the HF layout (`embed_tokens`, `layers.N.self_attn.q_proj`,
...) so export is a prefix rename. Shapes: B batch, T time, C d_model, H heads, K kv heads, D head dim.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from llm_assets.profiles import ModelSize

IGNORE_INDEX = -100  # targets with this value do not count in the loss (padding, masked prompt tokens)


@dataclass(frozen=True, kw_only=True)
class ModelConfig(ModelSize):
    """A profile's model shape plus what the tokenizer and the architecture fix: one checkpoint's `config.json`."""

    vocab_size: int
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    init_std: float = 0.02

    def __post_init__(self):
        if problems := self.problems():
            raise ValueError(f"ModelConfig: {'; '.join(problems)}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @classmethod
    def from_size(cls, size: ModelSize, vocab_size: int) -> ModelConfig:
        """A profile's model shape with the tokenizer's vocabulary size."""
        return cls(vocab_size=vocab_size, **{f.name: getattr(size, f.name) for f in fields(ModelSize)})

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"ModelConfig: unknown fields {sorted(unknown)}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        # normalise in fp32 like HF Llama, then cast back before the weight
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(dtype)


def rotary_tables(head_dim: int, length: int, theta: float, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables (length, D) in fp32, frequencies repeated across the two halves (HF convention)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim))
    positions = torch.arange(length, device=device, dtype=torch.float32)
    freqs = torch.outer(positions, inv_freq)  # (length, D/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (length, D)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x, cos, sin):
    # x (B, H, T, D); cos/sin (T, D)
    return x * cos + rotate_half(x) * sin


class KVCache:
    """Preallocated keys/values per layer for incremental decoding; `length` tokens are filled."""

    def __init__(self, config: ModelConfig, batch: int, max_length: int, device, dtype):
        shape = (batch, config.n_kv_head, max_length, config.head_dim)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.max_length = max_length
        self.length = 0

    def update(self, layer: int, start: int, k, v):
        end = start + k.shape[2]
        if end > self.max_length:
            raise ValueError(f"KV cache full: {end} positions needed, {self.max_length} allocated")
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]


class Attention(nn.Module):
    def __init__(self, config: ModelConfig, layer: int):
        super().__init__()
        self.layer = layer
        self.n_head, self.n_kv_head, self.head_dim = config.n_head, config.n_kv_head, config.head_dim
        self.q_proj = nn.Linear(config.d_model, config.n_head * config.head_dim, bias=False)
        self.k_proj = nn.Linear(config.d_model, config.n_kv_head * config.head_dim, bias=False)
        self.v_proj = nn.Linear(config.d_model, config.n_kv_head * config.head_dim, bias=False)
        self.o_proj = nn.Linear(config.n_head * config.head_dim, config.d_model, bias=False)

    def forward(self, x, cos, sin, cache: KVCache | None = None, start: int = 0):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = self.k_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # (B, K, T, D)
        v = self.v_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # (B, K, T, D)
        q, k = apply_rotary(q, cos, sin).to(v.dtype), apply_rotary(k, cos, sin).to(v.dtype)
        if cache is not None:
            k, v = cache.update(self.layer, start, k, v)  # (B, K, start+T, D)
        if self.n_kv_head != self.n_head:
            repeat = self.n_head // self.n_kv_head
            k = k.repeat_interleave(repeat, dim=1)  # (B, H, S, D)
            v = v.repeat_interleave(repeat, dim=1)
        S = k.shape[2]
        if S == T:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif T == 1:
            y = F.scaled_dot_product_attention(q, k, v)  # one new token attends to every cached one
        else:
            # new tokens at positions start..start+T-1 see every key up to their own position
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim)  # (B, T, C)
        return self.o_proj(y)


class SwiGLU(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.up_proj = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.down_proj = nn.Linear(config.d_ff, config.d_model, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, config: ModelConfig, layer: int):
        super().__init__()
        self.input_layernorm = RMSNorm(config.d_model, config.norm_eps)
        self.self_attn = Attention(config, layer)
        self.post_attention_layernorm = RMSNorm(config.d_model, config.norm_eps)
        self.mlp = SwiGLU(config)

    def forward(self, x, cos, sin, cache=None, start=0):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, start)
        return x + self.mlp(self.post_attention_layernorm(x))


class DecoderLM(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        cos, sin = rotary_tables(config.head_dim, config.context, config.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)  # (context, D)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        # residual projections scaled down with depth (GPT-2) so the residual stream keeps its scale
        for name, param in self.named_parameters():
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                nn.init.normal_(param, mean=0.0, std=config.init_std / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # tied weights counted once

    def forward(self, idx, targets=None, cache: KVCache | None = None, start: int = 0):
        """idx (B, T) token ids -> logits (B, T, V), and the mean loss over targets != IGNORE_INDEX."""
        B, T = idx.shape
        if start + T > self.rope_cos.shape[0]:
            self._extend_rotary(start + T)
        cos = self.rope_cos[start:start + T]  # (T, D)
        sin = self.rope_sin[start:start + T]
        x = self.embed_tokens(idx)  # (B, T, C)
        for block in self.layers:
            x = block(x, cos, sin, cache, start)
        x = self.norm(x)
        logits = self.lm_head(x)  # (B, T, V)
        if cache is not None:
            cache.length = start + T
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1),
                               ignore_index=IGNORE_INDEX)
        return logits, loss

    def _extend_rotary(self, length: int):
        # positions past the training context still get correct rotary angles (HF computes them on the fly)
        cos, sin = rotary_tables(self.config.head_dim, length, self.config.rope_theta, self.rope_cos.device)
        self.rope_cos, self.rope_sin = cos, sin
