"""TRL's SFTTrainer trains on the generated conversations (assistant-only loss, BFD packing), and packed
conversations stay apart: a packed conversation's logits equal its logits alone (sdpa, no attention mask)."""
from __future__ import annotations

import pytest
import torch

from smolbook.data.chat import build_chat_data, render_row
from smolbook.data.tokenizer import train_bpe
from smolbook.model import build_model, smollm3_config


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("sft")
    chat = build_chat_data("smoke", seed=0)
    mixture = chat.mixture()
    tok = train_bpe([render_row(r) for r in mixture], vocab_size=1024, out_dir=root / "tok")
    tok.eos_token = "<|im_end|>"   # SFT stops on the end of an assistant turn
    return root, mixture, tok


def _model(tok):
    return build_model(smollm3_config("smoke", tokenizer=tok), seed=0)


def _trainer(root, mixture, tok, model, max_steps=2):
    """An SFTTrainer as the SFT chapter configures it, on the whole dual-mode mixture."""
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(output_dir=str(root / "out"), max_steps=max_steps, per_device_train_batch_size=2,
                     learning_rate=1e-3, packing=True, packing_strategy="bfd", assistant_only_loss=True,
                     max_length=1024, report_to=[], logging_steps=1, save_strategy="no", use_cpu=True,
                     dataloader_num_workers=0, disable_tqdm=True, seed=0)
    return SFTTrainer(model=model, args=args, train_dataset=mixture, processing_class=tok)


def test_sft_trains_with_assistant_only_loss_and_bfd_packing(setup):
    root, mixture, tok = setup
    trainer = _trainer(root, mixture, tok, _model(tok))
    batch = next(iter(trainer.get_train_dataloader()))
    assert "attention_mask" not in batch and "position_ids" in batch       # padding-free packed rows
    starts = (batch["position_ids"][0] == 0).sum().item()
    assert starts >= 2, "BFD should pack several conversations into one row"
    labels = batch["labels"][0]
    trained = labels != -100
    assert 0 < trained.sum() < trained.numel()                             # only assistant tokens are trained
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert (labels[trained] == im_end).any()                               # the stop token is trained
    user_tok = tok.convert_tokens_to_ids("<|im_start|>")
    assert not (labels[trained] == user_tok).any()                         # turn headers are not
    out = trainer.train()
    assert out.global_step == 2 and torch.isfinite(torch.tensor(out.training_loss))


def test_packed_conversations_stay_apart(setup):
    root, mixture, tok = setup
    model = _model(tok)   # float32, untrained: the trainer may cast the model it trains to bf16
    assert model.config._attn_implementation == "sdpa"
    batch = next(iter(_trainer(root, mixture, tok, model).get_train_dataloader()))
    ids, pos = batch["input_ids"][:1], batch["position_ids"][:1]
    model.eval()
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=pos, use_cache=False).logits[0]
        starts = (pos[0] == 0).nonzero().flatten().tolist() + [ids.shape[1]]
        assert len(starts) >= 3
        for a, b in zip(starts[:-1], starts[1:]):
            alone = model(input_ids=ids[:, a:b], use_cache=False).logits[0]
            torch.testing.assert_close(packed[a:b], alone, atol=1e-4, rtol=1e-4)
        # Without the position ids the second conversation sees the first: the check above can fail.
        leaky = model(input_ids=ids, use_cache=False).logits[0]
        a, b = starts[1], starts[2]
        assert not torch.allclose(leaky[a:b], packed[a:b], atol=1e-4)
