"""lighteval for real: the book's tasks through lighteval 0.13's pipeline (transformers backend, offline) give the
same scores as the book's own scorers on the same items, item by item; ``smolbook eval``; the released task lists
as lighteval commands; the model card transcribed."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from smolbook.chapter import find_checkpoint
from smolbook.data.tokenizer import load_tokenizer
from smolbook.errors import SmolbookError
from smolbook.evaluate import answer_accuracy, cloze_accuracy, score_items
from smolbook.evaluate.lighteval_run import base_items, chat_items, evaluate_checkpoint, read_items
from smolbook.scales import get_scale

SHARED = Path(__file__).resolve().parents[3] / "shared" / "reference"
OMP = {"OMP_NUM_THREADS": "1"}


def test_base_suite_equals_the_book_scorers_item_by_item(pretrained_run):
    ckpt = find_checkpoint(pretrained_run, "07_pretraining")
    scores = evaluate_checkpoint(ckpt, "base", label="t_base")
    items = base_items("smoke", pretrained_run)
    model, tok, seq_len = AutoModelForCausalLM.from_pretrained(ckpt), load_tokenizer(ckpt), get_scale("smoke").seq_len
    assert scores["book_cloze_cf"] == pytest.approx(cloze_accuracy(model, tok, items["cloze"], seq_len))
    for task in ("arithmetic", "code_output", "translation"):
        assert scores[f"book_{task}"] == pytest.approx(answer_accuracy(model, tok, items[task], seq_len)["exact"])
    assert 0 <= scores["book_cloze_mcf"] <= 1
    # Item by item: lighteval's summed log-likelihood of every cloze choice is the book's (same tokens, same
    # truncation to the model's length), and each generative item's verdict is the book's teacher-forced one.
    records = read_items(pretrained_run / "lighteval" / "t_base" / "base")
    cloze = [r for r in records if r["task"] == "book_cloze_cf"]
    assert len(cloze) == len(items["cloze"])
    for rec in cloze:
        row = items["cloze"][int(rec["id"])]
        p = tok(row["prompt"], add_special_tokens=False)["input_ids"]
        book = [-nll for nll, _, _ in score_items(model, [(p + c, len(p)) for c in
                                                          tok(row["choices"], add_special_tokens=False)["input_ids"]], seq_len)]
        assert rec["logprobs"] == pytest.approx(book, abs=1e-3)
    for task in ("arithmetic", "code_output", "translation"):
        recs = [r for r in records if r["task"] == f"book_{task}"]
        for rec in recs:
            row = items[task][int(rec["id"])]
            p, a = (tok(row[k], add_special_tokens=False)["input_ids"] for k in ("prompt", "answer"))
            (_, n, ok), = score_items(model, [(p + a, len(p))], seq_len)
            assert rec["metric"]["em"] == float(ok == n), (task, rec["id"])
    details = list((pretrained_run / "lighteval" / "t_base" / "base" / "details").rglob("*.parquet"))
    assert len(details) == 5   # lighteval's own per-item files, one per task


@pytest.fixture(scope="module")
def sft_run(pretrained_run):
    from helpers import chat_spec
    from smolbook.train import run

    run(chat_spec(pretrained_run))   # the same spec as the chat trainer test: runs once per session
    return find_checkpoint(pretrained_run, "11_sft")


def test_chat_suite_generates_what_the_book_generates_and_scores_it_the_same(pretrained_run, sft_run):
    from smolbook.evaluate.scoring import score_completion, summarise
    from smolbook.teacher import ModelTeacher

    scores = evaluate_checkpoint(sft_run, "chat", chat_per_kind=2, batch_size=1, chat_max_new_tokens=24, label="t_chat")
    records = read_items(pretrained_run / "lighteval" / "t_chat" / "chat")
    rows = chat_items("smoke", 0, per_kind=2)
    teacher = ModelTeacher(str(sft_run), batch_size=1, max_new_tokens=24, progress=False)
    for mode in ("think", "no_think"):
        chosen = [r for r in rows if r["mode"] == mode]
        completions = teacher.generate(chosen, mode)
        mine = {int(r["id"]): r["text"][0].split("<|im_end|>")[0] for r in records if r["task"] == f"book_chat_{mode}"}
        assert [mine[i] for i in range(len(chosen))] == completions
        book = summarise([score_completion(r, c, mode) for r, c in zip(chosen, completions)], mode, "sft")
        for metric in ("answer_em", "ifeval_prompt_strict", "tool_call_match", "tool_call_validity", "language_match",
                       "format_ok"):
            assert scores[f"book_chat_{mode}/{metric}"] == (pytest.approx(book[metric]) if book[metric] is not None else None)


def test_smolbook_eval_prints_scores_and_keeps_lighteval_files(pretrained_run):
    ckpt = find_checkpoint(pretrained_run, "07_pretraining", "stable")
    out = subprocess.run([sys.executable, "-m", "smolbook.cli", "eval", str(ckpt), "--suite", "base", "--json",
                          "--max-items", "4"], capture_output=True, text=True, env={**__import__("os").environ, **OMP},
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    scores = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(scores) >= {"book_cloze_cf", "book_cloze_mcf", "book_arithmetic", "book_code_output", "book_translation"}
    assert all(v is None or 0 <= v <= 1 for v in scores.values())
    folder = pretrained_run / "lighteval" / "07_pretraining__pretrain__checkpoints__step-0000047" / "base"
    assert list((folder / "results").rglob("results_*.json")) and list((folder / "details").rglob("*.parquet"))


def test_eval_says_what_to_do_with_a_folder_that_is_no_checkpoint(tmp_path):
    with pytest.raises(SmolbookError, match="no checkpoint at"):
        evaluate_checkpoint(tmp_path, "base")
    with pytest.raises(SmolbookError, match="suite 'nope'"):
        evaluate_checkpoint(tmp_path, "nope")
    out = subprocess.run([sys.executable, "-m", "smolbook.cli", "eval", str(tmp_path)], capture_output=True, text=True,
                         env={**__import__("os").environ, **OMP}, timeout=120)
    assert out.returncode == 2 and "no checkpoint at" in out.stderr and "Traceback" not in out.stderr


def test_released_task_lists_become_lighteval_commands_its_parsers_accept():
    from lighteval.models.vllm.vllm_model import VLLMModelConfig
    from lighteval.tasks.registry import Registry

    from smolbook.evaluate.lighteval_full import full_commands, lighteval_task_names, model_card, released_tasks

    released = {w: [line.strip() for line in (SHARED / "smollm3-eval" / f"smollm3_{w}_tasks.txt").read_text().splitlines()
                    if line.strip()] for w in ("base", "instruct")}
    assert model_card()["released_task_lists"]["base"] == released["base"]
    assert model_card()["released_task_lists"]["instruct"] == released["instruct"]
    base, instruct = released_tasks("base"), released_tasks("instruct")
    customs = {t.line for t in base + instruct if t.suite == "custom"}
    assert customs == {line for w in released.values() for line in w if line.startswith("custom|")}
    assert {t.task for t in instruct if t.status == "builtin"} >= {"aime25", "gpqa:diamond", "ifeval", "lcb:codegeneration"}
    commands = {c.name: c for c in full_commands("/ckpt/smollm3")}
    assert set(commands) == {"base", "instruct_think", "instruct_no_think"}
    names = lighteval_task_names()
    for c in commands.values():
        model_args, tasks = re.match(r'lighteval vllm "([^"]+)" "([^"]+)"', c.command).groups()
        cfg = VLLMModelConfig.from_args(model_args)   # lighteval's own parser
        assert cfg.model_name == "/ckpt/smollm3"
        assert not any(t.startswith("custom") for t in tasks.split(","))
        assert all(any(line.startswith(("custom|",)) for line in [left.split(" ")[0]]) for left in c.left_out)
        if c.name.startswith("instruct"):
            assert cfg.system_prompt == ("/think" if c.name.endswith("_think") and "no_think" not in c.name else "/no_think")
            assert cfg.generation_parameters.temperature == 0.6 and cfg.generation_parameters.top_p == 0.95
        # 0.13's task-list parser reads every line it is given (task|fewshot); the built-in ones resolve to configs
        builtin = [t for t in tasks.split(",") if t.split("|")[0] in names or t.split("|")[0].split(":")[0] in names]
        registry = Registry.__new__(Registry)
        registry.tasks_list = registry._get_full_task_list_from_input_string(",".join(builtin)) if builtin else []
        assert sorted(registry.tasks_list) == sorted(set(builtin))


def test_model_card_tables_match_the_card():
    from smolbook.evaluate.lighteval_full import card_rows, model_card

    text = (SHARED / "smollm3-model-card" / "README.md").read_text()
    card = model_card()
    assert set(card["tables"]) == {"instruct_no_think", "instruct_think", "base_english", "base_multilingual_main",
                                   "base_multilingual_other"}
    checked = 0
    for name, table in card["tables"].items():
        for row in table["rows"]:
            for model, score in row["scores"].items():
                if score is not None:
                    assert re.search(rf"\b{re.escape(f'{score:.2f}'.rstrip('0').rstrip('.'))}", text), (name, row["metric"], model)
                    checked += 1
    assert checked > 250
    no_think = {r["metric"]: r["score"] for r in card_rows("instruct_no_think")}
    think = {r["metric"]: r["score"] for r in card_rows("instruct_think")}
    assert no_think["IFEval"] == 76.7 and think["AIME 2025"] == 36.7
    assert {r["metric"]: r["score"] for r in card_rows("base_english")}["Ruler 128k"] == 61.03
    assert "vllm serve HuggingFaceTB/SmolLM3-3B" in card["serving"]["vllm"]


def test_win_rates_stage_values_and_pairing():
    from smolbook.evaluate.lighteval_book import paired, stage_values, win_rates

    rows = [{"label": "a", "chapter": "c1", "name": "x", "chapter_final": True, "t1": 0.5, "t2": 0.1},
            {"label": "b", "chapter": "c2", "name": "arm-seed1", "chapter_final": False, "t1": 0.7, "t2": 0.1},
            {"label": "c", "chapter": "c2", "name": "arm-seed0", "chapter_final": True, "t1": 0.2, "t2": None},
            {"label": "d", "chapter": "c2", "name": "other-seed0", "chapter_final": False, "t1": 0.9, "t2": 0.9}]
    rates = win_rates(rows, ["t1", "t2"])
    # a: t1 beats c only (1 of 3), t2 ties b (0.5), loses d (0) -> 1.5 / 5 pairs
    assert rates["a"] == pytest.approx(1.5 / 5) and rates["d"] == pytest.approx(1.0)
    assert stage_values(rows, "c2", "t1") == [0.2, 0.7]          # the final's arm, every seed, in seed order
    assert stage_values(rows, "c1", "t1") == [0.5] and stage_values(rows, "nope", "t1") == []
    assert paired([0.5], [0.2, 0.7]) == (0.5, [0.2, 0.7])  # one common start: a reference against each seed
    assert paired([0.2, 0.7], [0.5]) == ([0.2, 0.7], 0.5)
    assert paired([1, 2], [3, 4, 5]) == ([1.5], [4.0])
    # a sweep's runs: the final's arm in seed order from checkpoints.json's arm and seed, whatever their names
    swept = [{"label": n, "chapter": "c3", "name": n, "arm": arm, "seed": k, "chapter_final": final, "t1": v}
             for n, arm, k, final, v in (("mid-seed2", "mid", 2, False, 0.3), ("mid", "mid", 0, True, 0.1),
                                         ("mid-seed1", "mid", 1, False, 0.2), ("short-x-seed0", "x", 0, False, 0.9))]
    assert stage_values(swept, "c3", "t1") == [0.1, 0.2, 0.3]
    # an arm that holds two stages of each seed (08's lc-32k then lc-64k): only the final's stage, one value a seed
    staged = [{"label": n, "chapter": "c4", "name": n, "arm": "main", "seed": k, "chapter_final": n == "lc-64k", "t1": v}
              for n, k, v in (("lc-32k", 0, 0.9), ("lc-64k", 0, 0.1), ("seed1-lc-32k", 1, 0.9),
                              ("seed1-lc-64k", 1, 0.2), ("seed2-lc-64k", 2, 0.3))]
    assert stage_values(staged, "c4", "t1") == [0.1, 0.2, 0.3]
    assert stage_values(staged[:2], "c4", "t1") == [0.1]       # only seed 0 evaluated: one common start


def test_registered_checkpoints_are_evaluated_once_per_folder(pretrained_run):
    from smolbook.evaluate.lighteval_book import checkpoints_to_evaluate

    entries = checkpoints_to_evaluate(pretrained_run, chapters=["07_pretraining"])
    paths = [e["path"] for e in entries]
    assert len(paths) == len(set(paths))
    final = [e for e in entries if e["chapter_final"]]
    assert len(final) == 1 and final[0]["path"] == str(find_checkpoint(pretrained_run, "07_pretraining"))
    assert any(e["aliases"] for e in entries)   # the decay stage's last checkpoint is the run's final one


def test_a_sweeps_seeds_reach_the_stage_verdict(pretrained_run, tmp_path):
    """evaluate_registered keeps each checkpoint's arm and seed from checkpoints.json, so a stage whose final checkpoint
    is one seed of a sweep's arm is read on every seed of that arm (chapter 14's chain verdicts), names aside."""
    import shutil

    from smolbook.chapter import register_checkpoint
    from smolbook.evaluate.lighteval_book import CHAT, EvalSizes, evaluate_registered, stage_values

    run = tmp_path / "run"
    shutil.copytree(pretrained_run, run)
    ckpt = find_checkpoint(run, "07_pretraining")
    for k, name, arm, final in ((1, "main-seed1", "recipe", False), (2, "main-seed2", "recipe", False),
                                (0, "control-seed0", "control", False), (0, "main", "recipe", True)):
        shutil.copytree(ckpt, run / name)
        register_checkpoint(run, "90_sweep", name, run / name, final=final, arm=arm, seed=k)
    sizes = EvalSizes(base_items=2, chat_per_kind=1, chat_max_new_tokens=4, lc_lengths=(64,), lc_items=2,
                      only_final=False, chat_on_chain_only=True)
    rows = evaluate_registered(run, "smoke", sizes=sizes, chapters=["90_sweep"], progress=False)
    assert {(r["name"], r["arm"], r["seed"]) for r in rows} >= {("main", "recipe", 0), ("main-seed1", "recipe", 1)}
    chat = {r["name"]: r[CHAT] for r in rows}
    assert chat["control-seed0"] is None and all(chat[n] is not None for n in ("main", "main-seed1", "main-seed2"))
    assert len(stage_values(rows, "90_sweep", CHAT)) == 3
