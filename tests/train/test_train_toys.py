"""The toy stream the trainer tests train on resumes exactly (tests/helpers.py)."""
from __future__ import annotations

import torch

from helpers import ToyStream


def test_toy_stream_resumes_exactly():
    a = ToyStream(seed=3)
    for _ in range(3):
        next(a)
    b = ToyStream(seed=3)
    b.load_state_dict(a.state_dict())
    x, y = next(a), next(b)
    assert all(torch.equal(x[k], y[k]) for k in x)
    assert (x["position_ids"][:, 0] == 0).all() and (x["position_ids"] == 0).sum() > x["input_ids"].shape[0]
