"""Arms x seeds through smolbook.train.sweep: the one training path, side by side in worker processes on CPU."""
from __future__ import annotations

import json

import pytest

from smolbook.errors import SmolbookError
from smolbook.train import BudgetSpec, RunSpec, sweep

pytestmark = pytest.mark.slow


def _spec(out, name, seed, **model):
    from smolbook.train import ModelSpec

    return RunSpec(chapter="99_sweep", name=name, scale="smoke", output_dir=str(out), seed=seed, evaluate=False,
                   budget=BudgetSpec(steps=3), model=ModelSpec(config=model))


def test_side_by_side_runs_are_registered_with_arm_and_seed_and_not_retrained(tmp_path):
    out = tmp_path / "smoke"
    runs = {("gqa", 0): _spec(out, "gqa-seed0", 0), ("mha", 0): _spec(out, "mha-seed0", 0, num_key_value_heads=4)}
    done = sweep(runs, workers=2, progress=False)
    assert [(r.arm, r.seed) for r in done.values()] == [("gqa", 0), ("mha", 0)]
    for r in done.values():
        assert (r.checkpoint / "config.json").is_file() and (r.spec.run_dir / "spec.yaml").is_file()
    entries = {e["name"]: e for e in json.loads((out / "checkpoints.json").read_text())["checkpoints"]}
    assert entries["gqa-seed0"]["arm"] == "gqa" and entries["mha-seed0"]["seed"] == 0
    heads = json.loads((done["mha", 0].checkpoint / "config.json").read_text())["num_key_value_heads"]
    assert heads == 4  # each worker trained its own spec
    stamp = (done["gqa", 0].checkpoint / "model.safetensors").stat().st_mtime_ns
    again = sweep(runs, workers=1, progress=False)  # the same fingerprint: read back, not retrained
    assert (again["gqa", 0].checkpoint / "model.safetensors").stat().st_mtime_ns == stamp
    runs["mha", 1] = _spec(out, "mha-seed1", 1, num_key_value_heads=4)  # one new run beside two done ones
    mixed = sweep(runs, workers=2, progress=False)
    assert (mixed["gqa", 0].checkpoint / "model.safetensors").stat().st_mtime_ns == stamp
    assert (mixed["mha", 1].checkpoint / "config.json").is_file() and list(mixed) == list(runs)


def test_a_sweep_refuses_keys_that_do_not_match_their_runs(tmp_path):
    with pytest.raises(SmolbookError, match="key it by its seed"):
        sweep({("a", 1): _spec(tmp_path, "a", 0)}, progress=False)
    with pytest.raises(SmolbookError, match="share a folder"):
        sweep({("a", 0): _spec(tmp_path, "x", 0), ("b", 0): _spec(tmp_path, "x", 0)}, progress=False)
