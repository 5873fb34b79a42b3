"""Model FLOPs per token and a quick matmul benchmark for the peak, so MFU can be reported on any device."""

from __future__ import annotations

import logging
import time

import torch

from llm_assets.modeling.model import ModelConfig

logger = logging.getLogger(__name__)


def matmul_parameters(config: ModelConfig) -> int:
    """Parameters that take part in a matmul: attention and MLP projections plus the output head."""
    c = config
    kv = c.n_kv_head * c.head_dim
    per_layer = 2 * c.d_model * c.d_model + 2 * c.d_model * kv + 3 * c.d_model * c.d_ff
    return c.n_layer * per_layer + c.vocab_size * c.d_model  # the input embedding is a lookup


def flops_per_token(config: ModelConfig, context: int | None = None) -> int:
    """Training FLOPs per token: 6·N (forward + backward) plus the attention scores 12·L·C·T (PaLM, app. B)."""
    return 6 * matmul_parameters(config) + 12 * config.n_layer * config.d_model * (context or config.context)


def measure_matmul_peak(device: str | torch.device = "cpu", dtype: torch.dtype | None = None, size: int = 1024,
                        seconds: float = 0.5, trials: int = 5) -> float:
    """Achievable FLOP/s of a square matmul on `device` (bf16 on CUDA, fp32 elsewhere unless `dtype`).

    The best of `trials` bursts sharing `seconds`: a burst slowed by other work on the machine would
    understate the peak and make MFU look higher than it is (even over 100 %).
    """
    device = torch.device(device)
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    if device.type == "cuda":
        size = max(size, 4096)  # small matmuls cannot fill a GPU
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(3):  # warm up kernels and caches
        a @ b
    sync()
    peak = 0.0
    for _ in range(max(1, trials)):
        runs, started = 0, time.perf_counter()
        while True:
            a @ b
            runs += 1
            if runs % 4 == 0:
                sync()
                elapsed = time.perf_counter() - started
                if elapsed >= seconds / max(1, trials):
                    break
        peak = max(peak, 2 * size**3 * runs / elapsed)
    logger.info("matmul peak on %s (%s, %d x %d): %.3g FLOP/s", device, dtype, size, size, peak)
    return peak
