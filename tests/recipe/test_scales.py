"""The scales table: shapes the recipe keeps, and clear errors for bad tables."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from smolbook.scales import SCALES_FILE, ScaleError, get_scale, load_scales


def test_five_scales_in_order():
    assert list(load_scales()) == ["smoke", "tiny", "gpu", "small", "full"]


def test_gpu_scale_is_offline_cuda_and_100_to_300m_parameters():
    from smolbook.model import count_parameters, smollm3_config

    s = get_scale("gpu")
    assert s.offline and s.device == "cuda" and s.launcher == "inprocess" and s.tokenizer == "offline-bpe"
    assert 100e6 <= count_parameters(smollm3_config(s, vocab_size=s.model.vocab_size)) <= 300e6


@pytest.mark.parametrize("name", ["tiny", "gpu", "small", "full"])
def test_recipe_shape_is_kept(name):
    s = get_scale(name)
    m = s.model
    assert m.num_attention_heads // m.num_key_value_heads == 4
    assert m.no_rope_layer_interval == 4 and m.num_hidden_layers % 4 == 0
    assert (m.rope_theta, m.rope_theta_long) == (50_000.0, (2_000_000.0, 5_000_000.0))
    assert s.long_context == (8 * s.seq_len, 16 * s.seq_len)
    b = s.stage_step_boundaries()
    n = s.pretrain_steps
    assert b["stable"][0] == 0 and b["decay"][1] == n and b["stable"][1] == b["stable-2"][0]
    # the configs' shares: stable-2 from step 3,450,001 and decay from 4,198,001 of 4,720,000
    assert b["stable"][1] / n == pytest.approx(3_450_000 / 4_720_000, abs=1 / n)
    assert b["decay"][0] / n == pytest.approx(4_198_000 / 4_720_000, abs=1 / n)
    # the learning-rate decay covers exactly the decay stage
    assert round(s.lr_decay_fraction() * n) == b["decay"][1] - b["decay"][0]
    tb = s.stage_token_boundaries()
    assert tb["decay"][1] == n * s.tokens_per_step


def test_full_reproduces_the_released_run_exactly():
    full = get_scale("full")
    assert full.stage_step_boundaries() == {"stable": (0, 3_450_000), "stable-2": (3_450_000, 4_198_000),
                                            "decay": (4_198_000, 4_720_000)}
    lc = full.budget("lc-32k")
    assert (lc.seq_len, lc.steps, lc.warmup_steps, lc.learning_rate, lc.schedule) == (32768, 20_000, 1000, 2e-5, "cosine")
    assert lc.rows_per_step * lc.seq_len == full.tokens_per_step  # the recipe keeps tokens per step
    assert full.budget("lc-64k").steps == 22_000 and full.budget("mid_training").epochs == 4


def test_budgets_keep_tokens_per_step_and_the_recipe_lr_ratio():
    tiny = get_scale("tiny")
    for phase in ("lc-32k", "lc-64k"):
        b = tiny.budget(phase)
        assert b.rows_per_step * b.seq_len == tiny.tokens_per_step
        assert b.learning_rate == pytest.approx(tiny.learning_rate * 2e-5 / 2e-4)
    assert tiny.budget("lc-32k").seq_len == 2048 and tiny.budget("lc-64k").seq_len == 4096
    with pytest.raises(ScaleError, match="no budget for 'rlhf'"):
        tiny.budget("rlhf")


def test_departures_are_computed_from_the_recipe():
    from smolbook.scales import departures

    rows = {r["phase"]: r for r in departures("tiny")}
    lc = rows["lc-32k"]
    assert lc["recipe share of pretraining"] == pytest.approx(47_185_920_000 / 11_136_221_184_000 * 1, rel=1e-3) or \
        lc["recipe share of pretraining"] == pytest.approx(20_000 * 2_359_296 / (4_720_000 * 2_359_296))
    assert lc["x recipe share"] > 1  # tiny gives long context a larger share than the recipe
    assert rows["preference"]["recipe tokens"] is None  # the recipe states no APO token count


def test_unknown_scale_lists_choices():
    with pytest.raises(ScaleError, match="unknown scale 'huge': choose one of smoke, tiny, gpu, small, full"):
        get_scale("huge")


def _table_with(tmp_path: Path, mutate) -> Path:
    table = yaml.safe_load(SCALES_FILE.read_text())
    mutate(table)
    path = tmp_path / "scales.yaml"
    path.write_text(yaml.safe_dump(table))
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t["tiny"].pop("seq_len"), "scale 'tiny': missing field seq_len"),
    (lambda t: t["tiny"].update(warp_drive=1), "scale 'tiny': unknown field warp_drive"),
    (lambda t: t["tiny"]["model"].update(num_key_value_heads=3), "num_attention_heads must be a multiple"),
    (lambda t: t["tiny"]["model"].update(num_key_value_heads=8), "4 query heads per KV head"),
    (lambda t: t["tiny"].update(model="big"), "model: should be a mapping of fields or should be 'recipe' (got 'big')"),
    (lambda t: t["tiny"]["model"].update(rope_theta=1.0), "model: unknown field rope_theta"),
    (lambda t: t["tiny"]["budgets"].pop("sft"), "budgets: need every phase (lc-32k, lc-64k, mid_training, sft, "
                                                "preference); missing sft"),
    (lambda t: t["tiny"]["budgets"].update(rlhf={"tokens": 5}), "budgets.rlhf: should be 'lc-32k', 'lc-64k'"),
    (lambda t: t["tiny"]["budgets"]["sft"].update(lr_ratio="fast"), "budgets.sft.lr_ratio: should be a valid number"),
    (lambda t: t["tiny"]["budgets"]["sft"].pop("lr_ratio"), "budgets.sft: needs lr_ratio"),
    (lambda t: t["tiny"]["budgets"]["sft"].update(tokens="many"), "budgets.sft.tokens: should be a valid integer or "
                                                                   "should be 'recipe' (got 'many')"),
    (lambda t: t["tiny"].update(seq_len="long"), "seq_len: should be a valid integer or should be 'recipe' (got 'long')"),
    (lambda t: t["tiny"].update(global_batch_size=17), "multiple of micro_batch_size"),
    (lambda t: t["tiny"].update(offline="yes"), "offline: should be a valid boolean (got 'yes')"),
    (lambda t: t["tiny"].update(device="tpu"), "device: should be 'cpu' or 'cuda' (got 'tpu')"),
    (lambda t: t["tiny"]["evaluation"].pop("chat_items"), "evaluation: missing field chat_items"),
    (lambda t: t["tiny"]["evaluation"].update(chat_items=0), "evaluation.chat_items: should be greater than or equal "
                                                             "to 1 (got 0)"),
    (lambda t: t["tiny"]["evaluation"].update(task_tokens="many"), "evaluation.task_tokens: should be a valid integer "
                                                                   "(got 'many')"),
    (lambda t: t["tiny"]["evaluation"].update(task_tokens=True), "evaluation.task_tokens: should be a valid integer "
                                                                 "(got True)"),
])
def test_malformed_tables_fail_clearly(tmp_path, mutate, message):
    with pytest.raises(ScaleError) as info:
        load_scales(_table_with(tmp_path, mutate))
    assert message in str(info.value)


def test_not_yaml(tmp_path):
    bad = tmp_path / "scales.yaml"
    bad.write_text("tiny: [unclosed")
    with pytest.raises(ScaleError, match="not valid YAML"):
        load_scales(bad)
