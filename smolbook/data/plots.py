"""Figures of chapter 01 (data): stage mixtures, document lengths, a packed batch and its mask."""
from __future__ import annotations

from typing import Any

import numpy as np

from smolbook.data.corpus import DOMAINS
from smolbook.data.packing import block_causal_mask, pack_documents, segment_ids
from smolbook.data.products import PreparedData


CATEGORY_COLOURS = {"web": "#4C72B0", "multilingual-web": "#55A868", "code": "#C44E52", "math": "#8172B2",
                    "reasoning": "#CCB974"}


def stage_mixture_bars(recipe: Any, stages: list[str] | None = None):
    """Stacked bars: each stage's mixture by category (weights normalised by the stage's sum)."""
    import matplotlib.pyplot as plt

    stages = stages or recipe.stage_names
    fig, ax = plt.subplots(figsize=(8, 3.8))
    bottom = np.zeros(len(stages))
    for cat, colour in CATEGORY_COLOURS.items():
        vals = np.array([100 * recipe.stage(s).category_shares().get(cat, 0.0) for s in stages])
        ax.bar(stages, vals, bottom=bottom, label=cat, color=colour)
        for i, v in enumerate(vals):
            if v >= 4:
                ax.text(i, bottom[i] + v / 2, f"{v:.1f}", ha="center", va="center", fontsize=8, color="white")
        bottom += vals
    ax.set_ylabel("share of the stage's tokens (%)")
    ax.set_ylim(0, 100)
    ax.set_title("SmolLM3 mixtures by category (released nanotron configs)")
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def length_histograms(data: PreparedData, seq_len: int):
    """Document length (tokens, log scale) per domain, with the training context marked."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, len(DOMAINS), figsize=(14, 2.8), sharey=False)
    for ax, d in zip(axes, DOMAINS):
        lens = data.tokens["train"][d].lengths
        bins = np.logspace(np.log10(max(1, lens.min())), np.log10(lens.max() + 1), 30)
        ax.hist(lens, bins=bins, color=CATEGORY_COLOURS[d])
        ax.axvline(seq_len, color="k", ls="--", lw=1)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{d}\n{100 * (lens > seq_len).mean():.0f}% longer than {seq_len}", fontsize=9)
        ax.set_xlabel("tokens")
    axes[0].set_ylabel("documents")
    fig.tight_layout()
    return fig


def packed_batch_figure(batch: dict, tokenizer: Any, rows: int = 4, show_tokens: int = 96):
    """Left: document boundaries in the first ``rows`` rows (one colour per document). Right: the
    block-diagonal causal mask of row 0's first ``show_tokens`` tokens, as transformers infers it."""
    import matplotlib.pyplot as plt

    pos = batch["position_ids"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 3.6), gridspec_kw={"width_ratios": [2.2, 1]})
    seg = segment_ids(pos[:rows]).numpy()
    a.imshow(seg % 10, aspect="auto", cmap="tab10", interpolation="nearest")
    eos = tokenizer.eos_token_id
    for r in range(min(rows, pos.shape[0])):
        for t in np.where(batch["input_ids"][r].numpy() == eos)[0]:
            a.plot(t, r, "k|", ms=14)
    a.set_yticks(range(rows))
    a.set_xlabel("token position in the row (| = end-of-text)")
    a.set_ylabel("row")
    a.set_title("a packed batch: one colour per document")
    m = block_causal_mask(pos[0, :show_tokens]).numpy()
    b.imshow(m, cmap="Greys", interpolation="nearest")
    b.set_title(f"row 0 attention mask (first {show_tokens} tokens)")
    b.set_xlabel("key")
    b.set_ylabel("query")
    fig.tight_layout()
    return fig


def markdown_table(rows: list[dict], columns: list[str] | None = None, floatfmt: str = "{:g}") -> str:
    """A list of dicts as a Markdown table (no pandas in the environment)."""
    columns = columns or list(rows[0])

    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return floatfmt.format(v)
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def logits_match_alone(vocab_size: int, attn_implementation: str, seed: int = 0) -> dict[str, float]:
    """Max |logit difference| of a document packed after another vs the document alone, with
    intra-document masking on and off, in a small real SmolLM3ForCausalLM (eval, fp32)."""
    import torch
    from transformers import SmolLM3Config, SmolLM3ForCausalLM

    torch.manual_seed(seed)
    cfg = SmolLM3Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                        intermediate_size=64, vocab_size=vocab_size, attn_implementation=attn_implementation,
                        pad_token_id=2, bos_token_id=0, eos_token_id=1)
    model = SmolLM3ForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(seed)
    a, b = (torch.randint(3, vocab_size, (n,), generator=g).tolist() for n in (40, 50))
    out = {}
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([b]), use_cache=False).logits[0]
        for masking in (True, False):
            p = pack_documents([a, b], seq_len=90, doc_masking=masking)
            logits = model(input_ids=p["input_ids"], position_ids=p["position_ids"], use_cache=False).logits
            out["masking on" if masking else "masking off"] = float((logits[0, 40:] - alone).abs().max())
    return out
