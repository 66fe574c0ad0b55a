"""CPU training attention (smolbook.train.cpu_attention): the fp32 kernel in bf16 steps, padding-free rows attended
conversation by conversation, only while training."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from smolbook.train import pretrain
from smolbook.train.cpu_attention import NAME, cpu_training_attention
from helpers import ToyStream, toy_config, toy_model


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
        with cpu_training_attention(model) as active:
            assert active and model.config._attn_implementation == NAME
            packed, alone = _packed_logits(model)
        assert {d for t in kernel_dtypes for d in t} == {torch.float32}
    # the packed document attends to itself only (a leak across documents moves logits by whole units)
    assert (packed - alone).abs().max() < 0.05
    assert model.config._attn_implementation == "sdpa"


def test_only_cpu_sdpa_is_switched():
    model = toy_model()
    with torch.no_grad():
        with cpu_training_attention(model) as active:  # fp32: switched too (the padding-free path), kernel in fp32
            assert active and model.config._attn_implementation == NAME
    assert model.config._attn_implementation == "sdpa"
    model.set_attn_implementation("eager")
    with cpu_training_attention(model) as active:
        assert not active and model.config._attn_implementation == "eager"


def _padding_free_batch(lengths, vocab=64, seed=0):
    """One flattened row of conversations, as TRL's padding-free collator hands it to the model."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (1, sum(lengths)), generator=g)
    pos = torch.cat([torch.arange(n) for n in lengths])[None]
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    return dict(input_ids=ids, position_ids=pos, cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=max(lengths),
                max_length_k=max(lengths))


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_padding_free_rows_attend_conversation_by_conversation_exactly(precision, kernel_dtypes):
    # The segment path must compute what transformers' block-diagonal mask allows: logits and gradients match the
    # masked sdpa path, and no conversation sees another (each equals its logits alone).
    lengths = [9, 1, 14, 6]
    batch = _padding_free_batch(lengths)
    cast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else torch.autocast("cpu", enabled=False)
    out, calls = {}, {}
    for book in (False, True):
        model = toy_model()
        ctx = cpu_training_attention(model) if book else torch.autocast("cpu", enabled=False)
        kernel_dtypes.clear()
        with ctx, cast:
            logits = model(**batch, use_cache=False).logits.float()
            logits.square().mean().backward()
        calls[book] = len(kernel_dtypes)
        out[book] = (logits.detach(), model.model.layers[0].self_attn.q_proj.weight.grad.clone())
    layers = model.config.num_hidden_layers
    assert calls == {False: layers, True: layers * len(lengths)}  # one kernel call per conversation and layer
    tol = 2e-2 if precision == "bf16" else 1e-4
    assert (out[True][0] - out[False][0]).abs().max() < tol
    assert torch.allclose(out[True][1], out[False][1], atol=tol, rtol=tol)
    model = toy_model().eval()
    with torch.no_grad(), cpu_training_attention(model):
        packed = model(**batch, use_cache=False).logits
        start = sum(lengths[:2])
        alone = model(input_ids=batch["input_ids"][:, start:start + lengths[2]],
                      position_ids=torch.arange(lengths[2])[None], use_cache=False).logits
    assert (packed[:, start:start + lengths[2]] - alone).abs().max() < 1e-4


def test_bf16_run_uses_fp32_attention_and_saves_a_plain_checkpoint(tmp_path, kernel_dtypes):
    model = toy_model()
    res = pretrain(model, ToyStream(), toy_config(3, precision="bf16"), tmp_path)
    assert kernel_dtypes and {d for t in kernel_dtypes for d in t} == {torch.float32}
    assert model.config._attn_implementation == "sdpa"  # handed back as it came
    loaded = AutoModelForCausalLM.from_pretrained(res.checkpoint)
    assert loaded.config._attn_implementation == "sdpa"
    assert NAME not in (tmp_path / "final" / "config.json").read_text()
