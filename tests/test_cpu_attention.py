"""A CPU bf16 training step runs its attention kernel in fp32 (smolbook.train.cpu_attention), only while training."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from smolbook.train import pretrain
from smolbook.train.cpu_attention import NAME, fp32_attention_on_cpu
from test_train_toys import ToyStream, toy_config, toy_model


@pytest.fixture
def kernel_dtypes(monkeypatch):
    """The dtypes torch's attention kernel computes in, call by call: under CPU autocast it casts q, k and v to
    bf16 itself (sdpa is on autocast's lower-precision list), otherwise they stay as they come."""
    seen = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        seen.append((torch.bfloat16,) * 3 if torch.is_autocast_enabled("cpu") else (q.dtype, k.dtype, v.dtype))
        return real(q, k, v, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    return seen


def _packed_logits(model):
    """Logits of document b packed after document a, and of b alone (positions restart at each document)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randint(0, 64, (1, 9), generator=g), torch.randint(0, 64, (1, 7), generator=g)
    pos = torch.cat([torch.arange(9), torch.arange(7)])[None]
    packed = model(input_ids=torch.cat([a, b], 1), position_ids=pos, use_cache=False).logits[:, 9:]
    alone = model(input_ids=b, position_ids=torch.arange(7)[None], use_cache=False).logits
    return packed.float(), alone.float()


def test_attention_kernel_gets_fp32_under_autocast_and_keeps_documents_apart(kernel_dtypes):
    model = toy_model().eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        _packed_logits(model)
        assert {d for t in kernel_dtypes for d in t} == {torch.bfloat16}  # what autocast alone does
        kernel_dtypes.clear()
        with fp32_attention_on_cpu(model, "bf16") as active:
            assert active and model.config._attn_implementation == NAME
            packed, alone = _packed_logits(model)
        assert {d for t in kernel_dtypes for d in t} == {torch.float32}
    # the packed document attends to itself only (a leak across documents moves logits by whole units)
    assert (packed - alone).abs().max() < 0.05
    assert model.config._attn_implementation == "sdpa"


def test_only_cpu_bf16_sdpa_is_switched():
    model = toy_model()
    for precision in ("fp32", "auto"):
        with fp32_attention_on_cpu(model, precision) as active:
            assert not active and model.config._attn_implementation == "sdpa"
    model.set_attn_implementation("eager")
    with fp32_attention_on_cpu(model, "bf16") as active:
        assert not active and model.config._attn_implementation == "eager"


def test_bf16_run_uses_fp32_attention_and_saves_a_plain_checkpoint(tmp_path, kernel_dtypes):
    model = toy_model()
    res = pretrain(model, ToyStream(), toy_config(3, precision="bf16"), tmp_path)
    assert kernel_dtypes and {d for t in kernel_dtypes for d in t} == {torch.float32}
    assert model.config._attn_implementation == "sdpa"  # handed back as it came
    loaded = AutoModelForCausalLM.from_pretrained(res.checkpoint)
    assert loaded.config._attn_implementation == "sdpa"
    assert NAME not in (tmp_path / "final" / "config.json").read_text()
