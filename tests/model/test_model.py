"""smolbook.model: presets on transformers' SmolLM3, the ablation switches, parameter counts and the CLI."""
from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoConfig

from smolbook.cli import main as cli
from smolbook.errors import SmolbookError
from smolbook.model import (PRESETS, build_model, count_parameters, describe, kv_cache_bytes_per_token,
                            smollm3_config)


def test_3b_parameter_count_and_breakdown():
    counts = count_parameters(smollm3_config("smollm3-3b"), breakdown=True)
    assert counts["total"] == 3_075_098_624
    assert counts["embeddings"] == 128256 * 2048 and counts["lm_head"] == 0  # tied
    assert counts["attention"] == 36 * (2 * 2048 * 2048 + 2 * 2048 * 512)
    assert counts["mlp"] == 36 * 3 * 2048 * 11008
    assert counts["norms"] == (2 * 36 + 1) * 2048
    assert sum(v for k, v in counts.items() if k != "total") == counts["total"]


def test_cli_params_and_describe(capsys):
    assert cli(["model", "params", "--preset", "smollm3-3b"]) == 0
    assert capsys.readouterr().out.strip() == "3075098624"
    assert cli(["model", "params", "--preset", "smollm3-3b", "--breakdown"]) == 0
    out = capsys.readouterr().out
    assert all(k in out for k in ("embeddings", "attention", "mlp", "norms"))
    assert cli(["model", "describe", "--preset", "smollm3-3b", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [i for i, r in enumerate(d["no_rope_layers"]) if r == 0] == list(range(3, 36, 4))
    assert (d["num_attention_heads"], d["num_key_value_heads"]) == (16, 4)
    assert d["kv_cache_bytes_per_token_bf16"] == 2 * 36 * 4 * 128 * 2
    assert d["kv_cache_bytes_per_token_bf16_mha"] == 4 * d["kv_cache_bytes_per_token_bf16"]
    assert d["rope_parameters"]["rope_theta"] == 50000.0


def test_unknown_preset_is_one_line_error(capsys):
    with pytest.raises(SmolbookError, match="choose one of .*smollm3-3b"):
        smollm3_config("gpt-9")
    assert cli(["model", "params", "--preset", "gpt-9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "smoke" in err and "smollm3-3b" in err


def test_every_scale_has_a_preset():
    assert {"smoke", "tiny", "small", "full", "smollm3-3b"} <= set(PRESETS)
    assert count_parameters(smollm3_config("full")) == 3_075_098_624


def test_ablation_switches():
    base = smollm3_config("tiny")
    assert base.num_key_value_heads == 2 and base.no_rope_layers == [1, 1, 1, 0] and base.tie_word_embeddings
    assert smollm3_config("tiny", num_key_value_heads=8).num_key_value_heads == 8  # MHA
    assert smollm3_config("tiny", num_key_value_heads=1).num_key_value_heads == 1  # MQA
    with pytest.raises(SmolbookError, match="must divide"):
        smollm3_config("tiny", num_key_value_heads=3)
    assert smollm3_config("tiny", no_rope_layer_interval=0).no_rope_layers == [1, 1, 1, 1]
    assert smollm3_config("tiny", no_rope_layer_interval=2).no_rope_layers == [1, 0, 1, 0]
    untied = smollm3_config("tiny", tie_word_embeddings=False)
    assert count_parameters(untied, breakdown=True)["lm_head"] == 1024 * 128
    # transformers 5 keeps theta and scaling in rope_parameters (not top-level rope_theta / rope_scaling)
    c = smollm3_config("tiny", rope_theta=2e6, yarn_factor=2.0)
    assert c.rope_parameters == {"rope_type": "yarn", "rope_theta": 2e6, "factor": 2.0,
                                 "original_max_position_embeddings": 256}
    assert c.max_position_embeddings == 512
    assert kv_cache_bytes_per_token(base) == 2 * 4 * 2 * 16 * 2


def test_config_round_trips_through_autoconfig(tmp_path):
    c = smollm3_config("smoke", no_rope_layer_interval=0, rope_theta=1e6, yarn_factor=2.0)
    c.save_pretrained(tmp_path)
    back = AutoConfig.from_pretrained(tmp_path)
    assert back.no_rope_layers == c.no_rope_layers and back.rope_parameters == c.rope_parameters


def test_no_rope_layers_zero_means_nope():
    """transformers: no_rope_layers[i] == 0 -> layer i has no rotary embedding (position-blind attention)."""
    model = build_model(smollm3_config("tiny"), seed=0)
    assert [layer.self_attn.use_rope for layer in model.model.layers] == [1, 1, 1, 0]
    # RoPE sees only relative positions, so stretch them (x2) rather than shift them; the explicit all-ones mask
    # keeps transformers from reading the stretched position_ids as packed documents.
    stretched = torch.arange(12)[None] * 2

    def stretch_changes_logits(interval: int) -> bool:
        m = build_model(smollm3_config("smoke", no_rope_layer_interval=interval), seed=0).eval()
        ids = torch.randint(0, 384, (1, 12), generator=torch.Generator().manual_seed(0))
        mask = torch.ones_like(ids)
        with torch.no_grad():
            a = m(input_ids=ids, attention_mask=mask, position_ids=torch.arange(12)[None], use_cache=False).logits
            b = m(input_ids=ids, attention_mask=mask, position_ids=stretched, use_cache=False).logits
        return not torch.allclose(a, b, atol=1e-5)

    assert not stretch_changes_logits(1)  # every layer NoPE: positions are ignored
    assert stretch_changes_logits(0)      # RoPE everywhere: the same tokens further apart give other logits


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_packed_document_logits_equal_alone(attn):
    """Packed rows (position_ids restarting, no attention_mask, use_cache=False) keep documents apart."""
    m = build_model(smollm3_config("smoke", attn_implementation=attn), seed=0).eval()
    g = torch.Generator().manual_seed(1)
    a, b = torch.randint(0, 384, (1, 7), generator=g), torch.randint(0, 384, (1, 9), generator=g)
    packed = torch.cat([a, b], dim=1)
    pos = torch.cat([torch.arange(7), torch.arange(9)])[None]
    with torch.no_grad():
        both = m(input_ids=packed, position_ids=pos, use_cache=False).logits
        alone = m(input_ids=b, position_ids=torch.arange(9)[None], use_cache=False).logits
        leaky = m(input_ids=packed, position_ids=pos, attention_mask=torch.ones_like(packed)).logits
    torch.testing.assert_close(both[:, 7:], alone, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(leaky[:, 7:], alone, atol=1e-4)  # the trap: a mask turns packing detection off


def test_describe_for_a_scale():
    d = describe("tiny")
    assert d["nope_layer_indices"] == [3] and d["parameters"]["total"] == count_parameters(smollm3_config("tiny"))
