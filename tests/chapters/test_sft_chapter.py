"""Dual-mode SFT (chapter 11): the mixture's adjustments (a domain without traces, the teacher's traces added), the
loss mask, BFD packing fill, and the chat model's format rates read back with plain transformers."""
from __future__ import annotations

import pandas as pd
import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from smolbook.chapter import find_checkpoint
from smolbook.data import prepare
from smolbook.data.chat import prompt_messages, template_kwargs
from smolbook.errors import SmolbookError
from smolbook.evaluate.chat import chat_scores
from smolbook.evaluate.scoring import format_ok
from smolbook.sft import (ArmScores, adjust_mixture, control_specs, judge_args, loss_mask,
                          packing_fill, recipe_specs, save_rows, sft_spec, teacher_rows)
from smolbook.teacher import SolverTeacher
from smolbook.train import build_data, run
from smolbook.train.trl import chat_tokenizer


def test_teacher_traces_replace_a_domains_missing_think_rows(chat, tmp_path):
    traces, report = teacher_rows(chat, "facts", SolverTeacher(error_rate=0.5, seed=0))
    assert report["generated"] == sum(m == "no_think" for m in chat.train["facts"]["mode"])
    assert report["kept"] == len(traces) and 0 < report["kept"] < report["generated"]   # the filter caught slips
    assert report["kept"] + report["wrong"] + report["bad_format"] + report["unparsable"] == report["generated"]
    assert all(r["mode"] == "think" and r["messages"][-1]["content"].startswith("<think>") for r in traces)
    mix = chat.mixture(("facts", "math"), seed=0)
    without = adjust_mixture(mix, {"without_traces": ["facts"]}, seed=0)
    assert not any(k == "facts" and m == "think" for k, m in zip(without["kind"], without["mode"]))
    assert sum(k == "math" and m == "think" for k, m in zip(without["kind"], without["mode"])) > 0
    path = save_rows(traces, tmp_path / "traces.jsonl")
    with_traces = adjust_mixture(mix, {"without_traces": ["facts"], "extra_rows": str(path)}, seed=0)
    assert sum(k == "facts" and m == "think" for k, m in zip(with_traces["kind"], with_traces["mode"])) == len(traces)
    with pytest.raises(SmolbookError, match="no file"):
        adjust_mixture(mix, {"extra_rows": str(tmp_path / "missing.jsonl")}, seed=0)


def test_loss_mask_trains_assistant_turns_and_masks_the_tool_result(chat, pretrained_run):
    tok = chat_tokenizer(find_checkpoint(pretrained_run, "07_pretraining"))
    row = next(r for r in chat.train["tools_xml"] if r["mode"] == "think")
    pieces, mask, roles = loss_mask(row, tok)
    assert len(pieces) == len(mask) == len(roles) and "tool" in roles
    assert not any(m for m, r in zip(mask, roles) if r in ("tool", "user", "system"))
    trained = "".join(p for p, m in zip(pieces, mask) if m)
    for turn in (m["content"] for m in row["messages"] if m["role"] == "assistant"):
        assert turn.split("\n")[-1] in trained                       # every assistant turn's answer is trained


def test_bfd_fills_rows_better_than_padding(chat, pretrained_run):
    tok = chat_tokenizer(find_checkpoint(pretrained_run, "07_pretraining"))
    fill = packing_fill(chat.mixture(("math", "facts"), seed=0), tok, 1024)
    assert sum(fill["bfd_row_tokens"]) == fill["tokens"] and max(fill["bfd_row_tokens"]) <= 1024
    assert fill["bfd_rows"] < fill["padded_rows"] and fill["padded_fill"] < fill["bfd_fill"] <= 1.0


def test_epoch_of_the_sft_builder_holds_the_scales_tokens(pretrained_run):
    spec = sft_spec("11_sft", "probe", "chapter:07_pretraining", "smoke", pretrained_run, 0)
    data = prepare("smoke", pretrained_run, progress=False)
    epoch = build_data(spec, data)
    assert {"think", "no_think"} <= set(epoch["mode"]) or len(epoch) < 4
    assert len(epoch) < 60   # an epoch of the budget, not the whole generated mixture


def test_chat_model_format_rates_with_plain_transformers(chat, pretrained_run):
    """Done-when of chapter 11: generate from the SFT checkpoint with plain transformers and its own chat template;
    think mode must be read as a closed think block then an answer, enable_thinking=False as no reasoning, and
    the rates must be the ones the chapter's evaluation (chat_scores) reports for the same rows."""
    run(sft_spec("11_sft", "sft-format", "chapter:07_pretraining", "smoke", pretrained_run, 0))
    final = find_checkpoint(pretrained_run, "11_sft", "sft-format")
    model = AutoModelForCausalLM.from_pretrained(final).eval()
    tok = AutoTokenizer.from_pretrained(final)
    assert tok.eos_token == "<|im_end|>" and model.generation_config.eos_token_id == tok.eos_token_id
    rows = chat.heldout_set(("math", "facts"), per_kind=4)
    rates = {}
    for mode in ("think", "no_think"):
        chosen = [r for r in rows if r["mode"] == mode]
        ok = []
        for r in chosen:
            prompt = tok.apply_chat_template(prompt_messages(r), tokenize=False, add_generation_prompt=True,
                                             **template_kwargs(r, mode))
            if mode == "no_think":   # the template closes an empty think block for the model
                assert prompt.endswith("<think>\n\n</think>\n")
            ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
            out = model.generate(**ids, max_new_tokens=48, do_sample=False, pad_token_id=tok.pad_token_id)
            new = out[0, ids["input_ids"].shape[1]:].tolist()
            text = tok.decode(new[: new.index(tok.eos_token_id) + 1] if tok.eos_token_id in new else new)
            ok.append(format_ok(text.replace("<|im_end|>", ""), mode))
        rates[mode] = sum(ok) / len(ok)
    reported = {r["mode"]: r["format_ok"] for r in chat_scores({"sft": final}, rows, modes=("think", "no_think"),
                                                              max_new_tokens=48)}
    assert reported == pytest.approx(rates)


def test_a_learning_curve_reads_every_kept_checkpoint_of_a_run(chat, pretrained_run):
    """A run that keeps its checkpoints (``checkpoint_every`` in ``sft_spec``) hands each to the learning curve: one
    record per step and mode, the final step included, each loadable with plain transformers; TRL's rows reach
    metrics.jsonl as they are logged."""
    from smolbook.evaluate.chat import learning_curve

    res = run(sft_spec("11_sft", "sft-curve", "chapter:07_pretraining", "smoke", pretrained_run, 0, steps=4,
                       checkpoint_every=1))
    steps = res.checkpoints_by_step()
    assert list(steps) == [1, 2, 3, 4] and steps[4] == res.checkpoint
    assert [r["step"] for r in res.rows("train")] == [1, 2, 3, 4]
    rows = chat.heldout_set(("facts",), per_kind=2)
    curve = learning_curve(steps, rows, max_new_tokens=8)
    assert [(r["step"], r["mode"]) for r in curve] == [(k, m) for k in (1, 2, 3, 4) for m in ("think", "no_think")]
    assert all(0 <= r["format_ok"] <= 1 for r in curve)


def test_checkpoints_scored_side_by_side_match_one_process(chat, pretrained_run):
    """chat_scores in two worker processes returns, in the same order, the records one process computes (greedy
    decoding is deterministic); only the generation's speed may differ."""
    res = run(sft_spec("11_sft", "sft-workers", "chapter:07_pretraining", "smoke", pretrained_run, 0, steps=2,
                       checkpoint_every=1))
    folders = {f"step {k}": path for k, path in res.checkpoints_by_step().items()}
    rows = chat.heldout_set(("facts", "tools_xml"), per_kind=2)

    def scores(workers):
        return [{k: v for k, v in r.items() if k != "tokens_per_s"}
                for r in chat_scores(folders, rows, max_new_tokens=8, workers=workers)]

    here = scores(1)
    assert [(r["checkpoint"], r["mode"]) for r in here] == [(c, m) for c in folders for m in ("think", "no_think")]
    assert scores(2) == here


def test_each_control_arm_differs_from_the_short_recipe_in_one_thing():
    """The controlled claims read pairs of arms: the short recipe arm against the same without the teacher's traces,
    and against the same from 08's model, at one budget; only the recipe arm's main seed is the chapter's model."""
    options = {"think_ratio": 0.8, "without_traces": ["facts"], "extra_rows": "traces.jsonl"}
    controls = control_specs("11_sft", "smoke", "out", [0, 1], options, steps=3)
    assert sorted(controls) == sorted((arm, k) for arm in ("short recipe", "no teacher", "from 08") for k in (0, 1))
    short, no_teacher, from08 = controls["short recipe", 1], controls["no teacher", 1], controls["from 08", 1]
    assert {s.budget.steps for s in controls.values()} == {3} and not any(s.final for s in controls.values())
    assert no_teacher.data.options == {k: v for k, v in options.items() if k != "extra_rows"}
    assert no_teacher.model.checkpoint == short.model.checkpoint == "chapter:09_midtraining"
    assert from08.model.checkpoint == "chapter:08_long_context" and from08.data.options == short.data.options
    recipe = recipe_specs("11_sft", "smoke", "out", [0, 1], 0, options)
    assert [s.name for s in recipe.values()] == ["sft", "sft-seed1"] and recipe["recipe", 0].final
    assert recipe["recipe", 0].checkpoint_every and recipe["recipe", 1].checkpoint_every is None


def test_verdicts_pair_the_arms_by_seed():
    """judge_args hands each claim its baseline and recipe values seed by seed, the arm without the change as the
    baseline: no_think against think, no teacher against the short recipe, 08's start against 09's."""
    kinds = ["math", "code", "facts", "multiturn"]
    recipe = pd.DataFrame([{"checkpoint": f"recipe seed {k}", "mode": m, "format_ok": 0.5 + k / 10,
                            **{f"correct/{x}": (k + (m == "think")) / 10 for x in kinds}}
                           for k in (0, 1) for m in ("think", "no_think")])
    controls = pd.DataFrame([{"checkpoint": f"{arm} seed {k}", **{f"correct/{x}": i / 10 + k / 100 for x in kinds}}
                             for i, arm in enumerate(("short recipe", "no teacher", "from 08")) for k in (0, 1)])
    rows = [{"mode": "think", "kind": "facts"}, {"mode": "no_think", "kind": "math"}]
    loss = {(arm, k, probe): float(i + k) for i, arm in enumerate(("short recipe", "no teacher", "from 08"))
            for k in (0, 1) for probe in ("lacking", "multi")}
    scores = ArmScores(recipe, controls.set_index("checkpoint"), loss, {"lacking": rows, "multi": rows}, "facts")
    before = pd.DataFrame({"mode": ["think", "no_think"], "format_ok": [0.0, 0.1]}).set_index("mode")
    args = judge_args(scores, before, rows, [0, 1], short=2)
    assert list(args) == ["think_format", "no_think_format", "think_helps", "teacher", "teacher_loss", "mid_loss",
                          "mid_helps"]
    assert args["think_format"]["baseline"] == 0.0 and args["think_format"]["recipe"] == [0.5, 0.6]
    assert args["think_helps"]["baseline"] == pytest.approx([0.0, 0.1])
    assert args["think_helps"]["recipe"] == pytest.approx([0.1, 0.2])
    assert args["teacher"]["baseline"] == pytest.approx([0.1, 0.11]) and args["teacher"]["recipe"] == pytest.approx([0, 0.01])
    assert args["teacher_loss"]["baseline"] == [1.0, 2.0] and args["mid_loss"]["baseline"] == [2.0, 3.0]
    assert args["mid_helps"]["recipe"] == pytest.approx([0.0, 0.01]) and args["mid_helps"]["note"] == "control arms: 2 steps"
    assert args["teacher"]["items"] == 1 and args["think_helps"]["items"] == 1
