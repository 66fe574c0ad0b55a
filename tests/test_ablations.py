"""The ablation library: the verdict rule on known numbers, parameter matching, and a smoke-sized run of arms."""
from __future__ import annotations

import pytest
import torch

from smolbook import ablations as abl
from smolbook.errors import SmolbookError
from smolbook.model import count_parameters, smollm3_config


# -- the verdict rule ------------------------------------------------------------------------------------------
def test_no_worse_claim_holds_within_tolerance_and_differs_beyond():
    # losses (lower is better), compared seed by seed: differences -0.04, -0.04 -> spread 0, tolerance 1% of 3.01
    d = abl.decide([3.00, 3.02], [3.04, 3.06], claim="no_worse")
    assert d.status == "differs" and d.effect == pytest.approx(-0.04) and d.tolerance == pytest.approx(0.0301)
    assert abl.decide([3.00, 3.02], [3.03, 3.05], claim="no_worse").status == "holds"  # -0.03 is within 1%
    # differences -0.01, +0.01 -> effect 0, spread 0.02, tolerance 0.04
    d = abl.decide([3.00, 3.02], [3.01, 3.01], claim="no_worse")
    assert d.status == "holds" and d.tolerance == pytest.approx(0.04) and d.spread == pytest.approx(0.02)
    d = abl.decide([3.00, 3.02], [3.10, 3.12], claim="no_worse")
    assert d.status == "differs" and d.effect == pytest.approx(-0.10)
    assert abl.decide([3.00, 3.02], [2.80, 2.81]).status == "holds"  # better is fine for "no worse"


def test_pairing_cancels_what_seeds_share():
    # seed 1 is worse for both arms by 0.3: unpaired this is noise, paired it cancels
    d = abl.decide([3.0, 3.3], [2.9, 3.2], claim="better")
    assert d.status == "holds" and d.spread == pytest.approx(0.0) and d.effect == pytest.approx(0.1)
    with pytest.raises(SmolbookError, match="seed by seed"):
        abl.decide([3.0, 3.1], [3.0])


def test_relative_floor_applies_when_seeds_agree():
    assert abl.decide([2.0, 2.0], [2.015, 2.015]).status == "holds"
    assert abl.decide([2.0, 2.0], [2.03, 2.03]).status == "differs"


def test_better_claim_needs_an_effect_beyond_the_noise():
    assert abl.decide([2.0, 2.01], [1.8, 1.81], claim="better").status == "holds"
    d = abl.decide([2.0, 2.01], [1.99, 2.0], claim="better")
    assert d.status == "inconclusive" and "within the tolerance" in d.reason
    assert abl.decide([2.0, 2.01], [2.3, 2.31], claim="better").status == "differs"
    # the spread of the differences swamps the effect
    assert abl.decide([2.0, 2.0], [1.7, 2.2], claim="better").status == "inconclusive"
    # accuracies, higher is better, absolute floor
    assert abl.decide([0.10, 0.11], [0.30, 0.31], claim="better", higher_is_better=True, abs_tol=0.02).status == "holds"
    assert abl.decide([0.10, 0.11], [0.11, 0.12], claim="better", higher_is_better=True, abs_tol=0.02).status == "inconclusive"


def test_inconclusive_cases():
    assert "fewer than 2 seeds" in abl.decide([3.0], [3.0]).reason
    assert abl.decide([3.0], [2.0]).status == "inconclusive"
    d = abl.decide([0.1, 0.1], [0.5, 0.5], claim="better", higher_is_better=True, at_chance=True)
    assert d.status == "inconclusive" and "chance" in d.reason
    d = abl.decide([3.0, 3.0], [3.0, 3.3])  # per-seed differences 0 and -0.3: 2 x spread = 20% of the baseline
    assert d.status == "inconclusive" and "too noisy" in d.reason
    with pytest.raises(SmolbookError):
        abl.decide([1.0], [1.0], claim="maybe")


def test_measured_line_and_combine():
    d = abl.decide([3.00, 3.02], [3.01, 3.01])
    line = d.measured("loss", "base", "recipe")
    assert "recipe 3.0100" in line and "base 3.0100" in line and "seed spread 0.0200" in line
    assert "effect +0.0000" in line and "tolerance 0.0400" in line
    assert abl.combine(["holds", "holds"]) == "holds"
    assert abl.combine(["holds", "inconclusive"]) == "inconclusive"
    assert abl.combine(["holds", "differs", "inconclusive"]) == "differs"
    assert abl.combine([]) == "inconclusive"


# -- pieces ---------------------------------------------------------------------------------------------------
def test_match_parameters_widens_the_mlp_to_the_target():
    mha = smollm3_config("tiny", num_key_value_heads=8)
    mqa = smollm3_config("tiny", num_key_value_heads=1)
    target = count_parameters(mha)
    assert count_parameters(mqa) < target
    matched = abl.match_parameters(mqa, target)
    step = 3 * mqa.hidden_size * mqa.num_hidden_layers
    assert abs(count_parameters(matched) - target) <= step / 2
    assert matched.intermediate_size > mqa.intermediate_size and matched.num_key_value_heads == 1
    assert mqa.intermediate_size == smollm3_config("tiny").intermediate_size  # the original is untouched


def _run(norms: list[float]) -> abl.Run:
    steps = [10 * i for i in range(len(norms))]
    rows = [{"kind": "eval", "step": s, "embedding_norm": n} for s, n in zip(steps, norms)]
    return abl.Run("a", 0, None, 1, 1, steps[-1], 1, 1.0, rows)


def test_embedding_norm_drift():
    assert abl.embedding_norm_drift(_run([1.0, 2.0, 2.0, 2.0, 2.2])) == pytest.approx(0.1)
    assert abl.embedding_norm_drift(_run([1.0, 1.0, 1.0])) == 0.0
    with pytest.raises(SmolbookError):
        abl.embedding_norm_drift(_run([1.0]))


def test_eval_schedule_matches_the_trainer():
    assert abl._eval_steps(10, 4) == [0, 4, 8, 10]
    assert abl._eval_steps(8, 4) == [0, 4, 8]


# -- a real (smoke-sized) ablation -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    from smolbook.data import prepare

    return prepare("smoke", tmp_path_factory.mktemp("abl"), progress=False)


def test_run_arms_is_seeded_and_records_what_the_chapters_need(smoke_data, tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        arms = [abl.Arm("A", model={"num_key_value_heads": 4}),
                abl.Arm("A again", model={"num_key_value_heads": 4}),
                abl.Arm("B", model={"num_key_value_heads": 1}, match_params_to="A", recipe=True)]
        seen = []
        ab = abl.run_arms("t", arms, "smoke", tmp_path, smoke_data, seeds=[0], tokens=3 * 4 * 64, norm_every=1,
                          after=lambda model, run: seen.append(run.arm) or {"answer": 42}, progress=False)
    finally:
        torch.set_num_threads(before)
    assert [(r.arm, r.seed, r.steps) for r in ab.runs] == [("A", 0, 3), ("A again", 0, 3), ("B", 0, 3)]
    assert seen == ["A", "A again", "B"] and ab.runs[0].final == {"answer": 42}
    a, a2, b = ab.runs
    assert a.last("valid_loss") == a2.last("valid_loss")  # same arm, same seed: the same run
    assert a.last("valid_loss") != b.last("valid_loss")
    assert a.series("embedding_norm", "eval")[0] == [0, 1, 2, 3]
    assert a.kv_cache_bytes_per_token == 4 * b.kv_cache_bytes_per_token
    assert abs(b.parameters - a.parameters) <= 3 * 32 * 2
    table = abl.setup_table(ab)
    assert "| B (recipe) |" in table and "MLP widened to match A" in table
    assert ab.summary("valid_loss")["A"]["n"] == 1
    assert (a.output_dir / "run.json").is_file() and (a.output_dir / "metrics.jsonl").is_file()
    with pytest.raises(SmolbookError, match="no arm called"):
        ab.values("C", "valid_loss")
    with pytest.raises(SmolbookError, match="distinct names"):
        abl.run_arms("t", [arms[0], arms[0]], "smoke", tmp_path, smoke_data, progress=False)
