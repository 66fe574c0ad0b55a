"""Chapter 12's pieces: the mode of a preference pair reaches TRL's tokens through the template keyword; the APO and
DPO arms run through the run spec on the same pairs; task scores and curves read back from real runs."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from smolbook.alignment import (MODE_FLAGS, mode_reaches_template, pair_lengths, plot_curves,  # noqa: E402
                                preference_spec, task_score, train_arms)
from smolbook.chapter import find_checkpoint  # noqa: E402
from smolbook.errors import SmolbookError  # noqa: E402
from smolbook.train import build_data  # noqa: E402


@pytest.fixture(scope="module")
def pairs_and_tok(pretrained_run):
    from smolbook.data import prepare
    from smolbook.train.trl import chat_tokenizer

    from smolbook.train import BudgetSpec

    spec = preference_spec("12_apo", "chapter:07_pretraining", "smoke", pretrained_run, 0, "apo_zero")
    spec.budget = BudgetSpec(steps=8, rows_per_step=2)  # 16 pairs: both modes
    data = prepare("smoke", pretrained_run, progress=False)
    return build_data(spec, data), chat_tokenizer(find_checkpoint(pretrained_run, "07_pretraining"))


def _trl_prompts(pairs, tok, source):
    """The prompts as TRL's DPOTrainer tokenizes them for training (its own dataset preparation)."""
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    model = AutoModelForCausalLM.from_pretrained(source)
    args = DPOConfig(output_dir=str(source.parent / "trl-probe"), max_steps=1, per_device_train_batch_size=1,
                     use_cpu=True, report_to=[], max_length=4096, dataloader_num_workers=0, disable_tqdm=True)
    trainer = DPOTrainer(model=model, args=args, train_dataset=pairs, processing_class=tok)
    return [tok.decode(r["prompt_ids"]) for r in trainer.train_dataset]


def test_the_mode_reaches_trl_through_enable_thinking(pretrained_run, pairs_and_tok):
    pairs, tok = pairs_and_tok
    sub = pairs.select([i for m in ("think", "no_think") for i in [pairs["mode"].index(m)]])
    source = find_checkpoint(pretrained_run, "07_pretraining")
    seen = _trl_prompts(sub, tok, source)
    for mode, text in zip(sub["mode"], seen):
        assert MODE_FLAGS[mode] in text, (mode, text[-300:])
    # Without the keyword column TRL renders every pair in the template's default mode (think): the keyword, not
    # a system-prompt flag, is what carries the mode of these pairs.
    bare = _trl_prompts(sub.remove_columns("chat_template_kwargs"), tok, source)
    assert all(MODE_FLAGS["think"] in t for t in bare)
    assert mode_reaches_template(pairs, tok) == {"think": 1.0, "no_think": 1.0}


def test_pair_lengths_count_tokens_of_the_longer_side(pairs_and_tok):
    pairs, tok = pairs_and_tok
    assert len(pairs) == 16  # the budget's steps x rows: what the trainer reads
    lengths = pair_lengths(pairs.select(range(4)), tok)
    assert len(lengths) == 4 and all(50 < n < 5000 for n in lengths)


def test_apo_and_dpo_arms_through_the_run_spec(pretrained_run):
    arms = train_arms("12_apo", "chapter:07_pretraining", "smoke", pretrained_run, [0], ["apo_zero", "sigmoid"])
    (apo,), (dpo,) = arms["apo_zero"], arms["sigmoid"]
    assert apo.path != dpo.path and (apo.path / "config.json").is_file()
    assert apo.rows()[0]["loss"] == pytest.approx(1.0, abs=0.02)      # apo_zero starts at 1
    assert dpo.rows()[0]["loss"] == pytest.approx(0.693, abs=0.02)    # DPO's -log sigmoid(0)
    assert find_checkpoint(pretrained_run, "12_apo", "apo_zero-seed0") == apo.path.resolve()
    fig, axes = plt.subplots(1, 2)
    plot_curves(arms, axes)
    assert all(len(ax.lines) == 2 for ax in axes)
    plt.close(fig)
    with pytest.raises(SmolbookError, match="is not one of"):
        preference_spec("12_apo", "chapter:07_pretraining", "smoke", pretrained_run, 0, "magic")


def test_task_score_is_the_mean_over_kinds():
    assert task_score({"checkpoint": "x", "correct/math": 0.5, "correct/code": 0.0, "answer_em": 0.9}) == 0.25
    with pytest.raises(SmolbookError, match="no per-kind"):
        task_score({"checkpoint": "x", "answer_em": 0.9})


def test_task_scores_by_slice_scores_every_row_once(pretrained_run):
    from smolbook.alignment import task_scores_by_slice
    from smolbook.data.chat import build_chat_data

    rows = build_chat_data("smoke", seed=0).heldout_set(("math", "facts"), per_kind=6)
    got = task_scores_by_slice({"07": find_checkpoint(pretrained_run, "07_pretraining")}, rows, n=3, max_new_tokens=4)
    assert set(got["07"]) == {"think", "no_think"} and all(len(v) == 3 for v in got["07"].values())
    assert all(0.0 <= x <= 1.0 for v in got["07"].values() for x in v)
    with pytest.raises(SmolbookError, match="cannot make"):
        task_scores_by_slice({"07": find_checkpoint(pretrained_run, "07_pretraining")}, rows.select(range(2)), n=3)


def test_rejected_answers_are_the_models_own_and_wrong(pretrained_run, pairs_and_tok):
    """By default the rejected side is the aligned model's own greedy answer (the recipe's weaker source), kept only
    where it is wrong; a solver that slips is the other choice, and an unknown source is refused."""
    from smolbook.data import prepare

    pairs, _ = pairs_and_tok
    solver_spec = preference_spec("12_apo", "chapter:07_pretraining", "smoke", pretrained_run, 0, "apo_zero",
                                  rejected="solver")
    data = prepare("smoke", pretrained_run, progress=False)
    solver = build_data(solver_spec, data)
    model_side = {r["rejected"][0]["content"] for r in pairs}
    assert model_side.isdisjoint(r["rejected"][0]["content"] for r in solver)  # a model's text, not the solver's
    with pytest.raises(SmolbookError, match="options.rejected"):
        build_data(preference_spec("12_apo", "chapter:07_pretraining", "smoke", pretrained_run, 0, "apo_zero",
                                        rejected="oracle"), data)


def test_apo_variant_refuses_the_dpo_baseline():
    from smolbook.alignment import DPO, apo_variant

    assert apo_variant(None, "apo_zero") == "apo_zero" and apo_variant("apo_down", "apo_zero") == "apo_down"
    with pytest.raises(SmolbookError, match="baseline itself"):
        apo_variant(DPO, "apo_zero")


def test_both_modes_by_slice_averages_the_modes_slice_by_slice():
    from smolbook.alignment import both_modes_by_slice

    got = both_modes_by_slice({"m": {"think": [1.0, 0.0, 0.5], "no_think": [0.0, 0.0, 0.5]}})
    assert got == {"m": [0.5, 0.0, 0.5]}
