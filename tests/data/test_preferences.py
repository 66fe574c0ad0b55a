"""Preference pairs: chosen verified right, rejected verified wrong, the rest dropped and counted."""
from __future__ import annotations

import pytest

from smolbook.data.chat import build_chat_data, prompt_messages
from smolbook.data.preferences import preference_pairs
from smolbook.errors import SmolbookError
from smolbook.evaluate.scoring import score_completion
from smolbook.teacher import SolverTeacher


@pytest.fixture(scope="module")
def rows():
    return list(build_chat_data("smoke", seed=0).mixture())


def test_pairs_in_both_modes_chosen_right_rejected_wrong(rows):
    data, report = preference_pairs(rows, SolverTeacher(), SolverTeacher(error_rate=0.7, seed=3, name="weak"),
                                    score=score_completion)
    assert set(data.column_names) >= {"prompt", "chosen", "rejected", "chat_template_kwargs"}
    assert report.by_mode["think"] > 0 and report.by_mode["no_think"] > 0
    assert report.kept == len(data) and report.both_right > 0
    assert report.kept + report.both_right + report.both_wrong + report.inverted == report.total == len(rows)
    by_key = {(r["kind"], r["mode"], str(prompt_messages(r))): r for r in rows}
    for pair in data:
        row = by_key[(pair["kind"], pair["mode"], str(pair["prompt"]))]
        assert pair["chosen"][0]["role"] == pair["rejected"][0]["role"] == "assistant"
        assert score_completion(row, pair["chosen"][0]["content"], pair["mode"])["correct"]
        assert not score_completion(row, pair["rejected"][0]["content"], pair["mode"])["correct"]
        assert pair["chat_template_kwargs"]["enable_thinking"] == (pair["mode"] == "think") or pair["kind"] == "system"


def test_inverted_and_equal_sources_are_counted(rows):
    subset = rows[:40]
    _, report = preference_pairs(subset, SolverTeacher(error_rate=0.5, seed=1), SolverTeacher(error_rate=0.5, seed=2),
                                 score=score_completion)
    assert report.inverted > 0 and report.both_wrong > 0
    with pytest.raises(SmolbookError, match="no preference pair survived"):
        # both always right: nothing to prefer
        preference_pairs(subset, SolverTeacher(), SolverTeacher(), score=score_completion)


def test_trl_reads_the_pairs(rows):
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    from smolbook.chat import template_tokenizer

    data, _ = preference_pairs(rows[:30], SolverTeacher(), SolverTeacher(error_rate=1.0), score=score_completion)
    example = data[0]
    assert is_conversational(example)
    out = maybe_apply_chat_template(example, template_tokenizer())
    assert out["prompt"].endswith("<|im_start|>assistant\n" + ("" if example["mode"] == "think" else "<think>\n\n</think>\n"))
    assert out["chosen"] != out["rejected"] and out["chosen"].endswith("<|im_end|>\n")


def test_dpo_trainer_trains_on_the_pairs_with_apo_zero(rows, tmp_path):
    from trl import DPOConfig, DPOTrainer

    from smolbook.data.chat import render_row
    from smolbook.data.tokenizer import train_bpe
    from smolbook.model import build_model, smollm3_config

    tok = train_bpe([render_row(r) for r in rows], vocab_size=1024, out_dir=tmp_path / "ckpt")
    tok.eos_token = "<|im_end|>"
    build_model(smollm3_config("smoke", tokenizer=tok), seed=0).save_pretrained(tmp_path / "ckpt")
    pairs, _ = preference_pairs(rows, SolverTeacher(), SolverTeacher(error_rate=1.0), score=score_completion)
    args = DPOConfig(output_dir=str(tmp_path / "apo"), max_steps=2, per_device_train_batch_size=2, loss_type=["apo_zero"],
                     report_to=[], use_cpu=True, save_strategy="no", max_length=1024, disable_tqdm=True)
    out = DPOTrainer(model=str(tmp_path / "ckpt"), args=args, train_dataset=pairs, processing_class=tok).train()
    assert out.global_step == 2 and out.training_loss == pytest.approx(1.0, abs=0.01)   # apo_zero starts at 1
