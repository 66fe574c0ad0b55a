"""smolbook.train in one process: optimiser groups, schedule, stage logging, checkpoints and exact resume."""
from __future__ import annotations

import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from smolbook.errors import SmolbookError
from smolbook.schedules import lr_multiplier, wsd_for
from smolbook.train import TrainConfig, pretrain
from smolbook.train.optim import parameter_groups
from helpers import ToyStream, toy_config, toy_model, toy_tokenizer

STEPS, K = 10, 4


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    """An uninterrupted run with a checkpoint every K steps and an eval function that counts its calls."""
    out = tmp_path_factory.mktemp("run_a")
    calls = []

    def eval_fn(model):
        calls.append(model.training)
        return {"valid_loss/toy": 1.0 + len(calls)}

    result = pretrain(toy_model(seed=0), ToyStream(seed=1), toy_config(STEPS, checkpoint_every=K, eval_every=K,
                                                                       keep_last_checkpoints=5),
                      out, eval_fn=eval_fn, tokenizer=toy_tokenizer())
    return result, calls


def test_weight_decay_groups_follow_the_recipe():
    model = toy_model()
    emb = model.get_input_embeddings().weight
    groups = {g["name"]: g for g in parameter_groups(model, toy_config())}
    assert [p is emb for p in groups["no_decay"]["params"]] == [True] and groups["no_decay"]["weight_decay"] == 0
    decayed = groups["decay"]["params"]
    assert groups["decay"]["weight_decay"] == 0.1 and all(p is not emb for p in decayed)
    assert any(p is model.model.norm.weight for p in decayed)  # recipe excludes only the token embedding
    on = parameter_groups(model, toy_config(embedding_weight_decay=True))
    assert len(on) == 1 and any(p is emb for p in on[0]["params"])


def test_bad_config_is_a_clear_error():
    with pytest.raises(SmolbookError, match="schedule must be one of"):
        TrainConfig(steps=10, learning_rate=1e-3, warmup_steps=1, schedule="linear-ish")
    with pytest.raises(SmolbookError, match="warmup_steps"):
        TrainConfig(steps=10, learning_rate=1e-3, warmup_steps=10)


def test_metrics_schedule_stages_and_evals(run_a):
    result, calls = run_a
    rows = result.rows("train")
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    kw = wsd_for(STEPS, 2, decay_fraction=0.1)
    assert [r["lr"] for r in rows] == pytest.approx([3e-3 * lr_multiplier(s, **kw) for s in range(STEPS)])
    assert [r["stage"] for r in rows] == ["stable"] * 8 + ["stable-2"] * 2
    assert rows[-1]["tokens"] == STEPS * 4 * 32 and rows[-1]["loss"] < rows[0]["loss"]
    assert [r["step"] for r in result.rows("eval")] == [0, 4, 8, 10] and calls == [False] * 4
    assert (result.output_dir / "metrics.jsonl").read_text().count("\n") == STEPS + 4


def test_resume_reaches_the_same_loss(run_a, tmp_path):
    result, _ = run_a
    ckpt = result.output_dir / "checkpoints" / "step-0000004"
    # A different init seed: everything after the resume must come from the checkpoint.
    resumed = pretrain(toy_model(seed=7), ToyStream(seed=1), toy_config(STEPS), tmp_path, resume=ckpt)
    a = {r["step"]: r for r in result.rows("train")}
    b = {r["step"]: r for r in resumed.rows("train")}
    assert sorted(b) == list(range(K + 1, STEPS + 1))
    diffs = [abs(a[s]["loss"] - b[s]["loss"]) for s in b]
    assert max(diffs) <= 1e-6, diffs
    assert [a[s]["lr"] for s in b] == [b[s]["lr"] for s in b]


def test_checkpoint_loads_with_plain_transformers(run_a):
    result, _ = run_a
    path = result.checkpoint
    assert path.name == "final"
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    ids = torch.tensor([tok("t1 t2 t3 t4 t5")["input_ids"]])
    assert ids.shape[1] == 5
    out = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape == (1, 9)


def test_missing_and_corrupt_checkpoints_name_the_file(run_a, tmp_path):
    result, _ = run_a
    with pytest.raises(SmolbookError, match="does not exist"):
        pretrain(toy_model(), ToyStream(), toy_config(STEPS), tmp_path / "x", resume=tmp_path / "nowhere")
    with pytest.raises(SmolbookError, match="no checkpoint to resume from"):
        pretrain(toy_model(), ToyStream(), toy_config(STEPS), tmp_path / "empty", resume=True)
    bad = tmp_path / "bad"
    shutil.copytree(result.output_dir / "checkpoints" / "step-0000008", bad)
    (bad / "accelerate" / "optimizer.bin").write_bytes(b"not a torch file")
    with pytest.raises(SmolbookError, match=r"optimizer\.bin"):
        pretrain(toy_model(), ToyStream(), toy_config(STEPS), tmp_path / "y", resume=bad)
    (bad / "trainer_state.json").write_text("{ half a json")
    with pytest.raises(SmolbookError, match=r"trainer_state\.json is corrupt"):
        pretrain(toy_model(), ToyStream(), toy_config(STEPS), tmp_path / "z", resume=bad)


def test_micro_batches_give_the_full_batch_gradient(tmp_path):
    """Gradient accumulation over micro-batches of 1 row follows the same trajectory as 4-row batches.

    In fp32: the claim is about the arithmetic of accumulation, which bf16 rounding (per batch shape) would blur."""
    full = pretrain(toy_model(), ToyStream(), toy_config(4, precision="fp32"), tmp_path / "full")
    micro = pretrain(toy_model(), ToyStream(), toy_config(4, micro_batch_size=1, precision="fp32"), tmp_path / "micro")
    a, b = full.series("loss")[1], micro.series("loss")[1]
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-5


def test_auto_precision_is_bf16_only_where_the_cpu_has_it(monkeypatch):
    import os

    from smolbook.train import loop

    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    assert loop.cpu_has_native_bf16() == (" avx512_bf16" in flags or " amx_bf16" in flags)
    monkeypatch.setattr(loop.torch.cuda, "is_available", lambda: False)
    for native, want in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda native=native: native)
        assert loop.resolve_precision(toy_config(4, precision="auto")) == want
        assert loop.resolve_precision(toy_config(4, precision="fp32")) == "fp32"


def test_bf16_training_tracks_fp32_with_fp32_master_weights(tmp_path):
    """bf16 autocast changes the arithmetic of forward/backward, not the optimisation: over a short run the
    losses stay close to fp32's, and the weights (and so the checkpoint) stay fp32."""
    runs = {}
    for precision in ("fp32", "bf16"):
        model = toy_model()
        res = pretrain(model, ToyStream(), toy_config(STEPS, precision=precision), tmp_path / precision)
        runs[precision] = res.series("loss")[1]
        assert all(p.dtype == torch.float32 for p in model.parameters())
        assert res.extra["precision"] == precision
    a, b = runs["fp32"], runs["bf16"]
    assert a != b  # bf16 really ran (its rounding shows in the losses)
    assert max(abs(x - y) for x, y in zip(a, b)) < 0.02, list(zip(a, b))
