"""The attention of a training step on CPU: fp32 inside bf16 steps, and packed rows attended segment by segment.

Two things make torch's CPU attention slow where the book trains, and neither torch nor transformers fixes them:

* **bf16 at a small head size.** On a CPU with native bf16 the linear layers gain from bf16 autocast, but torch's
  CPU flash-attention kernel is *slower* in bf16 than in fp32 at the offline scales' head size (tiny: 16).
  Measured on this book's 2-core machine, forward + backward of one tiny layer's attention (16 rows x 8 heads x 256
  x 16): 21-27 ms in fp32 against 37-43 ms in bf16 (``benchmarks/pretrain_throughput.py`` prints the pair). So a
  CPU bf16 step runs the attention kernel in fp32 (q and k leave RoPE in fp32 already; v is upcast) and hands its
  fp32 output to the output projection, which autocast casts to bf16 like any input.
* **Padding-free rows.** TRL's BFD packing is padding-free: a batch arrives as *one* row holding every conversation
  (position ids restarting at each, plus ``cu_seq_lens_q``/``cu_seq_lens_k``, the flash-attention varlen offsets).
  On CUDA flash attention reads those offsets; on CPU transformers builds the block-diagonal mask of the whole
  flattened row (4,000 x 4,000 for four 1,024-token rows) and sdpa computes every entry of it, 16x the work of the
  conversations themselves, in its masked (non-flash) path. Here each conversation is attended alone with the
  causal flash kernel instead, which computes exactly what the block mask allows (tests/model/test_cpu_attention.py
  compares the two). Measured on one layer's flattened row of six conversations (3,994 tokens, 8 heads x 16):
  forward + backward 700 ms masked against 143-175 ms segment by segment (``benchmarks/sft_throughput.py``).

Registered through transformers' ``AttentionInterface`` under its own name (with sdpa's mask) and switched on for
the length of a training run only; the name is never saved: transformers drops the attention implementation from
a checkpoint's config.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "smolbook_cpu_training_attention"


def _segments(query: torch.Tensor, key: torch.Tensor, kwargs: dict[str, Any]) -> list[tuple[int, int]] | None:
    """The conversations of a padding-free row, as (start, end) offsets, when the batch is one such row."""
    cu_q, cu_k = kwargs.get("cu_seq_lens_q"), kwargs.get("cu_seq_lens_k")
    if cu_q is None or cu_k is None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        return None
    if not torch.equal(cu_q, cu_k) or int(cu_q[-1]) != query.shape[2]:
        return None
    bounds = cu_q.tolist()
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def _attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
               attention_mask: torch.Tensor | None, **kwargs: Any) -> tuple[torch.Tensor, Any]:
    if query.device.type != "cpu":
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    autocast = torch.is_autocast_enabled("cpu")
    if autocast:  # autocast would cast q, k, v to bf16 for the kernel
        query, key, value = query.float(), key.float(), value.float()
    with torch.autocast("cpu", enabled=False) if autocast else nullcontext():
        segments = _segments(query, key, kwargs)
        if segments is None:
            return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
        # No mask: sdpa takes its causal flash path within each conversation (output [1, length, heads, dim]).
        outs = [sdpa_attention_forward(module, query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], None,
                                       dropout=kwargs.get("dropout", 0.0), scaling=kwargs.get("scaling"))[0]
                for a, b in segments]
        return torch.cat(outs, dim=1), None


AttentionInterface.register(NAME, _attention)
AttentionMaskInterface.register(NAME, sdpa_mask)  # the same packed-document masks as sdpa


@contextmanager
def cpu_training_attention(model: torch.nn.Module) -> Iterator[bool]:
    """For the length of the block, a CPU model with sdpa attention attends as the module's docstring says (fp32
    kernel under bf16 autocast, padding-free rows segment by segment); yields whether it does. Anything else (a GPU,
    eager attention) is left as it is."""
    config = getattr(model, "config", None)
    active = (config is not None and getattr(config, "_attn_implementation", None) == "sdpa"
              and next(model.parameters()).device.type == "cpu" and hasattr(model, "set_attn_implementation"))
    if not active:
        yield False
        return
    model.set_attn_implementation(NAME)
    try:
        yield True
    finally:
        model.set_attn_implementation("sdpa")
