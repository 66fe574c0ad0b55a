"""Cross-entropy over the vocabulary in chunks of positions, so a 32k-64k-token row never holds all its logits.

At 64k tokens and SmolLM3's 128,256-entry vocabulary, the logits of one row are 8.4G numbers: 16.8 GB in bf16 and
twice that once upcast for the loss, more than the rest of the 3B model's activations with checkpointing. The
recipe's own trainer (nanotron) avoids them with tensor parallelism over the vocabulary; this book has none (see
``configs/fsdp_3b.yaml``), so the loss is computed chunk by chunk from the last hidden states, each chunk's logits
recomputed in the backward pass (activation checkpointing) instead of kept.

Hand-written because no maintained library does it on every device: Liger-Kernel's fused linear cross-entropy
needs Triton (CUDA only), and transformers computes the full logits before its loss. The result equals
transformers' own loss (same label shift, ``ignore_index`` -100 and ``num_items_in_batch`` normalisation): a test
checks the loss and the gradients on CPU.
"""
from __future__ import annotations

import types
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from smolbook.errors import SmolbookError


def _chunk_loss(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy((hidden @ weight.T).float(), labels, ignore_index=-100, reduction="sum")


def chunked_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, chunk_tokens: int,
                          num_items: float | torch.Tensor | None = None) -> torch.Tensor:
    """Next-token loss of ``hidden`` (rows x positions x width) under the output matrix ``weight`` (vocab x width):
    position t predicts ``labels[t + 1]``; summed over the tokens that have a label and divided by ``num_items``
    (default: their count), as transformers' causal-LM loss with ``num_items_in_batch``."""
    if chunk_tokens < 1:
        raise SmolbookError(f"chunked loss: chunk_tokens must be >= 1, got {chunk_tokens}")
    h = hidden[:, :-1].reshape(-1, hidden.size(-1))
    y = labels[:, 1:].reshape(-1).to(h.device)
    total = h.new_zeros((), dtype=torch.float32)
    for a in range(0, h.size(0), chunk_tokens):
        sl = slice(a, a + chunk_tokens)
        if torch.is_grad_enabled():
            total = total + checkpoint(_chunk_loss, h[sl], weight, y[sl], use_reentrant=False)
        else:
            total = total + _chunk_loss(h[sl], weight, y[sl])
    if num_items is None:
        num_items = (y != -100).sum().clamp(min=1)
    return total / num_items


def use_chunked_loss(model: Any, chunk_tokens: int) -> Any:
    """Make ``model`` (a transformers causal LM) compute its loss with :func:`chunked_cross_entropy` whenever it is
    called with ``labels``; without labels it is unchanged. The override is an attribute of this instance (set
    before FSDP wraps it, so the chunks run inside the root unit's forward with its parameters gathered); the class,
    its config and its saved checkpoints stay plain transformers."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    if not hasattr(model, "model") or not hasattr(model, "lm_head"):
        raise SmolbookError(f"chunked loss: {type(model).__name__} is not a causal LM with .model and .lm_head")
    plain = type(model).forward

    def forward(self: Any, input_ids: Any = None, labels: Any = None, num_items_in_batch: Any = None,
                **kwargs: Any) -> Any:
        if labels is None:
            return plain(self, input_ids=input_ids, **kwargs)
        kwargs.pop("logits_to_keep", None)
        out = self.model(input_ids=input_ids, **kwargs)
        loss = chunked_cross_entropy(out.last_hidden_state, self.lm_head.weight, labels, chunk_tokens,
                                     num_items_in_batch)
        return CausalLMOutputWithPast(loss=loss, past_key_values=out.past_key_values)

    model.forward = types.MethodType(forward, model)
    return model
