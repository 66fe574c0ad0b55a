"""Packing documents into fixed-length rows, with intra-document masking through ``position_ids``.

SmolLM3 trains with intra-document masking (``_use_doc_masking: true`` in the nanotron configs):
a token attends only to earlier tokens of its own document. transformers does this for us when
``position_ids`` restart at 0 at every document, the model is called **without** an
``attention_mask`` and with ``use_cache=False`` (masking_utils.find_packed_sequence_indices):
no hand-written attention mask is needed. With continuous positions (``doc_masking=False``) the
same rows are plain causal attention across documents — the ablation of chapter 05.

Both the ``eager`` and ``sdpa`` attention implementations build their mask through
``create_causal_mask`` and honour packed positions (tests/data/test_data_stream.py checks both against
a real SmolLM3ForCausalLM); :data:`ATTN_IMPLEMENTATION` is the one the book uses on CPU, chosen by
timing both side by side (:func:`time_attention`, shown in notebook 01).
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch

# sdpa and eager both honour packed position_ids in transformers 5.23; sdpa was the faster of the
# two on CPU here for the tiny model (time_attention, recorded in notebook 01).
ATTN_IMPLEMENTATION = "sdpa"


def positions_for(starts: Sequence[int], length: int, doc_masking: bool = True) -> np.ndarray:
    """Position ids for a row of ``length`` tokens whose documents begin at ``starts``.

    With ``doc_masking`` positions restart at 0 at each start (and at the row's first token, which
    may continue a document from the previous row: RoPE is relative, so the offset is immaterial);
    without it they run 0..length-1.
    """
    if not doc_masking:
        return np.arange(length, dtype=np.int64)
    pos = np.arange(length, dtype=np.int64)
    idx = sorted({0, *[int(s) for s in starts if 0 <= s < length]})
    marks = np.zeros(length, dtype=bool)
    marks[idx] = True
    seg_start = np.maximum.accumulate(np.where(marks, pos, 0))
    return pos - seg_start


def pack_documents(docs: Sequence[Sequence[int]], seq_len: int, doc_masking: bool = True,
                   drop_last: bool = False, pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Concatenate token lists (each already ending with eos) into rows of ``seq_len``.

    Documents longer than the room left continue in the next row. The last partial row is dropped
    (``drop_last``) or padded with ``pad_id`` and label -100 at the padding.
    Returns ``input_ids``, ``position_ids``, ``labels`` as LongTensors [rows, seq_len].
    """
    flat: list[int] = []
    starts: list[int] = []
    for d in docs:
        starts.append(len(flat))
        flat.extend(int(t) for t in d)
    n_rows = len(flat) // seq_len if drop_last else -(-len(flat) // seq_len)
    ids = np.full((n_rows, seq_len), pad_id, dtype=np.int64)
    labels = np.full((n_rows, seq_len), -100, dtype=np.int64)
    pos = np.zeros((n_rows, seq_len), dtype=np.int64)
    starts_arr = np.asarray(starts)
    for r in range(n_rows):
        chunk = flat[r * seq_len:(r + 1) * seq_len]
        ids[r, :len(chunk)] = chunk
        labels[r, :len(chunk)] = chunk
        row_starts = starts_arr[(starts_arr >= r * seq_len) & (starts_arr < (r + 1) * seq_len)] - r * seq_len
        pos[r] = positions_for(row_starts.tolist(), seq_len, doc_masking)
        if len(chunk) < seq_len:  # padding is its own "document": restart positions there too
            pos[r, len(chunk):] = np.arange(seq_len - len(chunk)) if doc_masking else pos[r, len(chunk):]
    return {"input_ids": torch.from_numpy(ids), "position_ids": torch.from_numpy(pos), "labels": torch.from_numpy(labels)}


def segment_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """Document index of every token, exactly as transformers infers it (a new document wherever
    the position does not increase by one)."""
    first = position_ids[..., :1] - 1
    return (torch.diff(position_ids, prepend=first, dim=-1) != 1).cumsum(-1)


def block_causal_mask(position_ids: torch.Tensor) -> torch.Tensor:
    """The boolean [T, T] attention pattern of one row: causal and block-diagonal by document."""
    seg = segment_ids(position_ids.reshape(-1))
    t = seg.shape[0]
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    return causal & (seg[:, None] == seg[None, :])


def time_attention(shape, seq_len: int = 256, batch_size: int = 8, steps: int = 3,
                   implementations: Sequence[str] = ("eager", "sdpa")) -> dict[str, float]:
    """Median seconds per forward+backward of a SmolLM3 of ``shape`` (a scale's ModelShape) on
    packed rows, per attention implementation. Steps alternate between implementations so that a
    shared, busy machine slows both alike (side by side, not one after the other)."""
    from transformers import SmolLM3Config, SmolLM3ForCausalLM

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, shape.vocab_size, (batch_size, seq_len), generator=g)
    pos = torch.from_numpy(np.stack([positions_for([0, seq_len // 3, seq_len // 2], seq_len)] * batch_size))
    models = {}
    for impl in implementations:
        torch.manual_seed(0)
        cfg = SmolLM3Config(hidden_size=shape.hidden_size, num_hidden_layers=shape.num_hidden_layers,
                            num_attention_heads=shape.num_attention_heads, num_key_value_heads=shape.num_key_value_heads,
                            intermediate_size=shape.intermediate_size, vocab_size=shape.vocab_size,
                            attn_implementation=impl, pad_token_id=2, bos_token_id=0, eos_token_id=1)
        models[impl] = SmolLM3ForCausalLM(cfg)
        models[impl](input_ids=ids, position_ids=pos, labels=ids, use_cache=False).loss.backward()  # warm-up
    times: dict[str, list[float]] = {impl: [] for impl in implementations}
    for _ in range(steps):
        for impl, model in models.items():
            t0 = time.perf_counter()
            model(input_ids=ids, position_ids=pos, labels=ids, use_cache=False).loss.backward()
            times[impl].append(time.perf_counter() - t0)
    return {impl: float(np.median(t)) for impl, t in times.items()}
