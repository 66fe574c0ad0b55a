"""The scales table: shapes the recipe keeps, and clear errors for bad tables."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from smolbook.scales import SCALES_FILE, ScaleError, get_scale, load_scales


def test_four_scales_in_order():
    assert list(load_scales()) == ["smoke", "tiny", "small", "full"]


@pytest.mark.parametrize("name", ["tiny", "small", "full"])
def test_recipe_shape_is_kept(name):
    s = get_scale(name)
    m = s.model
    assert m.num_attention_heads // m.num_key_value_heads == 4
    assert m.no_rope_layer_interval == 4 and m.num_hidden_layers % 4 == 0
    assert s.long_context == (8 * s.seq_len, 16 * s.seq_len)
    b = s.stage_token_boundaries()
    assert b["stable"][0] == 0 and b["decay"][1] == s.pretrain_tokens
    assert b["stable"][1] / s.pretrain_tokens == pytest.approx(8 / 11.1, abs=1e-6)
    assert b["stable-2"][1] / s.pretrain_tokens == pytest.approx(10 / 11.1, abs=1e-6)


def test_tiny_is_laptop_sized_and_full_is_the_release():
    tiny, full = get_scale("tiny"), get_scale("full")
    assert tiny.offline and tiny.device == "cpu" and tiny.seq_len == 256 and tiny.long_context == (2048, 4096)
    assert (full.model.hidden_size, full.model.num_hidden_layers, full.model.intermediate_size) == (2048, 36, 11008)
    assert full.tokens_per_step == 3 * 192 * 4096


def test_unknown_scale_lists_choices():
    with pytest.raises(ScaleError, match="unknown scale 'huge': choose one of smoke, tiny, small, full"):
        get_scale("huge")


def _table_with(tmp_path: Path, mutate) -> Path:
    table = yaml.safe_load(SCALES_FILE.read_text())
    mutate(table)
    path = tmp_path / "scales.yaml"
    path.write_text(yaml.safe_dump(table))
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t["tiny"].pop("seq_len"), "scale 'tiny': missing field(s): seq_len"),
    (lambda t: t["tiny"].update(warp_drive=1), "unknown field(s): warp_drive"),
    (lambda t: t["tiny"]["model"].update(num_key_value_heads=3), "num_attention_heads must be a multiple"),
    (lambda t: t["tiny"]["model"].update(num_key_value_heads=8), "4 query heads per KV head"),
    (lambda t: t["small"].update(long_context=[8192, 16384]), "long_context must be"),
    (lambda t: t["tiny"].update(seq_len="long"), "bad value"),
    (lambda t: t["tiny"].update(global_batch_size=17), "multiple of micro_batch_size"),
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
