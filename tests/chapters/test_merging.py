"""smolbook.merging: real mergekit merges of real smoke checkpoints, read back with plain transformers."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from smolbook.chapter import find_checkpoint
from smolbook.errors import SmolbookError
from smolbook.merging import CONFIG_FILE, linear_merge, read_merge_config, soup


@pytest.fixture(scope="module")
def members(pretrained_run) -> list[Path]:
    """Three distinct checkpoints of one architecture: 07's stage ends and its final model."""
    return [find_checkpoint(pretrained_run, "07_pretraining", n) for n in ("stable", "stable-2", "pretrain")]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def test_linear_merge_is_the_weighted_mean_and_carries_the_chat_files(members, tmp_path):
    a, b = members[0], members[2]
    target = linear_merge({a: 0.9, b: 0.1}, tmp_path / "a folder with spaces" / "merged")
    wa, wb, wm = _weights(a), _weights(b), _weights(target)
    assert wm.keys() == wa.keys()
    worst = max((wm[k] - (0.9 * wa[k] + 0.1 * wb[k])).abs().max().item() for k in wm)
    assert worst < 1e-6
    assert max((wm[k] - wa[k]).abs().max().item() for k in wm) > 1e-3  # the merge moved the weights
    tok = AutoTokenizer.from_pretrained(target)
    assert tok.chat_template and "<|im_start|>" in tok.apply_chat_template([{"role": "user", "content": "hi"}],
                                                                          tokenize=False)
    cfg = read_merge_config(target)
    assert cfg["merge_method"] == "linear" and [m["parameters"]["weight"] for m in cfg["models"]] == [0.9, 0.1]
    assert all(Path(m["model"]).is_absolute() and Path(m["model"]).is_dir() for m in cfg["models"])
    assert not (target / "README.md").exists()  # no model card: mergekit's card reaches the hub for some paths


def test_soup_is_the_uniform_mean(members, tmp_path):
    target = soup(members, tmp_path / "soup")
    ws = [_weights(p) for p in members]
    wm = _weights(target)
    assert max((wm[k] - sum(w[k] for w in ws) / 3).abs().max().item() for k in wm) < 1e-6
    assert yaml.safe_load((target / CONFIG_FILE).read_text())["parameters"] == {"normalize": True}


def test_chat_tokenizer_and_generation_config_come_from_the_donor(pretrained_run, members, tmp_path):
    from smolbook.train.trl import chat_tokenizer

    chat = tmp_path / "chat model"  # a chat model's folder: eos <|im_end|> in tokenizer and generation config
    model = AutoModelForCausalLM.from_pretrained(members[2])
    tok = chat_tokenizer(members[2])
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(chat)
    tok.save_pretrained(chat)
    target = linear_merge({members[0]: 0.5, chat: 0.5}, tmp_path / "m", tokenizer_from=chat)
    assert AutoTokenizer.from_pretrained(target).eos_token == "<|im_end|>"
    assert AutoModelForCausalLM.from_pretrained(target).generation_config.eos_token_id == tok.eos_token_id


def test_merge_runs_with_the_hub_switched_off(members, tmp_path):
    code = ("import sys; from smolbook.merging import linear_merge; "
            "linear_merge({sys.argv[1]: 0.5, sys.argv[2]: 0.5}, sys.argv[3])")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code, str(members[0]), str(members[1]), str(tmp_path / "off")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr.strip() == ""  # mergekit's and transformers' chatter stays out
    assert (tmp_path / "off" / CONFIG_FILE).is_file()


def test_bad_merges_say_what_to_do(members, tmp_path):
    with pytest.raises(SmolbookError, match="given twice"):
        linear_merge({members[0]: 0.5, str(members[0]) + "/": 0.5}, tmp_path / "x")
    with pytest.raises(SmolbookError, match="no checkpoint at"):
        linear_merge({members[0]: 0.5, tmp_path / "nothing": 0.5}, tmp_path / "x")
    with pytest.raises(SmolbookError, match="at least two"):
        soup([members[0]], tmp_path / "x")
    with pytest.raises(SmolbookError, match=">= 0"):
        linear_merge({members[0]: -0.1, members[1]: 1.1}, tmp_path / "x")
    with pytest.raises(SmolbookError, match="one of its inputs"):
        linear_merge({members[0]: 0.5, members[1]: 0.5}, members[1])
    with pytest.raises(SmolbookError, match="sum to 0"):
        linear_merge({members[0]: 0, members[1]: 0}, tmp_path / "x")


def test_sweep_merges_between_and_reuses_the_ends(members, tmp_path):
    from smolbook.merging import sweep

    points = sweep(members[0], members[2], [0.0, 0.3, 1.0], tmp_path / "sweep")
    assert points[0.0] == members[0] and points[1.0] == members[2]
    assert [m["parameters"]["weight"] for m in read_merge_config(points[0.3])["models"]] == [0.7, 0.3]
    with pytest.raises(SmolbookError, match=r"in \[0, 1\]"):
        sweep(members[0], members[2], [1.5], tmp_path / "bad")


def test_soup_members_take_checkpoints_along_training_when_one_seed(pretrained_run):
    from smolbook.merging import soup_members
    from smolbook.train import BudgetSpec, ModelSpec, RunSpec, run

    spec = RunSpec(chapter="12_apo", name="soup-probe", scale="smoke", output_dir=str(pretrained_run),
                   phase="preference", trainer="dpo", model=ModelSpec(checkpoint="chapter:07_pretraining"),
                   budget=BudgetSpec(steps=2, rows_per_step=1), checkpoint_every=1)
    final = run(spec).checkpoint
    got = soup_members([final])
    assert len(got) == 2 and got[-1] == final and got[0].name.startswith("checkpoint-")
    assert len(soup_members([final, got[0]])) == 2
    with pytest.raises(SmolbookError, match="at least 2"):
        soup_members([])


def test_sweep_reuses_a_merge_made_already(members, tmp_path):
    from smolbook.merging import sweep

    points = sweep(members[0], members[2], [0.0, 0.3, 1.0], tmp_path / "sweep", reuse={0.3: members[1]})
    assert list(points) == [0.0, 0.3, 1.0] and points[0.3] == members[1]
    assert not (tmp_path / "sweep").exists()  # nothing left to merge


def test_sweep_choice_judges_the_recipe_weight_against_the_best_other():
    from smolbook.merging import sweep_choice

    labels = {0.0: "w=0", 0.1: "w=0.1", 0.5: "w=0.5"}
    by_slice = {"w=0": [0.5, 0.5], "w=0.1": [0.4, 0.6], "w=0.5": [0.0, 0.0]}
    cloze = {"w=0": 0.25, "w=0.1": 0.5, "w=0.5": 0.75}
    choice = sweep_choice(by_slice, cloze, labels, recipe_weight=0.1)
    assert choice.combined[0.1] == pytest.approx([0.9, 1.1]) and choice.best == 0.1
    assert choice.mean(0.0) == choice.mean(0.5) == 0.75 and choice.rival == 0.0  # a tie goes to the earlier weight
