"""Reasoning mid-training (chapter 09): think-mode conversations packed into full rows with each conversation kept
apart, trained through the run spec with trainer ``pretrain`` and the ``reasoning-traces`` builder."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from smolbook.chapter import find_checkpoint
from smolbook.data import prepare
from smolbook.errors import SmolbookError
from smolbook.midtraining import (ConversationStream, mid_spec, seed_specs, teacher_conversations,
                                  tokenize_conversations)
from smolbook.train import run
from smolbook.train.run import budget_of, build_data


def test_stream_packs_full_rows_and_restarts_positions_at_every_conversation():
    # token 1000 * i + j + 1 is token j of conversation i: which conversation each token is in can be read back
    convs = [[1000 * i + j + 1 for j in range(n)] for i, n in enumerate([7, 11, 5, 13, 9, 6])]
    s = ConversationStream(convs, seq_len=16, batch_size=2, n_batches=4, epochs=2, seed=3)
    batches = list(s)
    assert len(batches) == 4 and all(b["input_ids"].shape == (2, 16) for b in batches)
    for b in batches:
        assert torch.equal(b["labels"], b["input_ids"])              # every token in the loss, no padding
        for ids, pos in zip(b["input_ids"].tolist(), b["position_ids"].tolist()):
            first_start = next((t for t in range(16) if ids[t] % 1000 == 1), 16)
            for t in range(16):
                # a conversation that started in this row has its own positions 0, 1, ...; the row's leading
                # remainder of a conversation from the row before counts from the row's start
                assert pos[t] == (ids[t] % 1000 - 1 if t >= first_start else t)
    first, second = s.rows["input_ids"][:4].flatten()[:20], s.rows["input_ids"][4:8].flatten()[:20]
    assert not torch.equal(first, second)                            # each epoch in its own order
    t = ConversationStream(convs, seq_len=16, batch_size=2, n_batches=4, epochs=2, seed=3)
    next(t)
    u = ConversationStream(convs, seq_len=16, batch_size=2, n_batches=4, epochs=2, seed=3)
    u.load_state_dict(t.state_dict())
    assert torch.equal(next(u)["input_ids"], batches[1]["input_ids"])  # exact resume
    with pytest.raises(SmolbookError, match="does not match"):
        ConversationStream(convs, 16, 2, 4, 2, seed=4).load_state_dict(t.state_dict())


def test_packed_conversations_do_not_attend_to_each_other(pretrained_run):
    """The second conversation of a packed row gets the logits it gets alone: reset positions keep it apart."""
    data = prepare("smoke", pretrained_run, progress=False)
    rows, report = teacher_conversations("smoke", 0, ("math", "facts"), corpus_seed=data.seed)
    assert report["kept"] == len(rows) > 1 and all(r["mode"] == "think" for r in rows)
    a, b = (ids[:40] for ids in tokenize_conversations(rows[:2], data.tokenizer, max_tokens=10 ** 9))
    s = ConversationStream([a, b], seq_len=80, batch_size=1, n_batches=1, epochs=1)
    batch = next(s)
    model = AutoModelForCausalLM.from_pretrained(find_checkpoint(pretrained_run, "07_pretraining")).eval()
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        alone = model(input_ids=torch.tensor([b]), use_cache=False).logits[0]
        running = model(input_ids=batch["input_ids"], use_cache=False).logits[0]  # positions running on (TRL wrapped)
    at = 40 if batch["input_ids"][0, 0].item() == a[0] else 0   # the epoch's order may put b first
    assert torch.allclose(packed[at:at + len(b)], alone, atol=1e-4)
    assert not torch.allclose(running[at:at + len(b)], alone, atol=1e-3)


def test_reasoning_traces_builder_trains_through_the_run_spec(pretrained_run):
    spec = mid_spec("09_midtraining", "mid", "chapter:07_pretraining", "smoke", pretrained_run, 0,
                    max_position_embeddings=2048, kinds=("math", "facts"))
    assert spec.builder == "reasoning-traces" and spec.trainer == "pretrain"
    data = prepare("smoke", pretrained_run, progress=False)
    budget = budget_of(spec)
    stream = build_data(spec, data)
    assert len(stream) == budget.steps and stream.epochs == 4 and min(stream.starts_per_row()) >= 1
    result = run(spec)
    rows = result.rows("train")
    assert rows[-1]["step"] == budget.steps and rows[-1]["tokens"] == budget.steps * budget.rows_per_step * 1024
    final = find_checkpoint(pretrained_run, "09_midtraining")
    assert AutoModelForCausalLM.from_pretrained(final).config.max_position_embeddings == 2048


def test_every_seed_continues_the_source_at_its_context_and_only_the_main_seed_keeps_a_curve(tmp_path):
    LlamaConfig(max_position_embeddings=4096).save_pretrained(tmp_path)
    specs = seed_specs("09_midtraining", "chapter:08_long_context", tmp_path, "smoke", "out", [3, 4], main_seed=3)
    assert list(specs) == [("mid", 3), ("mid", 4)]
    assert [s.name for s in specs.values()] == ["mid", "mid-seed4"]
    assert all(s.model.checkpoint == "chapter:08_long_context" and s.model.max_position_embeddings == 4096
               for s in specs.values())
    assert specs["mid", 3].checkpoint_every and specs["mid", 4].checkpoint_every is None
