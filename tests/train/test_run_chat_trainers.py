"""``trainer: sft`` and ``trainer: dpo`` through the run spec: TRL trains a registered checkpoint on the generated
conversations / preference pairs, the saved chat model ends its turns with <|im_end|>, resume and registration."""
from __future__ import annotations


import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from smolbook.chapter import find_checkpoint
from smolbook.errors import SmolbookError
from smolbook.train import DataSpec, RunSpec, run
from smolbook.sft import balance_modes
from smolbook.train.trl import trl_checkpoints
from helpers import chat_spec


def test_sft_trains_a_chat_model_that_stops_on_im_end(pretrained_run):
    result = run(chat_spec(pretrained_run))
    rows = result.rows("train")
    assert [r["step"] for r in rows] == [1, 2, 3] and all(r["loss"] > 0 for r in rows)
    final = find_checkpoint(pretrained_run, "11_sft")
    model = AutoModelForCausalLM.from_pretrained(final)
    tok = AutoTokenizer.from_pretrained(final)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.eos_token == "<|im_end|>" and model.generation_config.eos_token_id == im_end
    assert tok.chat_template and "<|im_start|>" in tok.apply_chat_template([{"role": "user", "content": "hi"}],
                                                                          tokenize=False)
    assert trl_checkpoints(pretrained_run / "11_sft" / "sft")  # TRL's resumable state
    again = run(chat_spec(pretrained_run))  # the same spec: nothing reruns
    assert again.rows("train") == rows


def test_dpo_with_apo_zero_and_sigmoid(pretrained_run):
    apo = run(chat_spec(pretrained_run, trainer="dpo", name="apo"))
    dpo = run(chat_spec(pretrained_run, trainer="dpo", name="dpo", data=DataSpec(options={"loss_type": "sigmoid"})))
    a, d = apo.rows("train"), dpo.rows("train")
    assert len(a) == len(d) == 3
    assert a[0]["loss"] == pytest.approx(1.0, abs=0.02)       # apo_zero starts at 1 (sigmoid(0) x 2)
    assert d[0]["loss"] == pytest.approx(0.693, abs=0.02)     # DPO's -log sigmoid(0)
    assert "rewards/margins" in a[-1] and "rewards/accuracies" in a[-1]
    assert find_checkpoint(pretrained_run, "12_apo", "apo") != find_checkpoint(pretrained_run, "12_apo", "dpo")
    with pytest.raises(SmolbookError, match="loss_type must be one of"):
        run(chat_spec(pretrained_run, trainer="dpo", name="bad", data=DataSpec(options={"loss_type": "magic"})))


def test_chat_trainers_need_a_checkpoint(tmp_path):
    with pytest.raises(SmolbookError, match="fine-tunes a checkpoint"):
        RunSpec(chapter="11_sft", name="sft", trainer="sft", phase="sft")


def test_balance_modes_keeps_the_think_share_in_tokens():
    import datasets

    rows = datasets.Dataset.from_list([{"mode": m, "n": n} for m, n in
                                       [("no_think", 10), ("think", 5), ("think", 5), ("no_think", 10), ("think", 20)]])
    kept = balance_modes(rows, 0.5, lambda r: r["n"])
    assert [r["n"] for r in kept if r["mode"] == "think"] == [5, 5]   # 10 of the 20 no_think tokens x 0.5
    assert sum(r["mode"] == "no_think" for r in kept) == 2
