"""Chapter 11's pictures of what SFT trains on: the loss mask of one conversation, and how full packed rows are."""
from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

ROLE_COLOURS = {"in loss": "#e6862a", "tool": "#5b8fd1", "masked": "#d9d9d9"}


def plot_loss_mask(ax: Any, pieces: Sequence[str], mask: Sequence[int], roles: Sequence[str], width: int = 48) -> None:
    """Tokens as cells, ``width`` per line: orange in the loss (assistant turns), blue the tool's result (masked),
    grey every other masked token (system, user, markers)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    # from the first user turn: the system block (metadata and tool descriptions) is long and all masked
    start = next((i for i, r in enumerate(roles) if r != "system"), 0)
    skipped = start
    mask, roles = mask[start:], roles[start:]
    code = [0 if m else 1 if r == "tool" else 2 for m, r in zip(mask, roles)]
    lines = -(-len(code) // width)
    grid = np.full(lines * width, np.nan)
    grid[: len(code)] = code
    ax.imshow(grid.reshape(lines, width), cmap=ListedColormap(list(ROLE_COLOURS.values())), vmin=0, vmax=2,
              aspect="auto", interpolation="nearest")
    ax.set(xticks=[], yticks=[], title=f"one conversation after its {skipped}-token system block (masked): "
                                       f"{len(code)} tokens, {width} per line")
    ax.legend(handles=[Patch(color=c, label=f"{k} ({sum(1 for x in code if x == i)})")
                       for i, (k, c) in enumerate(ROLE_COLOURS.items())], loc="lower right", fontsize=8)


def plot_packing(ax: Any, fill: dict[str, Any]) -> None:
    """Share of row positions holding a token: BFD packing against one conversation per padded row."""
    labels = [f"BFD\n{fill['bfd_rows']} rows", f"one per row\n{fill['padded_rows']} rows"]
    values = [fill["bfd_fill"], fill["padded_fill"]]
    bars = ax.bar(labels, values, color=["#e6862a", "#999999"])
    for bar, v in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, v + 0.01, f"{v:.1%}", ha="center", fontsize=9)
    ax.axhline(0.99, color="grey", ls=":", lw=0.8)
    ax.set(ylim=(0, 1.1), ylabel="tokens / row positions",
           title=f"packing one epoch ({fill['tokens']:,} tokens, rows of {fill['seq_len']})")


def plot_mask_and_packing(pieces: Sequence[str], mask: Sequence[int], roles: Sequence[str],
                          fill: dict[str, Any]) -> Any:
    """What one run trains on, in one figure: the loss mask of one conversation (:func:`plot_loss_mask`) beside how
    full the epoch's rows are (:func:`plot_packing`)."""
    fig, axes = plt.subplots(1, 2, figsize=(15, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    plot_loss_mask(axes[0], pieces, mask, roles)
    plot_packing(axes[1], fill)
    fig.tight_layout()
    return fig


def plot_per_domain(per_kind: pd.DataFrame, recipe: pd.DataFrame, kinds: Sequence[str], n_seeds: int) -> Any:
    """The SFT model per domain and mode (``per_kind``: rows per kind, a column per mode, mean over seeds) beside
    format adherence, language match and parsable tool calls per mode (means of the ``recipe`` records)."""
    colours = {"think": "C1", "no_think": "C0"}
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(15, 3.8), gridspec_kw={"width_ratios": [3, 1]})
    per_kind.plot.bar(ax=ax, color=colours, width=0.7)
    ax.set(ylabel="held-out score (mean over seeds)", ylim=(0, 1), xticklabels=kinds,
           title=f"The SFT model per domain and mode (recipe arm, {n_seeds} seeds)")
    ax.tick_params(axis="x", rotation=30)
    recipe.groupby("mode")[["format_ok", "language_match", "tool_call_validity"]].mean().T.plot.bar(
        ax=ax2, color=colours, width=0.7)
    ax2.set(ylim=(0, 1), title="format, language, parsable tool calls")
    ax2.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig
