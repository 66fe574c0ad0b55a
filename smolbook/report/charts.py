"""The report card's figures: the verdict chart (every empirical claim's effect and interval against its margin,
coloured by verdict) and the run's time per chapter.

Claims are measured in different units (nats, accuracy, a norm), so the chart divides each effect and interval by
that claim's margin: on its axis the margin is always 1, and where an interval has to lie to decide is the same
picture for every claim: to the right of the threshold (-1 for "no worse", +1 for "better") it holds, to the left
it differs, across it the seeds cannot tell.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from smolbook.palette import VERDICT_COLORS

CLAIM_CHARS = 54      # a claim's label on the chart, cut to this many characters
MIN_LIMIT = 2.5       # the chart shows at least -2.5 ... +2.5 margins
MAX_LIMIT = 8.0       # and at most +-8: an effect further out is drawn at the edge, its value written beside it


def empirical_verdicts(verdicts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report card's empirical claims (implementation checks are not evidence and have no effect)."""
    return [v for v in verdicts if (v.get("kind") or "empirical") == "empirical"]


def _num(x: float) -> str:
    return f"{x:+.3g}"


def effect_summary(v: dict[str, Any]) -> str:
    """A verdict in one short line: ``effect [interval] vs margin m`` in the claim's units."""
    margin = v.get("margin")
    vs = f" vs margin {margin:.3g}" if margin is not None else ""
    if v.get("effect") is None:
        return "not measured" + vs
    interval = v.get("interval")
    ci = f" [{_num(interval[0])}, {_num(interval[1])}]" if interval else " (no interval)"
    return f"{_num(v['effect'])}{ci}{vs}"


def verdict_chart_rows(verdicts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the chart draws, one row per empirical claim with an effect: the effect, its interval and the
    deciding threshold in margins (a margin of 0 leaves the claim's own units), its verdict, seeds and items."""
    rows = []
    for v in empirical_verdicts(verdicts):
        if v.get("effect") is None:
            continue
        margin = float(v.get("margin") or 0.0)
        unit = margin if margin > 0 else 1.0
        interval = v.get("interval")
        rows.append({
            "chapter": str(v.get("chapter", "")), "claim": str(v.get("claim", "")), "status": str(v.get("status")),
            "x": v["effect"] / unit, "lo": interval[0] / unit if interval else None,
            "hi": interval[1] / unit if interval else None,
            "threshold": (1.0 if v.get("direction") == "better" else -1.0) if margin > 0 else 0.0,
            "seeds": v.get("n_seeds"), "items": v.get("items"), "at_chance": bool(v.get("at_chance"))})
    return rows


def _label(text: str) -> str:
    return text if len(text) <= CLAIM_CHARS else text[: CLAIM_CHARS - 1].rstrip() + "…"


def _beside(row: dict[str, Any]) -> str:
    parts = [f"{row['seeds']} seeds"] if row["seeds"] else []
    if row["items"] is not None:
        parts.append(f"{row['items']:,} items")
    if row["at_chance"]:
        parts.append("at chance")
    return " · ".join(parts)


def verdict_chart(verdicts: Sequence[dict[str, Any]], path: str | Path, title: str | None = None,
                  group_by_chapter: bool = True) -> Path | None:
    """Draw the verdict chart of ``verdicts`` (report card entries) into ``path`` (PNG); None when no empirical
    claim has an effect to draw. One row per claim, grouped under its chapter: the effect (a dot; hollow when the
    rule stopped before an interval, e.g. a probe at chance) and its 90% interval in margins, over the claim's
    deciding band, coloured by verdict; seeds, probe items and "at chance" beside it."""
    rows = verdict_chart_rows(verdicts)
    if not rows:
        return None
    entries: list[tuple[str, Any]] = []
    last = None
    for r in rows:
        if group_by_chapter and r["chapter"] != last:
            entries.append(("chapter", r["chapter"]))
        last = r["chapter"]
        entries.append(("claim", r))
    spread = [abs(x) for r in rows for x in (r["x"], r["lo"], r["hi"], r["threshold"]) if x is not None]
    lim = min(max(MIN_LIMIT, 1.15 * max(spread)), MAX_LIMIT)
    fig = Figure(figsize=(6.5, 0.9 + 0.3 * len(entries)))
    ax = fig.subplots()
    clip = lambda x: max(-lim, min(lim, x))  # noqa: E731
    for y, (what, r) in enumerate(entries):
        if what == "chapter":
            continue
        t = r["threshold"]
        ax.add_patch(Rectangle((t, y - 0.42), lim - t, 0.84, color=VERDICT_COLORS["holds"], alpha=0.09, lw=0))
        ax.add_patch(Rectangle((-lim, y - 0.42), t + lim, 0.84, color=VERDICT_COLORS["differs"], alpha=0.09, lw=0))
        ax.plot([t, t], [y - 0.42, y + 0.42], color="#59636e", lw=0.9)
        color = VERDICT_COLORS.get(r["status"], "#59636e")
        if r["lo"] is not None:
            ax.plot([clip(r["lo"]), clip(r["hi"])], [y, y], color=color, lw=2.4, solid_capstyle="butt")
        x = clip(r["x"])
        marker = "o" if x == r["x"] else (">" if r["x"] > 0 else "<")
        ax.plot([x], [y], marker=marker, ms=6, color=color, mfc=color if r["lo"] is not None else "white", mew=1.4)
        if marker != "o":
            ax.text(x - 0.12 if r["x"] > 0 else x + 0.12, y - 0.3, f"{r['x']:+.3g}", fontsize=7, color=color,
                    ha="right" if r["x"] > 0 else "left")
        ax.text(1.01, y, _beside(r), transform=ax.get_yaxis_transform(), fontsize=8.5, va="center",
                color="#59636e", style="italic" if r["at_chance"] else "normal")
    ax.axvline(0, color="#1f2328", lw=0.6)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(len(entries) - 0.5, -0.5)
    ax.set_yticks(range(len(entries)), [_label(r["claim"]) if w == "claim" else r for w, r in entries], fontsize=9)
    for label, (what, _) in zip(ax.get_yticklabels(), entries):
        if what == "chapter":
            label.set_fontweight("bold")
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel("effect ÷ margin (each claim's units divided by its margin; > 0: the recipe arm is better)",
                  fontsize=9)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    handles = [Line2D([], [], color=c, lw=2.4, marker="o", label=s) for s, c in VERDICT_COLORS.items()]
    handles += [Line2D([], [], color="#59636e", lw=0, marker="o", mfc="white", label="no interval (rule stopped)"),
                Rectangle((0, 0), 1, 1, color=VERDICT_COLORS["holds"], alpha=0.2, label="an interval here holds"),
                Rectangle((0, 0), 1, 1, color=VERDICT_COLORS["differs"], alpha=0.2, label="an interval here differs")]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8.5, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10, y=1.0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def chapter_seconds_chart(chapters: Sequence[dict[str, Any]], path: str | Path) -> Path | None:
    """Draw the run's seconds per chapter (report card ``chapters``) as horizontal bars into ``path``; None when
    no chapter has a time."""
    timed = [(c["name"], float(c["seconds"])) for c in chapters if c.get("seconds")]
    if not timed:
        return None
    fig = Figure(figsize=(7.5, 0.6 + 0.26 * len(timed)))
    ax = fig.subplots()
    ys = range(len(timed))
    ax.barh(list(ys), [s for _, s in timed], color="#0b63c4", height=0.65)
    for y, (_, s) in zip(ys, timed):
        ax.text(s, y, f" {s:,.0f} s", va="center", fontsize=7.5, color="#59636e")
    ax.set_yticks(list(ys), [n for n, _ in timed], fontsize=8)
    ax.set_ylim(len(timed) - 0.5, -0.5)
    total = sum(s for _, s in timed)
    ax.set_xlabel(f"seconds of notebook time (total {total / 60:,.1f} min)", fontsize=8.5)
    ax.set_xlim(0, 1.15 * max(s for _, s in timed))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
