"""Ablations: the same short pretraining run with one switch flipped, over seeds. Arms x seeds, nothing else.

A chapter (notebooks 03-06) names its *arms* (:class:`Arm`: overrides for the model config, the optimizer
and the data stream) and runs each arm for every seed of the scale with :func:`run_arms`: each arm x seed is a
:class:`~smolbook.train.spec.RunSpec` (:func:`arm_specs`: the single "stable" stage) trained by
:func:`smolbook.train.sweep`, the one path of every run of the book. The claims and the rule that judges them
live in :mod:`smolbook.claims`.

Ablation runs keep the learning rate constant after warm-up (no decay), so a shorter arm is exactly the first
part of a longer one: a claim about short-context loss can compare a short baseline run with the recipe arm
at the same step (:meth:`Ablation.values` with ``step``). The recipe arm itself (the recipe's own settings,
no overrides) is trained once per seed and shared by every chapter that runs it: the first chapter trains it,
the others read it back from ``output_dir/ablations/recipe-seedK`` while its fingerprint (spec, data, library
code) is unchanged; after a library edit it retrains like any other run.
"""
from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from smolbook.data import PreparedData
from smolbook.errors import SmolbookError
from smolbook.evaluate.longcontext import long_context_report
from smolbook.model import count_parameters, kv_cache_bytes_per_token, smollm3_config
from smolbook.scales import Scale, get_scale
from smolbook.train.run import fingerprint as run_fingerprint
from smolbook.train.spec import BudgetSpec, DataSpec, ModelSpec, RunSpec, ScheduleSpec
from smolbook.train.sweep import sweep


# The recipe arm (the recipe's own settings) is one run per seed, whichever ablation chapter asks for it first.
SHARED_CHAPTER, SHARED_RECIPE = "ablations", "recipe"


@dataclass(frozen=True)
class Arm:
    """One side of an ablation: overrides for ``smollm3_config`` (``model``), ``TrainConfig`` (``train``) and
    ``PretrainStream`` (``stream``, e.g. ``doc_masking``). ``match_params_to`` names an arm whose parameter
    count this one matches by widening its MLP (the one knob that leaves the attention under test alone)."""

    name: str
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    stream: dict[str, Any] = field(default_factory=dict)
    match_params_to: str | None = None
    recipe: bool = False  # the recipe's own choice (marked in tables and figures)
    seeds: tuple[int, ...] | None = None  # None: the scale's seeds (a reference arm outside any verdict may use fewer)
    tokens: int | None = None  # None: the ablation's tokens; fewer for an arm that only short-context claims need

    @property
    def shared(self) -> bool:
        """The recipe's own settings with no override: trained once per seed, shared by every chapter."""
        return self.recipe and not (self.model or self.train or self.stream or self.match_params_to)


@dataclass
class Run:
    """One arm x seed: its metric rows, final numbers, post-training evaluation and wall time."""

    arm: str
    seed: int
    output_dir: Path
    parameters: int
    kv_cache_bytes_per_token: int
    steps: int
    tokens: int
    seconds: float
    metrics: list[dict[str, Any]]
    final: dict[str, Any] = field(default_factory=dict)

    def series(self, key: str, kind: str = "train") -> tuple[list[int], list[float]]:
        rows = [r for r in self.metrics if r.get("kind") == kind and key in r]
        return [r["step"] for r in rows], [float(r[key]) for r in rows]

    def last(self, key: str, kind: str = "eval") -> float:
        _, v = self.series(key, kind)
        if not v:
            raise SmolbookError(f"run {self.arm}/seed {self.seed} logged no '{key}' ({kind} rows)")
        return v[-1]

    def at(self, key: str, step: int, kind: str = "eval") -> float:
        """The value of ``key`` logged at ``step`` (an evaluation step of this run)."""
        steps, v = self.series(key, kind)
        if step not in steps:
            raise SmolbookError(f"run {self.arm}/seed {self.seed} logged '{key}' at steps {steps}, not at {step}; "
                                f"compare at a step where both arms evaluated")
        return v[steps.index(step)]

    @property
    def tokens_per_second(self) -> float:
        """Median training throughput over steps (the first steps warm up; evaluation is not counted)."""
        _, v = self.series("tokens_per_s")
        v = v[min(3, len(v) - 1):] if v else v
        return float(statistics.median(v)) if v else float("nan")


@dataclass
class Ablation:
    """All runs of one ablation, with helpers to pull a metric per arm."""

    name: str
    scale: Scale
    arms: list[Arm]
    runs: list[Run]

    def arm_runs(self, arm: str) -> list[Run]:
        runs = [r for r in self.runs if r.arm == arm]
        if not runs:
            raise SmolbookError(f"ablation {self.name}: no arm called '{arm}' (arms: {', '.join(a.name for a in self.arms)})")
        return runs

    def values(self, arm: str, metric: str | Callable[[Run], float], step: int | None = None) -> list[float]:
        """One value per seed of ``arm``: an eval metric name (e.g. ``"valid_loss"``; its last value, or its value
        at ``step``) or a function of a run."""
        if callable(metric):
            return [float(metric(r)) for r in self.arm_runs(arm)]
        return [r.at(metric, step) if step is not None else r.last(metric) for r in self.arm_runs(arm)]

    def steps(self, arm: str) -> int:
        return self.arm_runs(arm)[0].steps

    def mean(self, arm: str, metric: str | Callable[[Run], float], step: int | None = None) -> float:
        """The mean over seeds of :meth:`values`: the single figure a verdict's note quotes for an arm."""
        return spread_summary(self.values(arm, metric, step))["mean"]

    def judge(self, book: Any, claim: Any, baseline: str, recipe: str, metric: str | Callable[[Run], float], *,
              step: int | None = None, **kw: Any) -> Any:
        """``book.judge`` (:meth:`smolbook.Chapter.judge`) on ``metric`` of two arms, seed by seed (at ``step``
        when given: both arms' evaluation at that step)."""
        return book.judge(claim, self.values(baseline, metric, step), self.values(recipe, metric, step),
                          baseline_name=baseline, recipe_name=recipe, **kw)

    def summary(self, metric: str | Callable[[Run], float]) -> dict[str, dict[str, Any]]:
        """Per arm: values over seeds, mean and spread (max - min)."""
        return {a.name: spread_summary(self.values(a.name, metric)) for a in self.arms}


def spread_summary(values: Sequence[float]) -> dict[str, Any]:
    values = [float(v) for v in values]
    return {"values": values, "mean": statistics.fmean(values), "spread": max(values) - min(values) if len(values) > 1 else None,
            "n": len(values)}


# ------------------------------------------------------------------------------------------
# Running arms x seeds: run specs through smolbook.train.sweep, like every run of the book
# ------------------------------------------------------------------------------------------
AfterFn = Callable[[torch.nn.Module, "Run"], dict]
SUMMARY_FILE = "ablation.json"  # the run's numbers and post-training evaluations, beside its metrics.jsonl


def after_key(key: str) -> Callable[[Callable[[torch.nn.Module, "Run"], dict]], AfterFn]:
    """Name a post-training evaluation: its result lands in ``run.final[key]`` and a run that already holds
    ``key`` for the same training (same fingerprint) is not evaluated again."""
    def wrap(fn: Callable[[torch.nn.Module, "Run"], dict]) -> AfterFn:
        fn.key = key  # type: ignore[attr-defined]
        return fn
    return wrap


def long_context_after(data: PreparedData, scale: str | Scale, lengths: Sequence[int] | None = None, *, n: int = 64,
                       seed: int = 0) -> AfterFn:
    """An ``after`` for :func:`run_arms`: :func:`smolbook.evaluate.longcontext.long_context_report` on the
    trained model (default lengths: 1x, 2x and 4x the training length), in ``run.final["long_context"]``."""
    @after_key("long_context")
    def fn(model: torch.nn.Module, run: "Run") -> dict:
        return long_context_report(model, data, scale, lengths, n=n, seed=seed)

    return fn


def long_context_value(key: str) -> Callable[["Run"], float]:
    """A metric for :meth:`Ablation.values`: one summary of a run's long-context report (e.g. ``"cloze_beyond"``)."""
    return lambda run: float(run.final["long_context"][key])


def long_context_items(ab: "Ablation") -> dict[str, int]:
    """The held-out items behind each seed's long-context values past the training length, the fewest over the runs
    (what a verdict states): ``cloze`` the distinct held-out facts (the same people are asked at every distance
    beyond), ``distances`` how many distances beyond, ``ruler`` the RULER prompts (drawn afresh per length)."""
    reps = [r.final["long_context"] for r in ab.runs]
    beyond = [[row for row in rep["cloze"] if row["length"] > rep["train_length"]] for rep in reps]
    return {"cloze": min(max((row["n"] for row in rows), default=0) for rows in beyond),
            "distances": min(len(rows) for rows in beyond),
            "ruler": min(sum(row["n"] for row in rep.get("ruler", []) if row["multiple"] > 1) for rep in reps)}


def long_context_reports(ab: "Ablation") -> dict[str, list[dict[str, Any]]]:
    """Per arm (labelled, the recipe marked), its runs' long-context reports: what ``plot_report`` draws."""
    return {a.name + (" (recipe)" if a.recipe else ""): [r.final["long_context"] for r in ab.arm_runs(a.name)]
            for a in ab.arms}


def arm_slug(name: str) -> str:
    """An arm's name as a folder name (``RoPE everywhere`` -> ``RoPE-everywhere``)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")
    if not slug:
        raise SmolbookError(f"arm name {name!r} has no letters or digits to name its run folder")
    return slug


def arm_specs(name: str, arms: Sequence[Arm], scale: str | Scale, output_dir: str | Path, data: PreparedData, *,
              seeds: Sequence[int] | None = None, tokens: int | None = None) -> dict[tuple[str, int], RunSpec]:
    """The run spec of every arm x seed: a fresh ``smollm3_config(scale, **arm.model)`` (MLP widened to match
    another arm's parameters when asked), the "stable" stage of ``arm.tokens`` or ``tokens`` (the scale's
    ``ablation_tokens``), a constant learning rate after warm-up, ``arm.train`` optimizer settings, the ablation
    evaluation at every ``eval_every_steps``, no checkpoints but the final one. The shared recipe arm is the run
    ``ablations/recipe-seedK`` whichever chapter asks for it; the others are ``<name>/<arm>-seedK``."""
    s = get_scale(scale)
    seeds = list(s.seeds if seeds is None else seeds)
    tokens = s.ablation_tokens if tokens is None else int(tokens)
    names = [a.name for a in arms]
    if len(set(names)) != len(names) or not arms:
        raise SmolbookError(f"ablation {name}: arms need distinct names, got {names}")
    configs = {a.name: smollm3_config(s, tokenizer=data.tokenizer, **a.model) for a in arms}
    overrides = {a.name: dict(a.model) for a in arms}
    for a in arms:
        if a.match_params_to is not None:
            if a.match_params_to not in configs:
                raise SmolbookError(f"ablation {name}: arm {a.name} matches parameters of unknown arm '{a.match_params_to}'")
            matched = match_parameters(configs[a.name], count_parameters(configs[a.match_params_to]))
            overrides[a.name]["intermediate_size"] = matched.intermediate_size
        unknown = sorted(set(a.stream) - {"doc_masking"})
        if unknown:
            raise SmolbookError(f"ablation {name}: arm {a.name} sets stream option(s) {', '.join(unknown)}; an arm's "
                                "stream may set doc_masking")
    every = s.eval_every_steps
    specs: dict[tuple[str, int], RunSpec] = {}
    for a in arms:
        arm_tokens = tokens if a.tokens is None else int(a.tokens)
        steps = max(1, arm_tokens // s.tokens_per_step)
        if steps % every and steps > every:
            raise SmolbookError(f"ablation {name}: arm {a.name} runs {steps} steps, not a multiple of the "
                                f"evaluation interval {every}; give it a token budget of a whole number of "
                                f"intervals ({every * s.tokens_per_step:,} tokens each)")
        for seed in (seeds if a.seeds is None else list(a.seeds)):
            specs[a.name, seed] = RunSpec(
                chapter=SHARED_CHAPTER if a.shared else name,
                name=f"{SHARED_RECIPE if a.shared else arm_slug(a.name)}-seed{seed}", scale=s.name,
                output_dir=str(output_dir), phase="pretraining", seed=seed, corpus_seed=int(data.seed),
                model=ModelSpec(config=overrides[a.name]),
                data=DataSpec(stages=["stable"], doc_masking=bool(a.stream.get("doc_masking", True))),
                budget=BudgetSpec(steps=steps), schedule=ScheduleSpec(decay_fraction=0.0), optim=dict(a.train),
                evaluation="ablation", eval_every=every, checkpoint_every=0, final=False)
    return specs


def run_arms(name: str, arms: Sequence[Arm], scale: str | Scale, output_dir: str | Path, data: PreparedData, *,
             seeds: Sequence[int] | None = None, tokens: int | None = None, after: AfterFn | None = None,
             progress: bool = True, workers: int | None = None) -> Ablation:
    """Train every arm for every seed (the scale's seeds unless given) and collect the runs.

    The runs are :func:`arm_specs` trained by :func:`smolbook.train.sweep` (side by side in worker processes on a
    CPU; :mod:`smolbook.parallel`), so they are done, skipped and registered in ``checkpoints.json`` (with arm and
    seed) the way every run of the book is: by the run's fingerprint (spec, data, library code). The recipe arm
    (:attr:`Arm.shared`) trains once per seed and every chapter reads it back while nothing it depends on changes.
    ``after(model, run)`` adds post-training numbers to ``run.final[after.key]`` (see :func:`after_key`), kept with
    the run's fingerprint so the same training is not evaluated twice. ``data`` is ``prepare(scale, output_dir)``:
    the runs read the corpus of ``output_dir/data``.
    """
    if Path(data.root).resolve() != (Path(output_dir) / "data").resolve():
        raise SmolbookError(f"ablation {name}: the runs read {Path(output_dir) / 'data'}, but data was prepared in "
                            f"{data.root}: pass prepare(scale, output_dir)")
    s = get_scale(scale)
    specs = arm_specs(name, arms, s, output_dir, data, seeds=seeds, tokens=tokens)
    done = sweep(specs, workers=workers, progress=progress, desc=name)
    key = getattr(after, "key", "after") if after is not None else None
    runs = []
    for (arm, seed), sr in done.items():
        fingerprint = run_fingerprint(sr.spec)
        run = _run_of(arm, sr, s, data, fingerprint)
        if key is not None and key not in run.final:
            model = AutoModelForCausalLM.from_pretrained(sr.checkpoint).eval()
            run.final[key] = dict(after(model, run))
            del model
        _write_summary(run, fingerprint)
        runs.append(run)
    return Ablation(name, s, list(arms), runs)


def _run_of(arm: str, sr: Any, s: Scale, data: PreparedData, fingerprint: str) -> Run:
    """The ablation's view of one finished sweep run: its numbers, metrics and the evaluations kept for it (those
    written for the same ``fingerprint``: the same training)."""
    m = sr.spec.model
    cfg = smollm3_config(s, tokenizer=data.tokenizer, **m.config)
    steps = sr.spec.budget.steps
    elapsed = [r["elapsed_s"] for r in sr.result.rows("train") if "elapsed_s" in r]
    try:
        kept = json.loads((sr.spec.run_dir / SUMMARY_FILE).read_text())
        final = kept.get("final", {}) if kept.get("fingerprint") == fingerprint else {}
    except (OSError, ValueError):
        final = {}
    return Run(arm, sr.seed, sr.spec.run_dir, count_parameters(cfg), kv_cache_bytes_per_token(cfg, 2), steps,
               steps * s.tokens_per_step, float(elapsed[-1]) if elapsed else 0.0, sr.result.metrics, dict(final))


def _write_summary(run: Run, fingerprint: str) -> None:
    """The run's numbers beside its metrics.jsonl, so they can be read without the notebook's memory."""
    (run.output_dir / SUMMARY_FILE).write_text(json.dumps(
        {"fingerprint": fingerprint, "arm": run.arm, "seed": run.seed, "parameters": run.parameters,
         "kv_cache_bytes_per_token": run.kv_cache_bytes_per_token, "steps": run.steps, "tokens": run.tokens,
         "seconds": run.seconds, "tokens_per_second": run.tokens_per_second, "final": run.final},
        indent=1, default=str))


def match_parameters(config: Any, target: int) -> Any:
    """A copy of ``config`` whose MLP width makes its parameter count as close as possible to ``target``.

    Used to compare attention variants at equal parameters: GQA/MQA save attention weights, which go back
    into the MLP. The MLP has 3 x hidden x intermediate weights per layer, so the width moves in steps of
    3 x hidden x layers parameters.
    """
    cfg = config.__class__.from_dict(config.to_dict())
    base = count_parameters(cfg)
    per_unit = 3 * cfg.hidden_size * cfg.num_hidden_layers
    cfg.intermediate_size = int(cfg.intermediate_size + round((target - base) / per_unit))
    if cfg.intermediate_size < 1:
        raise SmolbookError(f"cannot match {target:,} parameters by changing the MLP width of this config")
    return cfg


# ------------------------------------------------------------------------------------------
# Tables and figures (kept here so notebook cells stay short)
# ------------------------------------------------------------------------------------------
def setup_table(ab: Ablation) -> str:
    """Markdown table of the runs' setup: per arm its switches, parameters, KV-cache bytes, steps, tokens, seeds, time."""
    lines = ["| arm | switches | parameters | KV cache / token (bf16) | steps x tokens/step | tokens / run | seeds | seconds / run |",
             "|---|---|---|---|---|---|---|---|"]
    for a in ab.arms:
        rs = ab.arm_runs(a.name)
        sw = ", ".join(f"{k}={v}" for d in (a.model, a.train, a.stream) for k, v in d.items()) or "(defaults)"
        if a.match_params_to:
            sw += f", MLP resized to match {a.match_params_to}'s parameters"
        mark = " (recipe, shared by the ablation chapters)" if a.shared else " (recipe)" if a.recipe else ""
        lines.append(f"| {a.name}{mark} | {sw} | {rs[0].parameters:,} | {rs[0].kv_cache_bytes_per_token:,} B | "
                     f"{rs[0].steps} x {rs[0].tokens // rs[0].steps:,} | {rs[0].tokens:,} | "
                     f"{', '.join(str(r.seed) for r in rs)} | {statistics.fmean(r.seconds for r in rs):.1f} |")
    return "\n".join(lines)


def plot_metric(ab: Ablation, key: str, kind: str = "eval", ax: Any = None, smooth: int = 1, ylabel: str | None = None) -> Any:
    """``key`` against step: thin lines per seed, a thick line for the mean over seeds, one colour per arm."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.4))
    for i, a in enumerate(ab.arms):
        color = f"C{i}"
        curves = []
        for r in ab.arm_runs(a.name):
            x, y = r.series(key, kind)
            if smooth > 1 and len(y) >= smooth:
                k = smooth
                y = [statistics.fmean(y[max(0, j - k + 1):j + 1]) for j in range(len(y))]
            ax.plot(x, y, color=color, lw=0.8, alpha=0.45)
            curves.append((x, y))
        n = min(len(y) for _, y in curves)
        if n:
            mean = [statistics.fmean(y[j] for _, y in curves) for j in range(n)]
            ax.plot(curves[0][0][:n], mean, color=color, lw=2, label=a.name + (" (recipe)" if a.recipe else ""))
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel or key.replace("_", " "))
    ax.legend(fontsize=8)
    return ax


def plot_final(ab: Ablation, metric: str | Callable[[Run], float], ax: Any = None, ylabel: str = "") -> Any:
    """Per-seed final values (dots) and their mean (bar) per arm."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 3.2))
    for i, a in enumerate(ab.arms):
        vals = ab.values(a.name, metric)
        ax.bar(i, statistics.fmean(vals), color=f"C{i}", alpha=0.35)
        ax.scatter([i] * len(vals), vals, color=f"C{i}", zorder=3)
    ax.set_xticks(range(len(ab.arms)), [a.name for a in ab.arms])
    ax.set_ylabel(ylabel or (metric if isinstance(metric, str) else ""))
    lo = min(v for a in ab.arms for v in ab.values(a.name, metric))
    hi = max(v for a in ab.arms for v in ab.values(a.name, metric))
    pad = (hi - lo) * 0.5 or abs(hi) * 0.01 or 0.01
    ax.set_ylim(lo - pad, hi + pad)
    return ax


def plot_kv_cache(kv: Mapping[str, int], scale_name: str, released: Mapping[str, int],
                  contexts: Sequence[int] = (4096, 32768, 65536, 131072), title: str = "SmolLM3-3B") -> Any:
    """Two panels: the KV-cache bytes per token of each arm at this scale (bars), and the released shape's KV cache
    per sequence in GiB against context length for each of ``released`` (bytes per token, bf16). The saving is
    per token at this scale but only matters multiplied by a long context, so the figure shows both."""
    import matplotlib.pyplot as plt  # lazy: importing the ablations needs no display

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    axes[0].bar(list(kv), list(kv.values()), color=[f"C{i}" for i in range(len(kv))])
    axes[0].set_ylabel(f"bytes / token ({scale_name})")
    for name, per_token in released.items():
        axes[1].plot(list(contexts), [per_token * c / 2**30 for c in contexts], "o-", label=name)
    axes[1].set(xscale="log", xlabel="context length (tokens)", ylabel="KV cache per sequence (GiB)", title=title)
    axes[1].legend()
    return fig


def arm_numbers(ab: Ablation, metrics: Mapping[str, tuple[str | Callable[[Run], float], str]], *,
                step: int | None = None, note: str = "{n} seed(s), spread {spread}",
                skip_nan: bool = False) -> list[dict[str, Any]]:
    """Each arm's mean of each metric as the arguments of ``book.number`` (``name``, ``value``, ``unit``,
    ``note``): the report card shows each arm's level, not only the difference a verdict judges.

    ``metrics`` maps a label to (metric for :meth:`Ablation.values`, unit); a number is named "<label>, <arm>",
    its value the mean over seeds rounded to 4 places, its ``note`` formatted with ``n`` (seeds) and ``spread``
    (max - min rounded to 4 places, None for one seed). ``skip_nan`` leaves out a mean that is not finite (a probe
    the scale's context is too short for), rather than recording a NaN the report card would reject.
    """
    rows = []
    for a in ab.arms:
        for label, (metric, unit) in metrics.items():
            s = spread_summary(ab.values(a.name, metric, step))
            if skip_nan and not math.isfinite(s["mean"]):
                continue
            spread = None if s["spread"] is None else round(s["spread"], 4)
            rows.append({"name": f"{label}, {a.name}", "value": round(s["mean"], 4), "unit": unit,
                         "note": note.format(n=s["n"], spread=spread)})
    return rows


def grad_norm_peak(after_step: int) -> Callable[[Run], float]:
    """A metric for :meth:`Ablation.values`: a run's largest gradient norm (before clipping) logged after
    ``after_step``. Warm-up's early spikes are left out: they come with the start of any run, not with the
    setting under test."""
    return lambda run: max(g for s, g in zip(*run.series("grad_norm")) if s > after_step)


def embedding_norm_drift(run: Run) -> float:
    """|norm(end) - norm(middle)| / norm(middle) of the mean embedding row norm: how much it still moves late
    in training (smaller = steadier). The middle is the logged point nearest half the steps."""
    steps, norms = run.series("embedding_norm", "eval")
    if len(norms) < 2:
        raise SmolbookError(f"run {run.arm}/seed {run.seed} logged fewer than 2 embedding norms")
    mid = min(range(len(steps)), key=lambda i: abs(steps[i] - steps[-1] / 2))
    return abs(norms[-1] - norms[mid]) / norms[mid]


def short_tokens(scale: str | Scale, fraction: float) -> int:
    """Tokens for an arm that only short-context claims need: ``fraction`` of the ablation's, rounded down to
    whole evaluation intervals (so the recipe arm has evaluated at that step), at least one interval."""
    s = get_scale(scale)
    every = s.eval_every_steps
    steps = max(every, int(s.ablation_steps * fraction) // every * every)
    return min(steps, s.ablation_steps) * s.tokens_per_step


def decay_shrink_bound(run: Run, weight_decay: float, from_step: int = 0) -> float:
    """The most that decoupled weight decay alone can shrink a weight over this run's steps after ``from_step``,
    1 - prod(1 - lr_t * wd): an embedding-norm effect of weight decay cannot exceed it, whatever the gradients do."""
    keep = 1.0
    for step, lr in zip(*run.series("lr")):
        if step > from_step:
            keep *= 1.0 - lr * weight_decay
    return 1.0 - keep
