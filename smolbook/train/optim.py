"""AdamW with the recipe's weight-decay groups, and the WSD / cosine learning-rate schedule."""
from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR

from smolbook.schedules import cosine_for, lr_multiplier, wsd_for
from smolbook.train.config import TrainConfig


def parameter_groups(model: torch.nn.Module, config: TrainConfig) -> list[dict]:
    """Two AdamW groups: decayed, and not decayed (the token embedding unless ``embedding_weight_decay``).

    The recipe's ``weight_decay_exclude_named_params`` is only ``.*token_embedding.*`` (stage1_8T.yaml), so RMSNorm
    weights *are* decayed here, as in the recipe (many other recipes exclude norms and biases; this one does not).
    With tied embeddings the excluded tensor is also the output projection. The embedding is found by identity
    (``get_input_embeddings``) rather than by name: transformers calls it ``model.embed_tokens``.
    """
    embedding = model.get_input_embeddings().weight
    decay, no_decay = [], []
    for p in model.parameters():  # parameters() yields a tied tensor once
        if not p.requires_grad:
            continue
        (no_decay if (p is embedding and not config.embedding_weight_decay) else decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay, "name": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    return groups


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW(β1, β2, eps) over :func:`parameter_groups`; fused kernels on CUDA as in the recipe."""
    on_cuda = next(model.parameters()).is_cuda
    return torch.optim.AdamW(parameter_groups(model, config), lr=config.learning_rate, betas=config.betas,
                             eps=config.eps, fused=True if on_cuda else None)


def schedule_kwargs(config: TrainConfig) -> dict:
    """``lr_multiplier`` keyword arguments: WSD (decay over the last ``decay_fraction``) or cosine after warm-up."""
    if config.schedule == "wsd":
        return wsd_for(config.steps, config.warmup_steps, decay_fraction=config.decay_fraction, style="linear")
    return cosine_for(config.steps, config.warmup_steps)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> LambdaLR:
    """``LambdaLR`` over smolbook.schedules.lr_multiplier (the one schedule implementation of the book)."""
    kw = schedule_kwargs(config)
    return LambdaLR(optimizer, lambda step: lr_multiplier(step, **kw))
