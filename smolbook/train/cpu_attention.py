"""fp32 attention inside a bf16 training step on CPU.

On a CPU with native bf16 the linear layers' matmuls gain from bf16 autocast, but torch's CPU flash-attention
kernel is *slower* in bf16 than in fp32 at the small head dimensions of the offline scales (tiny: 16). Measured
on this book's 2-core machine, forward + backward of one tiny layer's attention (16 rows x 8 heads x 256 x 16):
21-27 ms in fp32 against 37-43 ms in bf16 (``benchmarks/pretrain_throughput.py`` prints the pair; the whole tiny
training step gains about 1.25x from it). So a CPU bf16 step runs the attention kernel in fp32 (q and k leave RoPE
in fp32 already; v is upcast) and hands its fp32 output to the output projection, which autocast casts to bf16 like
any input: every matmul outside attention stays bf16, the attention is as exact as fp32's.

Hand-written because neither torch's autocast (its CPU op lists put ``scaled_dot_product_attention`` in bf16,
with no per-op override) nor transformers offers this; transformers' ``AttentionInterface`` lets the wrapper be
registered under its own name, with sdpa's mask, and switched on for the length of a training run only. The name
is never saved: transformers drops the attention implementation from a checkpoint's config.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

NAME = "smolbook_sdpa_fp32_on_cpu"


def _sdpa_fp32_on_cpu(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, **kwargs: Any) -> tuple[torch.Tensor, Any]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if query.device.type != "cpu" or not torch.is_autocast_enabled("cpu"):  # evaluation, or not on a CPU
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    # Autocast would cast q, k, v to bf16 for the kernel (q and k leave RoPE in fp32, v its projection in bf16).
    with torch.autocast("cpu", enabled=False):
        return sdpa_attention_forward(module, query.float(), key.float(), value.float(), attention_mask, **kwargs)


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, _sdpa_fp32_on_cpu)
    AttentionMaskInterface.register(NAME, sdpa_mask)  # the same packed-document masks as sdpa


@contextmanager
def fp32_attention_on_cpu(model: torch.nn.Module, precision: str) -> Iterator[bool]:
    """For the length of the block, a CPU model with sdpa attention trained in ``precision="bf16"`` computes its
    attention in fp32 (see the module's docstring); yields whether it does. Anything else is left as it is."""
    config = getattr(model, "config", None)
    active = (precision == "bf16" and config is not None and getattr(config, "_attn_implementation", None) == "sdpa"
              and next(model.parameters()).device.type == "cpu" and hasattr(model, "set_attn_implementation"))
    if not active:
        yield False
        return
    _register()
    model.set_attn_implementation(NAME)
    try:
        yield True
    finally:
        model.set_attn_implementation("sdpa")
