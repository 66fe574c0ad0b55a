"""load_with_rope: reloading a checkpoint with another RoPE theta or YaRN really changes the rotary embedding."""
from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from smolbook.errors import SmolbookError
from smolbook.model import build_model, load_with_rope, smollm3_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt")
    config = smollm3_config("smoke", vocab_size=384)
    config.initializer_range = 0.3  # large weights: attention depends visibly on relative positions
    build_model(config, seed=0).save_pretrained(path)
    return path


def test_theta_changes_the_frequencies_and_keeps_nope_layers(checkpoint):
    base = AutoModelForCausalLM.from_pretrained(checkpoint)
    model = load_with_rope(checkpoint, rope_theta=2_000_000.0, max_position_embeddings=512)
    dim = model.config.hidden_size // model.config.num_attention_heads
    expected = 1.0 / (2_000_000.0 ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
    assert torch.allclose(model.model.rotary_emb.inv_freq, expected)
    assert not torch.allclose(base.model.rotary_emb.inv_freq, expected)
    assert list(model.config.no_rope_layers) == list(base.config.no_rope_layers) == [1, 0]
    assert model.config.max_position_embeddings == 512
    for (n, a), (_, b) in zip(base.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), n  # the weights are the checkpoint's


def test_theta_only_change_moves_outputs_as_rope_theory_says(checkpoint):
    """Position 0 is rotated by angle 0 under any theta, so its outputs are identical; later positions differ."""
    base = AutoModelForCausalLM.from_pretrained(checkpoint).eval()
    model = load_with_rope(checkpoint, rope_theta=5_000_000.0).eval()
    ids = torch.randint(3, 384, (1, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = base(ids, use_cache=False).logits[0], model(ids, use_cache=False).logits[0]
    diff = (a - b).abs().amax(dim=-1)
    assert diff[0] <= 1e-5 and bool((diff[1:] > 100 * max(float(diff[0]), 1e-7)).all()), diff
    # a larger theta rotates every frequency more slowly: the angle at position p of pair i is p / theta^(2i/d)
    inv_a, inv_b = base.model.rotary_emb.inv_freq, model.model.rotary_emb.inv_freq
    assert torch.all(inv_b[1:] < inv_a[1:]) and inv_a[0] == inv_b[0] == 1.0


def test_yarn_is_saved_and_reloads_with_plain_transformers(checkpoint, tmp_path):
    model = load_with_rope(checkpoint, rope_theta=5_000_000.0, yarn_factor=2.0, original_max_position_embeddings=1024)
    assert model.config.max_position_embeddings == 2048
    rope = model.config.rope_parameters
    assert rope["rope_type"] == "yarn" and rope["factor"] == 2.0 and rope["original_max_position_embeddings"] == 1024
    plain = load_with_rope(checkpoint, rope_theta=5_000_000.0)
    assert not torch.allclose(model.model.rotary_emb.inv_freq, plain.model.rotary_emb.inv_freq)
    model.save_pretrained(tmp_path / "yarn")
    cfg = AutoConfig.from_pretrained(tmp_path / "yarn")
    assert cfg.rope_parameters["rope_type"] == "yarn" and cfg.rope_parameters["factor"] == 2.0
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "yarn")
    assert torch.allclose(again.model.rotary_emb.inv_freq, model.model.rotary_emb.inv_freq)
    assert math.isclose(again.model.rotary_emb.attention_scaling, model.model.rotary_emb.attention_scaling)
    assert again.model.rotary_emb.attention_scaling > 1.0  # YaRN's attention temperature


def test_bad_input_is_a_clear_error(checkpoint, tmp_path):
    with pytest.raises(SmolbookError, match="no checkpoint at"):
        load_with_rope(tmp_path / "nowhere")
    with pytest.raises(SmolbookError, match="yarn_factor must be > 1"):
        load_with_rope(checkpoint, yarn_factor=0.5)
