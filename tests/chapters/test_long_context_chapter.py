"""The readings chapters 07 and 08 build their checks and tables from: the WSD shape and stage shares read back from
a run's logged metrics (07's implementation checks), and the long-context report table and recipe layout (08)."""
from __future__ import annotations

from pathlib import Path

import pytest

from smolbook.extension import recipe_parallelism, report_rows
from smolbook.train import TrainResult
from smolbook.train.plots import read_wsd, stage_shares, stage_steps


def _run(lrs: list[float], stages: list[str]) -> TrainResult:
    rows = [{"kind": "train", "step": i + 1, "lr": lr, "stage": st} for i, (lr, st) in enumerate(zip(lrs, stages))]
    return TrainResult(metrics=rows, checkpoint=None, output_dir=Path("."))


# 20 steps: warm-up over 2, the peak through the decay stage's first step (index 15), then linear to 0.2
LRS = [0.5] + [1.0] * 15 + [0.8, 0.6, 0.4, 0.2]
STAGES = ["stable"] * 12 + ["stable-2"] * 3 + ["decay"] * 5


def test_stage_shares_are_read_from_the_logged_stages():
    run = _run(LRS, STAGES)
    assert stage_steps(run) == {"stable": 12, "stable-2": 3, "decay": 5}
    assert stage_shares(run) == pytest.approx({"stable": 0.6, "stable-2": 0.15, "decay": 0.25})


def test_wsd_reading_follows_the_decay_stage():
    wsd = read_wsd(_run(LRS, STAGES), warmup_steps=2)
    assert (wsd.peak, wsd.decay_start, wsd.decay_stage_start, wsd.final_lr) == (1.0, 15, 15, 0.2)
    assert wsd.flat and wsd.linear_to_zero and wsd.follows_stages
    assert wsd.decay_fraction == pytest.approx(0.25)
    assert wsd.describe(0.111) == ("constant at 1 from step 2 to 15; decays over the last 25.0% (configs: 11.1%) "
                                   "from step 15, where the decay stage starts at 15, to 0.2 (0 after the last update)")


def test_wsd_reading_fails_a_decay_that_misses_the_stage_or_zero():
    early_stage = ["stable"] * 12 + ["stable-2"] * 2 + ["decay"] * 6
    assert not read_wsd(_run(LRS, early_stage), warmup_steps=2).follows_stages
    stops_high = LRS[:-1] + [0.5]  # stops falling, far from 0
    assert not read_wsd(_run(stops_high, STAGES), warmup_steps=2).linear_to_zero
    dip = LRS[:8] + [0.99] + LRS[9:]  # not constant between warm-up and decay
    assert not read_wsd(_run(dip, STAGES), warmup_steps=2).follows_stages


def test_report_rows_band_the_loss_by_the_base_and_final_lengths():
    report = {"cloze": [{"length": 64, "accuracy": 0.25}, {"length": 128, "accuracy": 0.3333}],
              "loss_by_position": {"position": [10, 100, 600, 1500], "loss": [4.0, 3.0, 2.0, 5.0]}}
    (row,) = report_rows({"07": report}, base_length=64, final_length=1024)
    assert row == {"checkpoint": "07", "cloze @64": 0.25, "cloze @128": 0.333, "loss <64": 4.0,
                   "loss 64-1024": 2.5, "loss 1024-2048": 5.0}


def test_recipe_parallelism_names_both_stages_and_the_scale():
    lines = recipe_parallelism("smoke")
    assert [line.split(":")[0] for line in lines] == ["recipe lc-32k", "recipe lc-64k"]
    assert all("smoke: " in line and "no tensor or context parallelism" in line for line in lines)
