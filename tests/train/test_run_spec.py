"""The one road from a chapter's model to the next: run specs, continuing a registered checkpoint with another RoPE
theta (in this process, from the command line and under a 2-process torchrun), exact resume, chapter checkpoints."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from smolbook.chapter import Chapter, find_checkpoint, registered_checkpoints
from smolbook.errors import SmolbookError
from smolbook.train import BudgetSpec, DataSpec, ModelSpec, RunSpec, ScheduleSpec, TrainResult, run
from smolbook.scales import get_scale
from smolbook.train.run import budget_of, resolve_config

SMOLBOOK = str(Path(sys.executable).with_name("smolbook"))
THETA = 2_000_000.0


def lc_spec(out: Path, name: str = "lc", **kw) -> RunSpec:
    """Continue 07's smoke checkpoint for 6 steps of 2 x 128 tokens with RoPE theta 2M (what chapter 08 does)."""
    base = dict(chapter="08_long_context", name=name, phase="lc-32k", scale="smoke", output_dir=str(out),
                model=ModelSpec(checkpoint="chapter:07_pretraining", rope_theta=THETA),
                budget=BudgetSpec(steps=6, seq_len=128, rows_per_step=2), checkpoint_every=3, evaluate=False)
    base.update(kw)
    return RunSpec(**base)


def test_spec_round_trips_through_yaml(tmp_path):
    spec = lc_spec(tmp_path, optimizer_state="carry", schedule=ScheduleSpec(kind="cosine", warmup_steps=1),
                   data=DataSpec(stages=["lc-32k"], doc_masking=False), resume=False, seed=3)
    path = spec.save(tmp_path / "spec.yaml")
    assert RunSpec.load(path) == spec
    assert RunSpec.from_dict(spec.to_dict()) == spec
    assert spec.run_dir == tmp_path / "08_long_context" / "lc" and spec.ref == "chapter:08_long_context/lc"


def test_budget_defaults_come_from_the_scale_and_the_recipe():
    pre = RunSpec(chapter="07_pretraining", name="pretrain", scale="tiny")
    c = resolve_config(pre)
    assert (c.steps, c.warmup_steps, c.schedule) == (488, 30, "wsd")
    assert round(c.decay_fraction * c.steps) == 488 - 434  # exactly the decay stage
    lc = RunSpec(chapter="08_long_context", name="lc", phase="lc-32k", scale="tiny",
                 model=ModelSpec(checkpoint="chapter:07_pretraining", rope_theta=THETA))
    b = budget_of(lc)
    assert (b.seq_len, b.rows_per_step, b.schedule) == (2048, 2, "cosine")
    assert b.learning_rate == pytest.approx(0.003 * 2e-5 / 2e-4)
    assert b == get_scale("tiny").budget("lc-32k")  # nothing in the spec changes the scale's budget: the same one


def test_continue_a_chapter_checkpoint_with_another_theta(pretrained_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(pretrained_run, out)  # a run folder moves whole: its registry holds paths relative to it
    assert find_checkpoint(out, "07_pretraining").is_relative_to(out.resolve())
    assert '"path": "07_pretraining/pretrain/final"' in (out / "checkpoints.json").read_text()
    result = run(lc_spec(out))
    assert len(result.rows("train")) == 6 and result.rows("train")[-1]["stage"] == "lc-32k"
    final = find_checkpoint(out, "08_long_context")
    model = AutoModelForCausalLM.from_pretrained(final)  # plain transformers
    assert model.config.rope_parameters["rope_theta"] == THETA and model.config.max_position_embeddings == 128
    assert list(model.config.no_rope_layers) == [1, 0]  # NoPE stays NoPE
    names = [(c["chapter"], c["name"]) for c in registered_checkpoints(out)]
    assert ("07_pretraining", "stable") in names and ("07_pretraining", "stable-2") in names
    assert ("07_pretraining", "decay") in names and ("08_long_context", "lc") in names

    # resume="auto": the same spec in the same folder continues; an interrupted run resumes exactly
    again = run(lc_spec(out))
    assert again.rows("train")[-1]["loss"] == result.rows("train")[-1]["loss"]
    run_dir = out / "08_long_context" / "lc"
    shutil.rmtree(run_dir / "final")
    for ckpt in (run_dir / "checkpoints").iterdir():
        if ckpt.name != "step-0000003":
            shutil.rmtree(ckpt)
    resumed = run(lc_spec(out))
    a, b = result.series("loss")[1], resumed.series("loss")[1]
    assert len(b) == 6 and max(abs(x - y) for x, y in zip(a, b)) <= 1e-6, list(zip(a, b))

    # a changed spec does not silently reuse the old run
    changed = run(lc_spec(out, schedule=ScheduleSpec(learning_rate=1e-4)))
    assert changed.rows("train")[-1]["loss"] != result.rows("train")[-1]["loss"]

    # lc-32k carries the pretraining optimizer (the config's load_optimizer): a reset changes the trajectory;
    # a plain model folder has no state to carry
    reset = run(lc_spec(out, name="lc-reset", optimizer_state="reset"))
    assert reset.series("loss")[1][0] == pytest.approx(a[0], abs=1e-6)  # same model, same first batch
    assert reset.series("loss")[1][-1] != pytest.approx(a[-1], abs=1e-6)
    plain = tmp_path / "plain"
    AutoModelForCausalLM.from_pretrained(final).save_pretrained(plain)
    with pytest.raises(SmolbookError, match="optimizer_state 'reset'"):
        run(lc_spec(out, name="lc-plain", optimizer_state="carry", model=ModelSpec(checkpoint=str(plain))))


def test_branch_continues_a_run_exactly_under_another_schedule(pretrained_run):
    """The control of an annealing claim: the same run from the decay's first step with a constant learning rate."""
    spec = RunSpec(chapter="07_pretraining", name="constant-lr", scale="smoke", output_dir=str(pretrained_run),
                   schedule=ScheduleSpec(decay_fraction=0.0), branch_from="chapter:07_pretraining/stable-2",
                   evaluate=False)
    branch = run(spec)
    main = TrainResult.from_dir(pretrained_run / "07_pretraining" / "pretrain")
    start = json.loads((pretrained_run / "checkpoints.json").read_text())["checkpoints"]
    step = next(c["step"] for c in start if c["name"] == "stable-2")
    rows = branch.rows("train")
    assert rows[0]["step"] == step + 1 and rows[-1]["step"] == main.rows("train")[-1]["step"]
    assert rows[0]["loss"] == pytest.approx(main.rows("train")[step]["loss"], abs=1e-6)  # same model, same batch
    assert rows[-1]["tokens"] == main.rows("train")[-1]["tokens"]  # the same tokens
    assert all(r["lr"] == rows[0]["lr"] for r in rows) and main.rows("train")[-1]["lr"] < rows[0]["lr"]


def test_a_branch_under_another_seed_is_a_replicate_over_other_tokens(pretrained_run):
    """Replicates of the annealing claim: from the same checkpoint and data position, another seed draws the same
    stages' documents afresh; its own checkpoints then resume it exactly."""
    base = dict(chapter="07_pretraining", scale="smoke", output_dir=str(pretrained_run), evaluate=False,
                branch_from="chapter:07_pretraining/stable-2", final=False)
    same = run(RunSpec(name="decay-seed0", **base))
    other = run(RunSpec(name="decay-seed1", seed=1, checkpoint_every=2, **base))
    main = TrainResult.from_dir(pretrained_run / "07_pretraining" / "pretrain")
    step = len(main.rows("train")) - len(same.rows("train"))
    assert same.series("loss")[1] == pytest.approx(main.series("loss")[1][step:], abs=1e-6)  # seed 0: its tokens
    a, b = same.rows("train"), other.rows("train")
    assert [r["step"] for r in a] == [r["step"] for r in b] and [r["stage"] for r in a] == [r["stage"] for r in b]
    assert a[0]["loss"] != pytest.approx(b[0]["loss"], abs=1e-6)  # same model, other documents
    run_dir = pretrained_run / "07_pretraining" / "decay-seed1"
    shutil.rmtree(run_dir / "final")
    kept = sorted((run_dir / "checkpoints").iterdir())[-1]
    for ckpt in (run_dir / "checkpoints").iterdir():
        if ckpt != kept:
            shutil.rmtree(ckpt)
    resumed = run(RunSpec(name="decay-seed1", seed=1, checkpoint_every=2, **base))
    assert resumed.series("loss")[1] == pytest.approx(other.series("loss")[1], abs=1e-6)


def test_command_line_and_two_torchrun_processes_match_one(pretrained_run, tmp_path):
    # fp32: the claim is about how the batch splits over processes, which bf16 rounding (per shape) would blur
    one = run(lc_spec(pretrained_run, name="lc-one", precision="fp32"))
    spec = lc_spec(pretrained_run, name="lc-two", precision="fp32").save(tmp_path / "spec.yaml")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "smolbook.train", "run", str(spec), "--in-process"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    two = TrainResult.from_dir(pretrained_run / "08_long_context" / "lc-two")
    a, b = one.series("loss")[1], two.series("loss")[1]
    assert len(a) == len(b) == 6 and max(abs(x - y) for x, y in zip(a, b)) <= 1e-5, list(zip(a, b))
    # the command line with the scale's launcher (in-process at smoke) registers what it made
    proc = subprocess.run([SMOLBOOK, "train", "run", str(spec)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert find_checkpoint(pretrained_run, "08_long_context", "lc-two").parent.name == "lc-two"


def test_start_from_checks_needs_and_names_the_chapter_to_run(pretrained_run, tmp_path):
    book = Chapter("08_long_context", "smoke", 0, pretrained_run)
    book._needs = ["07_pretraining"]
    assert book.start_from("07_pretraining") == find_checkpoint(pretrained_run, "07_pretraining")
    assert book.start_from("07_pretraining", "stable").name == "step-0000047"
    with pytest.raises(SmolbookError, match="not in its notebook's `needs` header"):
        book.start_from("05_doc_masking")
    empty = Chapter("08_long_context", "smoke", 0, tmp_path / "empty")
    empty._needs = ["07_pretraining"]
    with pytest.raises(SmolbookError, match=r"run 07_pretraining first \(smolbook run --only 07\)"):
        empty.start_from("07_pretraining")
    with pytest.raises(SmolbookError, match="holds no checkpoint"):
        book.checkpoint("nothing", tmp_path)
    book.checkpoint("copy", find_checkpoint(pretrained_run, "07_pretraining"), step=64, final=True)
    assert find_checkpoint(pretrained_run, "08_long_context", "copy").name == "final"


def test_notebooks_declare_what_they_start_from():
    from smolbook.chapter import _notebook_needs

    assert _notebook_needs("07_pretraining") == ["01_data"]


def test_optimizer_state_follows_the_configs_unless_overridden():
    from smolbook.train.run import optimizer_state_of

    ck = ModelSpec(checkpoint="chapter:07_pretraining")
    assert optimizer_state_of(RunSpec(chapter="c", name="a", phase="lc-32k", model=ck)) == "carry"   # load_optimizer: true
    assert optimizer_state_of(RunSpec(chapter="c", name="b", phase="lc-64k", model=ck)) == "reset"   # load_optimizer: false
    assert optimizer_state_of(RunSpec(chapter="c", name="c", phase="lc-64k", model=ck, optimizer_state="carry")) == "carry"
    assert optimizer_state_of(RunSpec(chapter="c", name="d")) == "reset"


def test_a_run_of_another_seed_reads_the_books_corpus(pretrained_run, tmp_path):
    """Seed 1 of an arm varies its data order, not the corpus: it must neither rebuild the shared data folder
    (another tokenizer and world under every later chapter) nor read its checkpoint with another tokenizer."""
    out = tmp_path / "run"
    shutil.copytree(pretrained_run, out)
    manifest = (out / "data" / "manifest.json").read_text()
    tokenizer = (out / "data" / "tokenizer" / "tokenizer.json").read_bytes()
    seed0, seed1 = run(lc_spec(out, name="lc-s0")), run(lc_spec(out, name="lc-s1", seed=1, final=False))
    # the other seed registered after the main run, but not as the chapter's final checkpoint
    assert find_checkpoint(out, "08_long_context") == out.resolve() / "08_long_context" / "lc-s0" / "final"
    assert (out / "data" / "manifest.json").read_text() == manifest
    assert (out / "data" / "tokenizer" / "tokenizer.json").read_bytes() == tokenizer
    first0, first1 = seed0.series("loss")[1][0], seed1.series("loss")[1][0]
    assert first1 == pytest.approx(first0, abs=0.5), "seed 1 started from a model that cannot read its data"
    assert seed1.series("loss")[1] != seed0.series("loss")[1]  # another data order
    with pytest.raises(SmolbookError, match="corpus_seed"):
        RunSpec(chapter="08_long_context", name="x", corpus_seed="zero")
