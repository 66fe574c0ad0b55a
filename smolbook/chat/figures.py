"""Figures for the chat-template chapter: renders side by side, and a loss mask drawn over tokens."""
from __future__ import annotations

import textwrap
from typing import Any, Sequence


def draw_renders(renders: dict[str, str], width: int = 44, max_lines: int = 60) -> Any:
    """One monospace panel per rendered text (title = mode), long lines wrapped, special tokens in bold colour."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(renders), figsize=(3.3 * len(renders), 9))
    for ax, (title, text) in zip(axes, renders.items()):
        lines = []
        for line in text.split("\n"):
            lines += textwrap.wrap(line, width, drop_whitespace=False, break_on_hyphens=False) or ["⏎"]
        if len(lines) > max_lines:
            lines = lines[:max_lines - 1] + [f"… ({len(lines) - max_lines + 1} more lines)"]
        for i, line in enumerate(lines):
            marker = any(tag in line for tag in ("<|im_start|>", "<|im_end|>", "<think>", "</think>"))
            ax.text(0, 1 - i / max_lines, line, family="monospace", fontsize=6.2, va="top",
                    color="tab:red" if marker else "black", weight="bold" if marker else "normal",
                    transform=ax.transAxes)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def draw_loss_mask(tokens: Sequence[str], mask: Sequence[int], per_row: int = 14) -> Any:
    """Each token as a box, green where the loss is computed (assistant), grey where it is masked."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rows = (len(tokens) + per_row - 1) // per_row
    fig, ax = plt.subplots(figsize=(per_row * 0.95, rows * 0.36 + 0.6))
    for i, (token, trained) in enumerate(zip(tokens, mask)):
        x, y = i % per_row, rows - 1 - i // per_row
        ax.add_patch(Rectangle((x, y), 0.96, 0.86, color="#7cc47c" if trained else "#dddddd"))
        label = token.replace("\n", "⏎").replace(" ", "·")
        ax.text(x + 0.48, y + 0.43, label if len(label) <= 12 else label[:11] + "…", ha="center", va="center",
                family="monospace", fontsize=6.5)
    ax.set_xlim(0, per_row)
    ax.set_ylim(0, rows)
    ax.axis("off")
    ax.set_title("assistant-only loss: green tokens are trained, grey tokens are masked (labels = -100)", fontsize=9)
    fig.tight_layout()
    return fig
