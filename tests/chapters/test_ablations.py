"""The ablation library: parameter matching, the norm measures, and smoke-sized runs of arms (the shared recipe arm)."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from smolbook import ablations as abl
from smolbook import fingerprint
from smolbook.chapter import registered_checkpoints
from smolbook.errors import SmolbookError
from smolbook.model import count_parameters, smollm3_config
from smolbook.parallel import worker_count
from smolbook.scales import get_scale


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


def test_run_values_at_a_step_and_the_decay_bound():
    rows = [{"kind": "eval", "step": s, "valid_loss": v} for s, v in ((0, 5.0), (50, 3.0), (100, 2.5))]
    rows += [{"kind": "train", "step": s, "lr": 0.01} for s in range(1, 101)]
    run = abl.Run("a", 0, None, 1, 1, 100, 1, 1.0, rows)
    assert run.at("valid_loss", 50) == 3.0 and run.last("valid_loss") == 2.5
    with pytest.raises(SmolbookError, match="not at 60"):
        run.at("valid_loss", 60)
    # 100 steps at lr 0.01 with decay 0.1: the weights can shrink by at most 1 - 0.999**100
    assert abl.decay_shrink_bound(run, 0.1) == pytest.approx(1 - 0.999 ** 100)


# -- a real (smoke-sized) ablation -----------------------------------------------------------------------------
def test_run_arms_is_seeded_and_records_what_the_chapters_need(smoke_out, tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        arms = [abl.Arm("A", model={"num_key_value_heads": 4}),
                abl.Arm("A again", model={"num_key_value_heads": 4}),
                abl.Arm("B", model={"num_key_value_heads": 1}, match_params_to="A", recipe=True)]
        seen = []
        ab = abl.run_arms("t", arms, "smoke", tmp_path, smoke_out, seeds=[0], tokens=3 * 4 * 64,
                          after=abl.after_key("x")(lambda model, run: seen.append(run.arm) or {"answer": 42}),
                          progress=False)
    finally:
        torch.set_num_threads(before)
    assert [(r.arm, r.seed, r.steps) for r in ab.runs] == [("A", 0, 3), ("A again", 0, 3), ("B", 0, 3)]
    assert seen == ["A", "A again", "B"] and ab.runs[0].final == {"x": {"answer": 42}}
    a, a2, b = ab.runs
    assert a.last("valid_loss") == a2.last("valid_loss")  # same arm, same seed: the same run
    assert a.last("valid_loss") != b.last("valid_loss")
    assert a.series("embedding_norm", "eval")[0] == [0, 3] and 0 <= a.last("acc/cloze") <= 1
    assert a.kv_cache_bytes_per_token == 4 * b.kv_cache_bytes_per_token
    assert abs(b.parameters - a.parameters) <= 3 * 32 * 2
    table = abl.setup_table(ab)
    assert "| B (recipe) |" in table and "MLP resized to match A's parameters" in table
    assert ab.summary("valid_loss")["A"]["n"] == 1
    assert (a.output_dir / abl.SUMMARY_FILE).is_file() and (a.output_dir / "spec.yaml").is_file()
    # every run is registered with its arm and seed, the way a sweep registers any run of the book
    entries = {(e["chapter"], e["name"]): e for e in registered_checkpoints(tmp_path)}
    assert entries["t", "A-again-seed0"]["arm"] == "A again" and entries["t", "A-again-seed0"]["seed"] == 0
    assert not any(e["final"] for e in entries.values())
    with pytest.raises(SmolbookError, match="no arm called"):
        ab.values("C", "valid_loss")
    with pytest.raises(SmolbookError, match="distinct names"):
        abl.run_arms("t", [arms[0], arms[0]], "smoke", tmp_path, smoke_out, progress=False)
    with pytest.raises(SmolbookError, match="stream may set doc_masking"):
        abl.run_arms("t", [abl.Arm("X", stream={"doc_mask": False})], "smoke", tmp_path, smoke_out, progress=False)
    with pytest.raises(SmolbookError, match="pass prepare"):
        abl.run_arms("t", arms, "smoke", tmp_path / "elsewhere", smoke_out, progress=False)


def test_the_recipe_arm_is_trained_once_and_shared(smoke_out, tmp_path, monkeypatch):
    calls = []
    probe = abl.after_key("probe")(lambda model, run: calls.append(run.arm) or {"n": len(calls)})
    recipe = abl.Arm("recipe", recipe=True)
    assert recipe.shared and not abl.Arm("B", model={"num_key_value_heads": 1}, recipe=True).shared
    kw = dict(seeds=[0], tokens=2 * 4 * 64, progress=False)
    one = abl.run_arms("first", [abl.Arm("other", stream={"doc_masking": False}), recipe], "smoke", tmp_path,
                       smoke_out, **kw)
    two = abl.run_arms("second", [recipe], "smoke", tmp_path, smoke_out, after=probe, **kw)
    three = abl.run_arms("third", [recipe], "smoke", tmp_path, smoke_out, after=probe, **kw)
    r1, r2, r3 = one.arm_runs("recipe")[0], two.runs[0], three.runs[0]
    assert r1.output_dir == r2.output_dir == tmp_path / "ablations" / "recipe-seed0"
    assert r1.metrics == r2.metrics == r3.metrics
    assert calls == ["recipe"] and r3.final["probe"] == {"n": 1}  # evaluated once, from its checkpoint
    # A change to the trainer's code is a change to every run it trains: the shared arm retrains (and is evaluated
    # again) rather than being read back from the code before the edit. The fingerprint reads a copy of the library
    # here, in which a trainer constant is edited.
    copy = tmp_path / "library"
    shutil.copytree(fingerprint.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(fingerprint, "PACKAGE_DIR", copy)
    four = abl.run_arms("fourth", [recipe], "smoke", tmp_path, smoke_out, after=probe, **kw)
    assert calls == ["recipe"] and four.runs[0].final["probe"] == {"n": 1}  # the same bytes: still done
    stamp = lambda: json.loads((r1.output_dir / "run.json").read_text())["fingerprint"]  # noqa: E731
    before = stamp()
    loop = copy / "train" / "loop.py"
    assert "flush_s" in loop.read_text()
    loop.write_text(loop.read_text().replace("flush_s", "flush_seconds"))
    five = abl.run_arms("fifth", [recipe], "smoke", tmp_path, smoke_out, after=probe, **kw)
    assert calls == ["recipe", "recipe"] and five.runs[0].final["probe"] == {"n": 2}
    assert five.runs[0].output_dir == r1.output_dir and stamp() != before
    # other settings are another run, not a stale reuse
    six = abl.run_arms("sixth", [recipe], "smoke", tmp_path, smoke_out, seeds=[0], tokens=3 * 4 * 64,
                       progress=False)
    assert six.runs[0].steps == 3



def test_runs_train_side_by_side_in_worker_processes(smoke_out, tmp_path):
    """Two worker processes train the same runs as this process does, into the same folders and records."""
    arms = [abl.Arm("A", model={"num_key_value_heads": 4}), abl.Arm("B", recipe=True)]
    kw = dict(seeds=[0, 1], tokens=3 * 4 * 64, progress=False)
    here = abl.run_arms("here", arms, "smoke", tmp_path, smoke_out, workers=1, **kw)
    for r in here.runs:  # the same specs again, trained apart this time
        shutil.rmtree(r.output_dir)
    apart = abl.run_arms("here", arms, "smoke", tmp_path, smoke_out, workers=2, **kw)
    assert [(r.arm, r.seed, r.steps) for r in apart.runs] == [(r.arm, r.seed, r.steps) for r in here.runs]
    for a, b in zip(here.runs, apart.runs):
        assert b.seconds > 0 and (b.output_dir / "final" / "config.json").is_file()
        assert json.loads((b.output_dir / abl.SUMMARY_FILE).read_text())["steps"] == 3
        assert b.series("loss")[0] == [1, 2, 3]
        # another thread count rounds bf16 matmuls differently: the same training, not the same bits
        assert b.last("valid_loss") == pytest.approx(a.last("valid_loss"), abs=0.02)
    assert here.runs[0].last("valid_loss") != here.runs[1].last("valid_loss")


def test_worker_plan():
    """The one worker rule (smolbook.parallel) that the sweep applies to an ablation's runs, per scale."""
    plan = lambda scale, n, workers=None: worker_count(get_scale(scale).device, n, workers)  # noqa: E731
    assert plan("smoke", 5, workers=3) == 3 and plan("smoke", 2, workers=3) == 2
    assert plan("gpu", 6) == 1  # a GPU trains one run at a time, here
    assert plan("tiny", 6) == min(torch.get_num_threads(), 6)
    with pytest.raises(SmolbookError, match="at least 1"):
        plan("tiny", 3, workers=0)


def test_arm_specs_are_run_specs_of_the_one_training_path(smoke_data, tmp_path):
    """Each arm x seed is a plain RunSpec: the arm's switches land in the model config, the optimizer and the data,
    the learning rate stays constant after warm-up, and the shared recipe arm has one name in every chapter."""
    from smolbook.train.run import resolve_config

    arms = [abl.Arm("embedding decayed", train={"embedding_weight_decay": True}),
            abl.Arm("MHA", model={"num_key_value_heads": 4}, match_params_to="GQA", stream={"doc_masking": False}),
            abl.Arm("GQA", recipe=True)]
    specs = abl.arm_specs("06_embedding_wd", arms, "smoke", tmp_path, smoke_data, seeds=[0, 1], tokens=16 * 4 * 64)
    assert sorted(specs) == sorted((a.name, k) for a in arms for k in (0, 1))
    wd, mha, recipe = specs["embedding decayed", 1], specs["MHA", 0], specs["GQA", 1]
    assert wd.run_dir == tmp_path / "06_embedding_wd" / "embedding-decayed-seed1" and wd.seed == 1
    assert recipe.run_dir == tmp_path / "ablations" / "recipe-seed1" and not recipe.final
    config = resolve_config(wd)
    assert config.embedding_weight_decay and config.decay_fraction == 0.0 and config.steps == 16
    assert not resolve_config(recipe).embedding_weight_decay and wd.evaluation == "ablation"
    assert mha.data.doc_masking is False and mha.data.stages == ["stable"]
    assert mha.model.config["intermediate_size"] < smollm3_config("smoke").intermediate_size  # MHA pays in MLP
    with pytest.raises(SmolbookError, match="not a multiple of the evaluation interval"):
        abl.arm_specs("x", arms, "smoke", tmp_path, smoke_data, seeds=[0], tokens=17 * 4 * 64)


# -- what the chapters record from an ablation -----------------------------------------------------------------
def _arm_run(arm: str, seed: int, losses: list[float], grad_norms: list[float]) -> abl.Run:
    rows = [{"kind": "eval", "step": 10 * (i + 1), "valid_loss": v} for i, v in enumerate(losses)]
    rows += [{"kind": "train", "step": i + 1, "grad_norm": g} for i, g in enumerate(grad_norms)]
    return abl.Run(arm, seed, None, 1, 1, 10 * len(losses), 1, 1.0, rows)


def test_arm_numbers_name_round_and_note_each_arms_mean():
    from smolbook.scales import get_scale

    ab = abl.Ablation("x", get_scale("smoke"), [abl.Arm("off"), abl.Arm("on", recipe=True)],
                      [_arm_run("off", 0, [3.0, 2.0], [9.0, 1.0, 2.0]), _arm_run("off", 1, [3.0, 2.5], [1.0, 1.0, 1.0]),
                       _arm_run("on", 0, [3.0, 1.123456], [5.0, 1.0, 3.0])])
    peak = abl.grad_norm_peak(after_step=1)  # step 1 is warm-up: its spike of 9 is left out
    assert ab.values("off", peak) == [2.0, 1.0]
    rows = abl.arm_numbers(ab, {"final validation loss": ("valid_loss", "nats/token"), "peak": (peak, "")})
    assert [r["name"] for r in rows] == ["final validation loss, off", "peak, off", "final validation loss, on", "peak, on"]
    assert rows[0] == {"name": "final validation loss, off", "value": 2.25, "unit": "nats/token",
                       "note": "2 seed(s), spread 0.5"}
    assert rows[2]["value"] == 1.1235 and rows[2]["note"] == "1 seed(s), spread None"
    at_10 = abl.arm_numbers(ab, {"loss at 10": ("valid_loss", "")}, step=10, note="{n} seeds")
    assert [r["value"] for r in at_10] == [3.0, 3.0] and at_10[0]["note"] == "2 seeds"
    assert ab.mean("off", "valid_loss") == pytest.approx(2.25)


def test_arm_numbers_leave_out_a_probe_the_context_is_too_short_for():
    from smolbook.scales import get_scale

    ab = abl.Ablation("x", get_scale("smoke"), [abl.Arm("a")], [_arm_run("a", 0, [2.0], [1.0])])
    metrics = {"loss": ("valid_loss", ""), "probe": (lambda r: float("nan"), "")}
    assert [r["name"] for r in abl.arm_numbers(ab, metrics, skip_nan=True)] == ["loss, a"]
    assert [r["name"] for r in abl.arm_numbers(ab, metrics)] == ["loss, a", "probe, a"]


def test_ledger_verdicts_group_the_blogs_statements():
    # chapter 00's verdicts: one per group, failing when any statement of the group differs from the configs
    from smolbook.recipe import LedgerRow, ledger
    from smolbook.recipe_plots import ledger_verdicts

    rows = [LedgerRow("beta2", "0.95", "0.95", "a.yaml", True, "compared", "optimizer"),
            LedgerRow("lr", "2e-4", "2e-4 (peak)", "a.yaml", True, "compared", "optimizer"),
            LedgerRow("theta", "1.5M", "2M (lc-32k)", "b.yaml", False, "compared", "long context"),
            LedgerRow("seq", "-", "4096", "a.yaml", False, "config-internal", "optimizer")]
    opt, lc = ledger_verdicts(rows)
    assert opt.claim == "The blog's optimizer statements match the released configs (2 checked)" and opt.agrees
    assert opt.measured == "all agree: beta2 blog 0.95 vs configs 0.95; lr blog 2e-4 vs configs 2e-4"
    assert not lc.agrees and lc.measured == "differs: theta blog 1.5M vs configs 2M"
    assert len(ledger_verdicts(ledger())) == len({r.group for r in ledger() if r.kind == "compared"})
