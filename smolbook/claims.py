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
NO_SPREAD = 1e-12  # an arm whose seeds span at most this much did not vary
RULE = (
    "Per seed, d = recipe arm - baseline, signed so that d > 0 means the recipe arm is better; the interval is the "
    f"two-sided {CONFIDENCE:.0%} t-interval of the mean of d over seeds; the margin m (the smallest effect that "
    "matters, in the metric's units) was fixed before the runs. 'No worse': holds if the interval's lower end "
    "is above -m, differs if its upper end is below -m. 'Better': holds if the lower end is above +m, differs if "
    "the upper end is below +m (it did not help by the margin). Anything else is inconclusive. Before any "
    f"interval is computed, a claim is also inconclusive when it has fewer than {MIN_SEEDS} seeds per arm "
    "(under-powered), when a value is not a finite number, or when every arm run per seed gives the same value in "
    "all its seeds (it did not vary); and a probe (a claim with a chance level, judged on a stated number of held-out items) is "
    "inconclusive when its mean is within the margin of chance in both arms (it stays at chance) or when every "
    "seed gives the same value in an arm run per seed, or the arms differ by the same amount on every seed (the "
    "probe did not vary: no seed spread to build an interval on). An arm that is one reference checkpoint (not run per seed) is compared with every seed of the other arm."
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
    effect that matters, in the metric's units.

    ``chance`` makes the claim a *probe*: the value a model with no skill scores (0.25 for a 4-choice cloze, 0.0
    for exact match of a free answer or for a loss gain over a fact-absent control). A probe is judged on a stated
    number of held-out items (``items=`` of :func:`decide` / :meth:`smolbook.Chapter.judge`, required), and it
    cannot decide when it stays within ``chance + margin`` in both arms or gives the same value in every seed of
    an arm. ``accuracy=True`` says the metric is an accuracy or score in [0, 1] (exact match, cloze, a task score):
    such a claim must declare its ``chance``. Loss claims (nats) have no chance level and leave both unset.
    (``accuracy`` is the last field, so positional construction of the others is unchanged.)
    """

    claim: str
    source: str
    metric: str
    direction: str
    margin: float
    higher_is_better: bool = False
    chance: float | None = None
    kind: str = "empirical"
    accuracy: bool = False

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise SmolbookError(f"claim '{self.claim}': direction must be one of {', '.join(DIRECTIONS)}, "
                                f"got '{self.direction}'")
        if not (self.margin >= 0 and math.isfinite(self.margin)):
            raise SmolbookError(f"claim '{self.claim}': margin must be a finite number >= 0, got {self.margin}")
        if self.chance is not None and not math.isfinite(self.chance):
            raise SmolbookError(f"claim '{self.claim}': chance must be a finite number, got {self.chance}")
        if self.accuracy:
            if self.chance is None:
                raise SmolbookError(f"claim '{self.claim}': an accuracy claim ({self.metric}) needs its chance "
                                    "level: add chance=... (e.g. 0.25 for 4 choices, 0.0 for exact match)")
            if not 0.0 <= self.chance <= 1.0:
                raise SmolbookError(f"claim '{self.claim}': an accuracy's chance level lies in [0, 1], got "
                                    f"{self.chance}")
            if not self.higher_is_better:
                raise SmolbookError(f"claim '{self.claim}': an accuracy is higher-is-better; add "
                                    "higher_is_better=True")

    @property
    def probe(self) -> bool:
        """A claim with a chance level: judged on a stated number of items, and only off chance and with spread."""
        return self.chance is not None


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
    items: int | None = None  # held-out items each seed's value is computed on (required for a probe)
    reference: str | None = None  # the arm that is one reference checkpoint, not run per seed
    at_chance: bool = False  # a probe that stayed within its margin of chance in both arms

    @property
    def n_seeds(self) -> int:
        return min((len(v) for v in self.values.values()), default=0)

    def measured(self, digits: int = 4) -> str:
        """One line: both arms' means and seed spreads, seeds and items (and chance), the effect, its interval and
        the margin, the reason."""
        def arm(name: str) -> str:
            v = self.values[name]
            if name == self.reference:
                return f"{name} {v[0]:.{digits}f} (one reference checkpoint)"
            sp = f", seed spread {max(v) - min(v):.{digits}f}" if len(v) > 1 else ""
            return f"{name} {statistics.fmean(v):.{digits}f}{sp}"
        c = self.claim
        on = [f"{self.n_seeds} seeds"] + ([f"on {self.items:,} items"] if self.items is not None else []) + \
             ([f"chance {c.chance:g}"] if c.chance is not None else [])
        parts = [f"{c.metric}: {arm(self.recipe)} vs {arm(self.baseline)} ({', '.join(on)})"]
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
                "n_seeds": self.n_seeds, "items": self.items, "chance": c.chance, "reference": self.reference,
                "values": self.values, "reason": self.reason, "at_chance": self.at_chance,
                "rule": RULE}


def _interval(diffs: Sequence[float]) -> tuple[float, float]:
    n = len(diffs)
    mean = statistics.fmean(diffs)
    half = t_quantile_95(n - 1) * statistics.stdev(diffs) / math.sqrt(n)
    return mean - half, mean + half


def decide(claim: Claim, baseline: Sequence[float] | float, recipe: Sequence[float] | float, *, baseline_name: str = "baseline",
           recipe_name: str = "recipe", at_chance: bool | None = None, min_seeds: int = MIN_SEEDS,
           max_effect: float | None = None, note: str = "", items: int | None = None) -> Verdict:
    """Apply :data:`RULE` to per-seed values of the baseline arm and the recipe arm (same seed order).

    Each arm is either one value per seed (an arm run on the same seeds) or a single number: one reference
    checkpoint that was not run per seed (e.g. the model before SFT), compared with every seed of the other arm;
    then only the other arm's seeds carry the spread.

    ``items`` is the number of held-out items each seed's value is computed on (cloze questions, problems,
    prompts): required for a probe (a claim with ``chance``), optional for a loss. ``at_chance`` overrides the
    chance test of ``claim.chance`` (e.g. a probe with its own control); ``max_effect`` is the largest effect this
    run could show at all (e.g. how far weight decay can move a norm in so many steps): below the margin, the run
    cannot decide the claim and it is under-powered.
    """
    scalar = [isinstance(x, (int, float)) for x in (baseline, recipe)]
    if all(scalar):
        raise SmolbookError(f"claim '{claim.claim}': both arms are single values; at least one arm is run per seed")
    reference = baseline_name if scalar[0] else recipe_name if scalar[1] else None
    n = len(recipe) if scalar[0] else len(baseline)
    b, r = ([float(x)] * n if s else [float(v) for v in x] for x, s in zip((baseline, recipe), scalar))
    if len(b) != len(r):
        raise SmolbookError(f"claim '{claim.claim}': compared seed by seed, got {len(b)} baseline and {len(r)} "
                            f"recipe values; run both arms on the same seeds")
    if not b:
        raise SmolbookError(f"claim '{claim.claim}': no values to judge; run the arms first")
    if baseline_name == recipe_name:
        raise SmolbookError(f"claim '{claim.claim}': the two arms need different names")
    if items is not None and (isinstance(items, bool) or not isinstance(items, int) or items < 0):
        raise SmolbookError(f"claim '{claim.claim}': items must be a whole number >= 0, got {items!r}")
    if claim.probe and items is None:
        raise SmolbookError(f"claim '{claim.claim}': a probe (chance {claim.chance:g}) is judged on a stated number "
                            "of items; pass items= (the number of held-out items each seed's value is computed on)")
    if claim.accuracy:
        outside = [x for x in b + r if math.isfinite(x) and not 0.0 <= x <= 1.0]
        if outside:
            raise SmolbookError(f"claim '{claim.claim}': an accuracy lies in [0, 1], got {outside[0]}; is the "
                                "metric a loss? then drop accuracy= and chance=")
    values = {baseline_name: b, recipe_name: r}
    finite = all(math.isfinite(x) for x in b + r)
    sign = 1.0 if claim.higher_is_better else -1.0
    diffs = [sign * (y - x) for x, y in zip(b, r)]
    effect = statistics.fmean(diffs) if finite else None

    def verdict(status: str, reason: str, interval: tuple[float, float] | None = None,
                at_chance: bool = False) -> Verdict:
        return Verdict(claim, status, reason, effect, interval, baseline_name, recipe_name, values, note, items,
                       reference, at_chance)

    if max_effect is not None and max_effect < claim.margin:
        return verdict("inconclusive", f"under-powered: the largest effect this run can show is {max_effect:.4g}, "
                                       f"below the margin {claim.margin:g}")
    if not finite:
        return verdict("inconclusive", "a value is not a finite number: the run did not measure the claim")
    if claim.probe and items == 0:
        return verdict("inconclusive", "the probe scored no items")
    means = f"{baseline_name} mean {statistics.fmean(b):.4f}, {recipe_name} mean {statistics.fmean(r):.4f}"
    if at_chance is None and claim.chance is not None:
        at_chance = max(statistics.fmean(b), statistics.fmean(r)) <= claim.chance + claim.margin
        how = f"within chance {claim.chance:g} + margin {claim.margin:g}"
    else:
        how = "by its own control" + (f"; chance {claim.chance:g}" if claim.chance is not None else "")
    if at_chance:
        return verdict("inconclusive", f"the probe stays at chance in both arms ({how}): {means}", at_chance=True)
    if len(diffs) < max(2, min_seeds):
        return verdict("inconclusive", f"under-powered: {len(diffs)} seed(s) per arm, the rule needs {min_seeds}")
    # A probe whose seeds all give one value in an arm run per seed, or a measurement whose every per-seed arm gives
    # one value, carries no measure of its own noise (a zero-width interval): it cannot decide.
    per_seed = [name for name in values if name != reference]
    flat = [(name, values[name][0]) for name in per_seed if max(values[name]) - min(values[name]) <= NO_SPREAD]
    if flat and (claim.probe or len(flat) == len(per_seed)):
        which = " and ".join(f"{name} {x:.4f}" for name, x in flat)
        what = "the probe" if claim.probe else "the measurement"
        return verdict("inconclusive", f"{what} did not vary: {which} in all {len(diffs)} seeds")
    if claim.probe and max(diffs) - min(diffs) <= NO_SPREAD:
        # Two arms that score the same items identically on every seed (e.g. two trainings that changed no greedy
        # answer) give a zero-width interval: it measures no noise, so it decides nothing.
        return verdict("inconclusive", f"the probe did not vary: the arms differ by {diffs[0]:+.4f} on every one of "
                                       f"the {len(diffs)} seeds")
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
            "items": None, "chance": None, "values": None, "reason": None, "at_chance": False,
            "rule": "An implementation check: the code builds what the recipe describes. It is not evidence that the "
                    "recipe's choice helps."}
