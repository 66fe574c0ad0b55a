"""Learning-rate schedules as a multiplier of the peak rate: warm-up, stable, decay (WSD).

SmolLM3 pretrains with WSD: linear warm-up, a long constant phase, then a linear decay to 0
over the last ~10% of training; the long-context stages warm up and then decay with a cosine.
One function draws all of them, so the trainer (through ``torch.optim.lr_scheduler.LambdaLR``)
and notebook 00 (plotting the released configs) use the same curve.

The shape is nanotron's ``lr_scheduler_builder`` (the trainer of the released configs) and
transformers' ``get_wsd_schedule``. It is written out here (ten lines) rather than imported
because notebook 00 and the recipe tools draw it without an optimizer and without importing
transformers (seconds per import here); tests/recipe/test_schedules.py checks it step for step against
transformers' own WSD lambda.
"""
from __future__ import annotations

import math

from smolbook.errors import SmolbookError

DECAY_STYLES = ("linear", "cosine")


def _check(warmup_steps: int, total_steps: int, decay_start: int, decay_steps: int, style: str) -> None:
    if style not in DECAY_STYLES:
        raise SmolbookError(f"unknown decay style '{style}': choose one of {', '.join(DECAY_STYLES)}")
    if min(warmup_steps, total_steps, decay_start, decay_steps) < 0:
        raise SmolbookError(
            f"schedule steps must be >= 0 (warmup_steps={warmup_steps}, total_steps={total_steps}, "
            f"decay_start={decay_start}, decay_steps={decay_steps})")
    if decay_start < warmup_steps:
        raise SmolbookError(f"the decay starts (step {decay_start}) before the warm-up ends (step {warmup_steps}): "
                            "make decay_start >= warmup_steps")
    if decay_start > total_steps:
        raise SmolbookError(f"the decay starts (step {decay_start}) after training ends (step {total_steps})")


def lr_multiplier(step: int, *, warmup_steps: int, total_steps: int, decay_start: int, decay_steps: int,
                  style: str = "linear") -> float:
    """The learning rate at ``step`` as a fraction (0..1) of the peak.

    ``step`` counts optimizer updates already taken (0 before the first one, as ``LambdaLR``
    and nanotron count). Linear warm-up ``step / warmup_steps`` up to ``warmup_steps``; then 1;
    from ``decay_start`` the multiplier falls to 0 over ``decay_steps`` steps (linearly or along
    a half cosine) and stays 0 after. ``0 <= step <= total_steps``.
    """
    _check(warmup_steps, total_steps, decay_start, decay_steps, style)
    if not 0 <= step <= total_steps:
        raise SmolbookError(f"step {step} is outside the schedule (0..{total_steps})")
    if step < warmup_steps:
        return step / warmup_steps
    if step < decay_start:
        return 1.0
    if step >= decay_start + decay_steps:
        return 0.0
    progress = (step - decay_start) / decay_steps
    if style == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def wsd_for(total_steps: int, warmup_steps: int, decay_fraction: float = 0.1, style: str = "linear") -> dict:
    """Keyword arguments of :func:`lr_multiplier` for a WSD run of ``total_steps`` whose last
    ``decay_fraction`` of steps decay to 0 (the recipe's shape at any scale)."""
    if not 0.0 <= decay_fraction <= 1.0:
        raise SmolbookError(f"decay_fraction must lie in [0, 1], got {decay_fraction}")
    if total_steps < 1:
        raise SmolbookError(f"total_steps must be >= 1, got {total_steps}")
    decay_steps = round(decay_fraction * total_steps)
    kwargs = dict(warmup_steps=int(warmup_steps), total_steps=int(total_steps),
                  decay_start=int(total_steps) - decay_steps, decay_steps=decay_steps, style=style)
    _check(kwargs["warmup_steps"], kwargs["total_steps"], kwargs["decay_start"], decay_steps, style)
    return kwargs


def cosine_for(total_steps: int, warmup_steps: int) -> dict:
    """Keyword arguments of :func:`lr_multiplier` for warm-up then a cosine decay to 0 over the
    rest of training (the long-context stages' shape, and the usual baseline to WSD)."""
    if total_steps < 1:
        raise SmolbookError(f"total_steps must be >= 1, got {total_steps}")
    kwargs = dict(warmup_steps=int(warmup_steps), total_steps=int(total_steps), decay_start=int(warmup_steps),
                  decay_steps=int(total_steps) - int(warmup_steps), style="cosine")
    _check(*(kwargs[k] for k in ("warmup_steps", "total_steps", "decay_start", "decay_steps", "style")))
    return kwargs


def sample(points: int = 2000, **kwargs) -> tuple[list[int], list[float]]:
    """``points`` evenly spaced steps of a schedule (``kwargs`` as for :func:`lr_multiplier`) and the
    multiplier at each, for plotting runs far too long to evaluate step by step."""
    total = kwargs["total_steps"]
    # Always include the schedule's corners so a coarse grid does not cut them off.
    corners = {0, total, kwargs["warmup_steps"], kwargs["decay_start"], min(total, kwargs["decay_start"] + kwargs["decay_steps"])}
    steps = sorted({round(i * total / max(1, points - 1)) for i in range(points)} | corners)
    return steps, [lr_multiplier(s, **kwargs) for s in steps]
