"""Claims as data, and the one rule that judges them.

A chapter declares each claim of the recipe once, before any run: what is claimed, where, which metric, in which
direction, and the *margin*, the smallest effect that matters in the metric's units. :func:`decide` applies
:data:`RULE` to per-seed values of a baseline arm and the recipe's arm and returns a :class:`Verdict` with its
numbers; :meth:`smolbook.Chapter.judge` records it on the report card.

Implementation checks (a parameter count against the published one, the layer pattern, a schedule's shape) are
:class:`Check` s: they say whether the code builds what the recipe describes, they are reported in their own table
and are never counted as evidence for a claim.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from smolbook.errors import SmolbookError

DIRECTIONS = ("no_worse", "better")
STATUSES = ("holds", "differs", "inconclusive")
CONFIDENCE = 0.90
MIN_SEEDS = 3
RULE = (
    "Per seed, d = recipe arm - baseline, signed so that d > 0 means the recipe arm is better; the interval is the "
    f"two-sided {CONFIDENCE:.0%} t-interval of the mean of d over seeds; the margin m (the smallest effect that "
    "matters, in the metric's units) was fixed before the runs. 'No worse': holds if the interval's lower end "
    "is above -m, differs if its upper end is below -m. 'Better': holds if the lower end is above +m, differs if "
    "the upper end is below +m (it did not help by the margin). Anything else is inconclusive, and so is a claim "
    f"with fewer than {MIN_SEEDS} seeds per arm (under-powered) or a probe at chance in both arms."
)

# Upper 95% quantiles of Student's t (two-sided 90% intervals) for 1..30 degrees of freedom.
_T95 = (6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812, 1.796, 1.782, 1.771, 1.761, 1.753,
        1.746, 1.740, 1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697)


def t_quantile_95(df: int) -> float:
    """Student's t 0.95 quantile (past 30 degrees of freedom, the 30-df value: slightly conservative)."""
    if df < 1:
        raise SmolbookError(f"a t-interval needs at least 1 degree of freedom (2 seeds), got {df}")
    return _T95[min(df, len(_T95)) - 1]


@dataclass(frozen=True)
class Claim:
    """An empirical claim of the recipe, declared before the run that tests it.

    ``metric`` names what is measured (with units); ``higher_is_better`` orients it; ``margin`` is the smallest
    effect that matters, in the metric's units; ``chance`` is a probe's chance level (values at or below
    ``chance + margin`` in both arms make the claim inconclusive: the probe did not move).
    """

    claim: str
    source: str
    metric: str
    direction: str
    margin: float
    higher_is_better: bool = False
    chance: float | None = None
    kind: str = "empirical"

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise SmolbookError(f"claim '{self.claim}': direction must be one of {', '.join(DIRECTIONS)}, "
                                f"got '{self.direction}'")
        if not (self.margin >= 0 and math.isfinite(self.margin)):
            raise SmolbookError(f"claim '{self.claim}': margin must be a finite number >= 0, got {self.margin}")


@dataclass(frozen=True)
class Check:
    """An implementation check: does the code build what the recipe describes? Never evidence for a claim."""

    claim: str
    source: str = ""


@dataclass
class Verdict:
    """The decision on one claim, with every number it rests on."""

    claim: Claim
    status: str
    reason: str
    effect: float | None  # mean of the signed per-seed differences (positive = recipe better)
    interval: tuple[float, float] | None
    baseline: str
    recipe: str
    values: dict[str, list[float]] = field(default_factory=dict)  # arm -> value per seed
    note: str = ""

    @property
    def n_seeds(self) -> int:
        return min((len(v) for v in self.values.values()), default=0)

    def measured(self, digits: int = 4) -> str:
        """One line: both arms' means and seed spreads, the effect, its interval and the margin, the reason."""
        def arm(name: str) -> str:
            v = self.values[name]
            sp = f", seed spread {max(v) - min(v):.{digits}f}" if len(v) > 1 else ""
            return f"{name} {statistics.fmean(v):.{digits}f}{sp}"
        c = self.claim
        parts = [f"{c.metric}: {arm(self.recipe)} vs {arm(self.baseline)} ({self.n_seeds} seeds)"]
        if self.effect is not None:
            ci = "" if self.interval is None else \
                f", {CONFIDENCE:.0%} CI [{self.interval[0]:+.{digits}f}, {self.interval[1]:+.{digits}f}]"
            parts.append(f"effect {self.effect:+.{digits}f}{ci} against margin {c.margin:.{digits}g} "
                         f"(positive = {self.recipe} better)")
        parts.append(self.reason + (f"; {self.note}" if self.note else ""))
        return "; ".join(parts)

    def record(self, scale: str) -> dict[str, Any]:
        """The report card's entry (``records/<chapter>.json`` ``verdicts``)."""
        c = self.claim
        return {"claim": c.claim, "measured": self.measured(), "status": self.status, "source": c.source,
                "scale": scale, "kind": c.kind, "metric": c.metric, "direction": c.direction, "margin": c.margin,
                "interval": None if self.interval is None else list(self.interval), "effect": self.effect,
                "n_seeds": self.n_seeds, "values": self.values, "rule": RULE}


def _interval(diffs: Sequence[float]) -> tuple[float, float]:
    n = len(diffs)
    mean = statistics.fmean(diffs)
    half = t_quantile_95(n - 1) * statistics.stdev(diffs) / math.sqrt(n)
    return mean - half, mean + half


def decide(claim: Claim, baseline: Sequence[float], recipe: Sequence[float], *, baseline_name: str = "baseline",
           recipe_name: str = "recipe", at_chance: bool | None = None, min_seeds: int = MIN_SEEDS,
           max_effect: float | None = None, note: str = "") -> Verdict:
    """Apply :data:`RULE` to per-seed values of the baseline arm and the recipe arm (same seed order).

    ``at_chance`` overrides the chance test of ``claim.chance`` (e.g. a probe with its own control);
    ``max_effect`` is the largest effect this run could show at all (e.g. how far weight decay can move a norm in
    so many steps): below the margin, the run cannot decide the claim and it is under-powered.
    """
    b, r = [float(x) for x in baseline], [float(x) for x in recipe]
    if len(b) != len(r):
        raise SmolbookError(f"claim '{claim.claim}': compared seed by seed, got {len(b)} baseline and {len(r)} "
                            f"recipe values; run both arms on the same seeds")
    if not b:
        raise SmolbookError(f"claim '{claim.claim}': no values to judge; run the arms first")
    if baseline_name == recipe_name:
        raise SmolbookError(f"claim '{claim.claim}': the two arms need different names")
    values = {baseline_name: b, recipe_name: r}
    sign = 1.0 if claim.higher_is_better else -1.0
    diffs = [sign * (y - x) for x, y in zip(b, r)]
    effect = statistics.fmean(diffs)

    def verdict(status: str, reason: str, interval: tuple[float, float] | None = None) -> Verdict:
        return Verdict(claim, status, reason, effect, interval, baseline_name, recipe_name, values, note)

    if max_effect is not None and max_effect < claim.margin:
        return verdict("inconclusive", f"under-powered: the largest effect this run can show is {max_effect:.4g}, "
                                       f"below the margin {claim.margin:g}")
    if at_chance is None and claim.chance is not None:
        at_chance = max(statistics.fmean(b), statistics.fmean(r)) <= claim.chance + claim.margin
    if at_chance:
        return verdict("inconclusive", f"the probe stays at chance in both arms (chance {claim.chance})"
                       if claim.chance is not None else "the probe stays at chance in both arms")
    if len(diffs) < max(2, min_seeds):
        return verdict("inconclusive", f"under-powered: {len(diffs)} seed(s) per arm, the rule needs {min_seeds}")
    lo, hi = _interval(diffs)
    m = claim.margin
    threshold = -m if claim.direction == "no_worse" else m
    if lo > threshold:
        reason = ("the whole interval lies above -margin: no worse" if claim.direction == "no_worse"
                  else "the whole interval lies above +margin: better by more than the margin")
        return verdict("holds", reason, (lo, hi))
    if hi < threshold:
        reason = ("the whole interval lies below -margin: worse by more than the margin"
                  if claim.direction == "no_worse" else "the whole interval lies below +margin: it did not help by "
                                                        "the margin")
        return verdict("differs", reason, (lo, hi))
    return verdict("inconclusive", "the interval straddles the margin: the seeds cannot tell", (lo, hi))


def check_record(check: Check, measured: str, ok: bool, scale: str) -> dict[str, Any]:
    """The report card's entry for an implementation check (``holds`` when the code matches the recipe)."""
    return {"claim": check.claim, "measured": measured, "status": "holds" if ok else "differs",
            "source": check.source, "scale": scale, "kind": "implementation", "metric": None,
            "direction": "check", "margin": None, "interval": None, "effect": None, "n_seeds": None,
            "values": None, "rule": "An implementation check: the code builds what the recipe describes. It is "
                                    "not evidence that the recipe's choice helps."}
