"""Dual-mode SFT (chapter 11): the mixture's adjustments (a domain without traces, the teacher's traces added), the
loss mask, BFD packing fill, and the chat model's format rates read back with plain transformers."""
from __future__ import annotations

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from smolbook.chapter import find_checkpoint
from smolbook.data import prepare
from smolbook.data.chat import prompt_messages, template_kwargs
from smolbook.errors import SmolbookError
from smolbook.evaluate.chat import chat_scores
from smolbook.evaluate.scoring import format_ok
from smolbook.sft import adjust_mixture, loss_mask, packing_fill, save_rows, sft_spec, teacher_rows
from smolbook.teacher import SolverTeacher
from smolbook.train import run
from smolbook.train.run import DATA_BUILDERS, budget_of
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
    b = budget_of(spec)
    epoch = DATA_BUILDERS["conversations"](spec, data, b)
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
