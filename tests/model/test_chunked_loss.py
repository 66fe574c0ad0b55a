"""The chunked loss of the long-context stages at full equals transformers' own loss and gradients."""
from __future__ import annotations

import pytest
import torch

from smolbook.errors import SmolbookError
from smolbook.model import build_model, smollm3_config
from smolbook.train.chunked_loss import chunked_cross_entropy, use_chunked_loss


def _batch(vocab: int, rows: int = 2, seq: int = 48):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (rows, seq), generator=g)
    pos = torch.cat([torch.arange(20), torch.arange(seq - 20)]).repeat(rows, 1)  # two packed documents per row
    labels = ids.clone()
    labels[:, 19] = -100  # no loss across the document boundary
    return ids, pos, labels


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_chunked_loss_equals_transformers_loss_and_gradients(chunk):
    plain = build_model(smollm3_config("smoke"), seed=0)
    chunked = use_chunked_loss(build_model(smollm3_config("smoke"), seed=0), chunk)
    ids, pos, labels = _batch(plain.config.vocab_size)
    n = float((labels[:, 1:] != -100).sum()) / 2  # as the trainer passes it: tokens over processes
    a = plain(input_ids=ids, position_ids=pos, labels=labels, use_cache=False, num_items_in_batch=n)
    b = chunked(input_ids=ids, position_ids=pos, labels=labels, use_cache=False, num_items_in_batch=n)
    assert b.logits is None  # the point: no full logits
    assert b.loss.item() == pytest.approx(a.loss.item(), rel=1e-5)
    a.loss.backward()
    b.loss.backward()
    for (name, p), q in zip(plain.named_parameters(), chunked.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6, rtol=1e-4), name
    # without labels the model is unchanged: logits as before
    with torch.no_grad():
        assert torch.equal(plain(input_ids=ids).logits, chunked(input_ids=ids).logits)


def test_chunked_loss_rejects_a_bad_chunk():
    with pytest.raises(SmolbookError, match="chunk_tokens"):
        chunked_cross_entropy(torch.zeros(1, 4, 8), torch.zeros(16, 8), torch.zeros(1, 4, dtype=torch.long), 0)


def test_the_full_scale_chunks_the_loss_of_its_long_rows_only():
    from smolbook.train import ModelSpec, RunSpec
    from smolbook.train.run import resolve_config

    def cfg(phase, scale="full"):
        return resolve_config(RunSpec(chapter="08_long_context", name="x", scale=scale, phase=phase,
                                      model=ModelSpec(checkpoint="chapter:07_pretraining")))

    assert cfg("lc-32k").loss_chunk_tokens == cfg("lc-64k").loss_chunk_tokens == 8192   # 32k / 64k x 128k logits
    assert cfg("lc-32k", "tiny").loss_chunk_tokens == 0


def test_the_trainer_follows_the_same_trajectory_with_the_chunked_loss(tmp_path):
    from smolbook.train import pretrain
    from helpers import ToyStream, toy_config, toy_model

    plain = pretrain(toy_model(), ToyStream(), toy_config(4, precision="fp32"), tmp_path / "plain")
    chunked = pretrain(toy_model(), ToyStream(), toy_config(4, precision="fp32", loss_chunk_tokens=5), tmp_path / "ch")
    a, b = plain.series("loss")[1], chunked.series("loss")[1]
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-5
