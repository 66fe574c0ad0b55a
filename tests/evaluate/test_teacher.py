"""The teacher: the solver's traces are right and filtered as such; a model teacher generates through the
chat template from a tiny checkpoint on disk, batched, in both modes."""
from __future__ import annotations

import pytest

from smolbook.data.chat import render_row
from smolbook.data.tokenizer import load_tokenizer, train_bpe
from smolbook.errors import SmolbookError
from smolbook.model import build_model, smollm3_config
from smolbook.teacher import ModelTeacher, SolverTeacher, filter_correct, teacher_traces


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, chat):
    path = tmp_path_factory.mktemp("teacher") / "ckpt"
    tok = train_bpe([render_row(r) for r in chat.mixture()], vocab_size=1024, out_dir=path)
    build_model(smollm3_config("smoke", tokenizer=tok), seed=0).save_pretrained(path)
    return path


def test_solver_traces_are_right_in_both_modes(chat):
    rows = list(chat.heldout_set())
    for mode in ("think", "no_think"):
        mine = [r for r in rows if r["mode"] == mode]
        kept, report = filter_correct(mine, SolverTeacher().generate(mine, mode), mode)
        assert report["kept"] == report["total"] == len(mine) and len(kept) == len(mine)
    think = SolverTeacher().generate(rows[:1], "think")[0]
    assert think.startswith("<think>\n") and "</think>\n" in think


def test_a_weaker_solver_is_filtered_and_counted(chat):
    rows = [r for r in chat.heldout_set() if r["mode"] == "no_think"]
    completions = SolverTeacher(error_rate=0.5, seed=1).generate(rows, "no_think")
    kept, report = filter_correct(rows, completions, "no_think")
    assert 0 < report["kept"] < report["total"]
    assert report["kept"] + report["wrong"] + report["bad_format"] + report["unparsable"] == report["total"]


def test_unparsable_and_badly_formatted_completions_are_counted_not_raised(chat):
    rows = [r for r in chat.heldout["facts"] if r["mode"] == "think"][:2]
    completions = ["<think>\nI never close", "The answer is " + rows[1]["answer"] + "."]
    kept, report = filter_correct(rows, completions, "think")
    assert kept == [] and report["unparsable"] == 1 and report["bad_format"] == 1
    with pytest.raises(SmolbookError, match="2 prompts but 1 completions"):
        filter_correct(rows, completions[:1], "think")
    with pytest.raises(SmolbookError, match="mode"):
        SolverTeacher().generate(rows, "fast")


def test_teacher_traces_fill_a_domain_that_lacks_them(chat):
    # The code rows written without reasoning get think-mode traces from the teacher.
    rows = [r for r in chat.train["code"] if r["mode"] == "no_think"]
    data, report = teacher_traces(SolverTeacher(), rows, "think")
    assert report["kept"] == len(rows) == len(data) and report["teacher"] == "solver"
    first = data[0]
    assert first["messages"][-1]["content"].startswith("<think>") and first["chat_template_kwargs"]["enable_thinking"]
    with pytest.raises(SmolbookError, match="none of"):
        teacher_traces(SolverTeacher(error_rate=1.0), rows[:3], "think")


def test_model_teacher_generates_from_a_checkpoint(checkpoint, chat):
    teacher = ModelTeacher(str(checkpoint), batch_size=3, max_new_tokens=6, progress=False, name="tiny")
    assert teacher.backend == "transformers"
    rows = list(chat.heldout["facts"].select(range(5)))
    texts = teacher.prompt_texts(rows, "no_think")
    assert all(t.endswith("<|im_start|>assistant\n<think>\n\n</think>\n") for t in texts)
    assert all(t.endswith("<|im_start|>assistant\n") for t in teacher.prompt_texts(rows, "think"))
    out = teacher.generate(rows, "no_think")
    assert len(out) == 5 and all(isinstance(o, str) and "<|im_end|>" not in o for o in out)
    assert 0 < teacher.stats["new_tokens"] <= 5 * 6 and teacher.stats["tokens_per_s"] > 0
    # Greedy is deterministic: a second run, batched differently, writes the same.
    assert ModelTeacher(str(checkpoint), batch_size=5, max_new_tokens=6, progress=False).generate(rows, "no_think") == out
    kept, report = filter_correct(rows, out, "no_think")            # an untrained model: counted, not raised
    assert report["total"] == 5 and report["kept"] == len(kept)
    sampled = ModelTeacher(str(checkpoint), max_new_tokens=6, sampling=True, progress=False).generate(rows, "think")
    assert len(sampled) == 5


def test_model_teacher_bad_input(checkpoint):
    with pytest.raises(SmolbookError, match="backend"):
        ModelTeacher(str(checkpoint), backend="tgi")
    model = build_model(smollm3_config("smoke", tokenizer=load_tokenizer(checkpoint)))
    with pytest.raises(SmolbookError, match="needs a tokenizer"):
        ModelTeacher(model)
