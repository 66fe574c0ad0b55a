"""The WSD / cosine learning-rate multiplier: shape, the released configs' numbers, errors."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smolbook.errors import SmolbookError
from smolbook.recipe import load_recipe
from smolbook.schedules import cosine_for, lr_multiplier, wsd_for

KW = dict(warmup_steps=10, total_steps=100, decay_start=80, decay_steps=20)


def test_warmup_is_linear_from_zero():
    assert lr_multiplier(0, **KW) == 0.0
    assert lr_multiplier(5, **KW) == pytest.approx(0.5)
    assert lr_multiplier(10, **KW) == 1.0


def test_stable_then_linear_decay_to_zero():
    assert all(lr_multiplier(s, **KW) == 1.0 for s in range(10, 81))
    assert lr_multiplier(90, **KW) == pytest.approx(0.5)
    assert lr_multiplier(99, **KW) == pytest.approx(1 / 20)
    assert lr_multiplier(100, **KW) == 0.0


def test_cosine_decay_halfway_is_half_and_ends_at_zero():
    kw = dict(KW, style="cosine")
    assert lr_multiplier(80, **kw) == 1.0
    assert lr_multiplier(90, **kw) == pytest.approx(0.5)
    assert lr_multiplier(85, **kw) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_multiplier(100, **kw) == 0.0


def test_replays_the_released_pretraining_schedule():
    sch = load_recipe().runs["pretraining"].schedule
    kw = sch.schedule_kwargs()
    assert kw == dict(warmup_steps=2000, total_steps=4_720_000, decay_start=4_198_001, decay_steps=522_000,
                      style="linear")
    assert lr_multiplier(1000, **kw) == pytest.approx(0.5)
    assert lr_multiplier(4_198_000, **kw) == 1.0
    assert lr_multiplier(4_198_001 + 261_000, **kw) == pytest.approx(0.5)
    # nanotron's last step (4,720,000) still trains at 1/522,000 of the peak.
    assert lr_multiplier(4_720_000, **kw) == pytest.approx(1 / 522_000)


def test_replays_the_long_context_cosine():
    kw = load_recipe().runs["lc-32k"].schedule.schedule_kwargs()
    assert kw["style"] == "cosine"
    assert lr_multiplier(500, **kw) == pytest.approx(0.5)
    assert lr_multiplier(1000, **kw) == 1.0
    assert lr_multiplier(1000 + 9500, **kw) == pytest.approx(0.5)
    assert lr_multiplier(20_000, **kw) == 0.0


def test_matches_transformers_wsd_lambda():
    """The same curve as transformers' own WSD schedule (which the trainer could use instead)."""
    from transformers.optimization import _get_wsd_scheduler_lambda

    for style in ("linear", "cosine"):
        for step in range(0, 101):
            ref = _get_wsd_scheduler_lambda(step, num_warmup_steps=10, num_stable_steps=70, num_decay_steps=20,
                                            warmup_type="linear", decay_type=style, min_lr_ratio=0.0, num_cycles=0.5)
            assert lr_multiplier(step, **KW, style=style) == pytest.approx(ref, abs=1e-12), (style, step)


def test_wraps_in_lambdalr():
    import torch

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    kw = wsd_for(total_steps=20, warmup_steps=4, decay_fraction=0.25)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_multiplier(s, **kw))
    seen = []
    for _ in range(20):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen[0] == 0.0 and seen[4] == pytest.approx(0.1) and seen[15] == pytest.approx(0.1)
    assert seen[19] == pytest.approx(0.1 / 5)


def test_wsd_for_puts_the_decay_at_the_end():
    kw = wsd_for(total_steps=1000, warmup_steps=50, decay_fraction=0.1)
    assert kw == dict(warmup_steps=50, total_steps=1000, decay_start=900, decay_steps=100, style="linear")
    assert lr_multiplier(899, **kw) == 1.0 and lr_multiplier(1000, **kw) == 0.0
    none = wsd_for(total_steps=10, warmup_steps=2, decay_fraction=0.0)
    assert lr_multiplier(9, **none) == 1.0


def test_cosine_for_decays_over_everything_after_warmup():
    kw = cosine_for(total_steps=110, warmup_steps=10)
    assert kw["decay_start"] == 10 and kw["decay_steps"] == 100
    assert lr_multiplier(60, **kw) == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(KW, style="exponential"), "unknown decay style"),
    (dict(KW, decay_start=5), "before the warm-up ends"),
    (dict(KW, decay_start=101), "after training ends"),
    (dict(KW, warmup_steps=-1), ">= 0"),
])
def test_bad_schedules_are_clear_errors(kwargs, match):
    with pytest.raises(SmolbookError, match=match):
        lr_multiplier(0, **kwargs)


def test_steps_outside_the_schedule_are_errors():
    with pytest.raises(SmolbookError, match="outside the schedule"):
        lr_multiplier(101, **KW)
    with pytest.raises(SmolbookError, match="outside the schedule"):
        lr_multiplier(-1, **KW)
    with pytest.raises(SmolbookError, match="decay_fraction"):
        wsd_for(100, 10, decay_fraction=1.5)
    with pytest.raises(SmolbookError, match="before the warm-up"):
        wsd_for(100, 95, decay_fraction=0.1)


@settings(max_examples=60, deadline=None)
@given(total=st.integers(1, 5000), warm=st.floats(0, 0.5), frac=st.floats(0, 0.5),
       style=st.sampled_from(["linear", "cosine"]))
def test_shape_properties(total, warm, frac, style):
    warmup = int(warm * total)
    try:
        kw = wsd_for(total, warmup, decay_fraction=frac, style=style)
    except SmolbookError:
        return  # warm-up overlapping the decay is rejected, as tested above
    values = [lr_multiplier(s, **kw) for s in range(total + 1)]
    assert all(0.0 <= v <= 1.0 for v in values)
    up, down = values[: warmup + 1], values[warmup:]
    assert all(a <= b for a, b in zip(up, up[1:]))
    assert all(a >= b - 1e-12 for a, b in zip(down, down[1:]))
    if kw["decay_steps"]:
        assert values[-1] == 0.0
