"""smolbook.evaluate.heldout: packed scoring keeps examples apart; teacher-forced exact match = greedy decoding."""
from __future__ import annotations

import torch

from smolbook.evaluate.heldout import answer_accuracy, cloze_accuracy, score_items, validation_loss
from helpers import toy_model, toy_tokenizer


def _trained_toy():
    model = toy_model(seed=0).eval()
    return model, toy_tokenizer()


def test_packed_scores_equal_scores_alone():
    model, _ = _trained_toy()
    g = torch.Generator().manual_seed(0)
    items = [(torch.randint(0, 64, (n,), generator=g).tolist(), 3) for n in (9, 14, 6, 11)]
    packed = score_items(model, items, seq_len=32)               # several examples share a row
    alone = [score_items(model, [it], seq_len=32)[0] for it in items]
    for (a, n, c), (b, m, d) in zip(packed, alone):
        assert n == m and c == d and abs(a - b) < 1e-4


def test_exact_match_equals_greedy_decoding():
    model, tok = _trained_toy()
    rows = [{"prompt": " ".join(f"t{(s + 2 * i) % 60}" for i in range(6)),
             "answer": " " + " ".join(f"t{(s + 2 * i) % 60}" for i in range(6, 8))} for s in range(12)]
    # Make some answers exactly what greedy decoding says, so both outcomes occur.
    for r in rows[:6]:
        ids = tok(r["prompt"], return_tensors="pt")["input_ids"]
        out = model.generate(ids, max_new_tokens=2, do_sample=False, pad_token_id=0)
        r["answer"] = " " + tok.decode(out[0, ids.shape[1]:])
    greedy = []
    for r in rows:
        ids = tok(r["prompt"], return_tensors="pt")["input_ids"]
        want = tok(r["answer"], add_special_tokens=False)["input_ids"]
        out = model.generate(ids, max_new_tokens=len(want), do_sample=False, pad_token_id=0)
        greedy.append(out[0, ids.shape[1]:].tolist() == want)
    res = answer_accuracy(model, tok, rows, seq_len=64)
    assert res["exact"] == sum(greedy) / len(rows) and 0 < res["exact"] < 1


def test_cloze_picks_the_lowest_loss_choice():
    model, tok = _trained_toy()
    prompt = "t1 t2 t3"
    choices = [" t4", " t9", " t30", " t50"]
    losses = [score_items(model, [(tok(prompt)["input_ids"] + tok(c)["input_ids"], 3)], 32)[0][0] for c in choices]
    best = min(range(4), key=losses.__getitem__)
    assert cloze_accuracy(model, tok, [{"prompt": prompt, "choices": choices, "label": best}], 32) == 1.0
    assert cloze_accuracy(model, tok, [{"prompt": prompt, "choices": choices, "label": (best + 1) % 4}], 32) == 0.0


def test_validation_loss_is_token_weighted():
    model, _ = _trained_toy()
    ids = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(2))
    pos = torch.arange(16).repeat(2, 1)
    labels = ids.clone()
    labels[1, 8:] = -100
    b = {"input_ids": ids, "position_ids": pos, "labels": labels}
    with torch.no_grad():
        ref = model(**b, use_cache=False).loss.item()  # transformers' mean over labelled tokens
    assert abs(validation_loss(model, [b]) - ref) < 1e-5
