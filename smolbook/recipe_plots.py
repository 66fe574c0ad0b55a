"""The two figures of notebook 00 (the recipe as data): the learning rate over the whole run and the
stage mixtures, configs against the blog; the ledger's rows grouped into the chapter's verdicts, and the
scale's departures from the recipe as the chapter's numbers.

The drawing lives here so the notebook reads like a chapter; each function returns the figure and
leaves saving and showing to the caller. pyplot is imported inside the functions, so importing this
module costs nothing and works without a display.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smolbook.palette import STAGE_COLORS
from smolbook.recipe import LedgerRow, Recipe, human_tokens
from smolbook.scales import Scale, departures
from smolbook.schedules import sample, wsd_for

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

# One background colour per data stage, shared by the three panels of the schedule figure.
# The segments of the stage-shares bars: web is split into English and multilingual.
SEGMENT_NAMES = ["web (English)", "multilingual web", "code", "math", "other"]
SEGMENT_COLORS = ["#4c72b0", "#8fb0dd", "#dd8452", "#55a868", "#999999"]


def plot_lr_schedule(recipe: Recipe, scale: Scale) -> Figure:
    """Three panels: pretraining's WSD schedule over tokens with its stages shaded (and the blog's
    stage boundaries dashed), the two long-context runs, and the same WSD shape at ``scale`` with
    the scale's stage boundaries."""
    import matplotlib.pyplot as plt

    pre = recipe.runs["pretraining"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), gridspec_kw={"width_ratios": [2.2, 1.2, 1.2]})

    steps, mult = sample(3000, **pre.schedule.schedule_kwargs())
    ax = axes[0]
    ax.plot([s * pre.tokens_per_step / 1e12 for s in steps], [m * pre.schedule.learning_rate for m in mult], color="k")
    for s in recipe.pretraining_stages:
        ax.axvspan(s.start_tokens / 1e12, s.end_tokens / 1e12, color=STAGE_COLORS[s.name], zorder=0)
        ax.text((s.start_tokens + s.end_tokens) / 2e12, pre.schedule.learning_rate * 0.06,
                f"{s.name}\n{human_tokens(s.tokens)}", ha="center", fontsize=8)
    # The blog's stage boundaries (8T, 10T, 11.1T), read from the blog facts, dashed.
    for f in recipe.blog_facts:
        if f.config in ("stable-2.start_tokens", "decay.start_tokens", "decay.end_tokens"):
            ax.axvline(f.value / 1e12, color="tab:red", ls="--", lw=1)
    ax.plot([], [], color="tab:red", ls="--", lw=1, label="blog's boundaries")
    ax.legend(loc="lower left", fontsize=8)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    ax.set(title="Pretraining (stage1_8T → stage3_9T_11T)", xlabel="tokens (T)", ylabel="learning rate", ylim=(0, 2.3e-4))

    ax = axes[1]
    offset = 0.0
    for name in ("lc-32k", "lc-64k"):
        run = recipe.runs[name]
        steps, mult = sample(1000, **run.schedule.schedule_kwargs())
        xs = [offset + s * run.tokens_per_step / 1e9 for s in steps]
        ax.plot(xs, [m * run.schedule.learning_rate for m in mult], color="k")
        ax.axvspan(xs[0], xs[-1], color=STAGE_COLORS[name], zorder=0)
        ax.text(xs[0] + 0.3 * (xs[-1] - xs[0]), run.schedule.learning_rate * 0.12,
                f"{name}\nθ={run.rope_theta / 1e6:g}M\n{human_tokens(run.tokens)}", ha="center", fontsize=9)
        offset = xs[-1]
    ax.set(title="Long context (two runs)", xlabel="tokens after pretraining (B)", ylim=(0, 2.3e-5))

    kw = wsd_for(scale.pretrain_steps, scale.warmup_steps, decay_fraction=scale.lr_decay_fraction())
    steps, mult = sample(min(2000, scale.pretrain_steps + 1), **kw)
    ax = axes[2]
    unit, div = ("M", 1e6) if scale.pretrain_tokens >= 1e6 else ("k", 1e3)
    ax.plot([s * scale.tokens_per_step / div for s in steps], [m * scale.learning_rate for m in mult], color="k")
    for name, (lo, hi) in scale.stage_token_boundaries().items():
        ax.axvspan(lo / div, hi / div, color=STAGE_COLORS[name], zorder=0)
    ax.set(title=f"This book at scale '{scale.name}'", xlabel=f"tokens ({unit})", ylim=(0, scale.learning_rate * 1.15))
    fig.tight_layout()
    return fig


def _segments(row: dict) -> list[float]:
    """A stage's bar: English web (web minus multilingual), multilingual web, code, math, other."""
    return [row["web"] - row["multilingual"], row["multilingual"], row["code"], row["math"], row.get("other", 0.0) or 0.0]


def plot_stage_shares(config_shares: pd.DataFrame, blog_shares: pd.DataFrame) -> Figure:
    """Stacked horizontal bars of each stage's mixture in percent, the configs' (solid) above the
    blog's (pale) where the blog states one.

    Both tables have one row per stage and the columns web (including multilingual), multilingual,
    code, math and, for the configs, other; ``config_shares`` gives the stages in order (first stage
    drawn at the top).
    """
    import matplotlib.pyplot as plt

    bars, y = [], 0.0
    for s in reversed(list(config_shares.index)):
        if s in blog_shares.index:
            bars.append((y, f"{s} · blog", _segments(blog_shares.loc[s].to_dict()), True))
            y += 1
        bars.append((y, f"{s} · configs", _segments(config_shares.loc[s].to_dict()), False))
        y += 1.5   # a gap between stages
    fig, ax = plt.subplots(figsize=(10, 4.6))
    for y, label, segs, is_blog in bars:
        left = 0.0
        for value, color, name in zip(segs, SEGMENT_COLORS, SEGMENT_NAMES):
            ax.barh(y, value, left=left, color=color, alpha=0.45 if is_blog else 1.0, edgecolor="white",
                    label=name if y == 0 else None)
            if value >= 2.5:
                ax.text(left + value / 2, y, f"{value:.1f}", ha="center", va="center", fontsize=8,
                        color="black" if is_blog else "white")
            left += value
    ax.set_yticks([b[0] for b in bars], [b[1] for b in bars])
    ax.set(xlabel="share of the stage's mixture (%)", xlim=(0, 100),
           title="Stage mixtures: released configs (solid) vs the blog (pale)")
    ax.legend(ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class LedgerVerdict:
    """One group of the blog's statements (e.g. its data mixtures), judged as a whole against the configs."""

    claim: str
    measured: str
    agrees: bool


def ledger_verdicts(rows: Sequence[LedgerRow]) -> list[LedgerVerdict]:
    """One verdict per group of the ledger's compared rows, in the order the groups first appear: it holds when
    every statement of the group agrees with the configs within its stated precision. ``measured`` lists the
    statements that differ, or all of them when none does, so the report card shows what was compared."""
    groups: dict[str, list[LedgerRow]] = {}
    for r in rows:
        if r.kind == "compared":
            groups.setdefault(r.group, []).append(r)
    verdicts = []
    for group, grp in groups.items():
        bad = [r for r in grp if not r.agrees]
        measured = ("all agree: " if not bad else "differs: ") + "; ".join(
            f"{r.topic} blog {r.blog} vs configs {r.config.split(' (')[0]}" for r in (bad or grp))
        verdicts.append(LedgerVerdict(f"The blog's {group} statements match the released configs ({len(grp)} checked)",
                                      measured, not bad))
    return verdicts


def departure_numbers(scale: Scale) -> list[dict]:
    """The arguments of ``book.number`` for each phase whose share of pretraining the recipe states: this scale's
    share and how many times the recipe's it is. A phase the recipe gives no tokens for has no factor to report."""
    return [{"name": f"{row['phase']} share of pretraining at {scale.name}",
             "value": round(row[f"{scale.name} share of pretraining"], 4),
             "note": f"{row['x recipe share']:.0f}x the recipe's share (a scale choice)"}
            for row in departures(scale) if row["x recipe share"] is not None]
