"""Ablations: the same short pretraining run with one switch flipped, over seeds, and a stated verdict rule.

A chapter (notebooks 03-06) names its *arms* (:class:`Arm`: overrides for the model config, the trainer
and the data stream), runs each arm for every seed of the scale with :func:`run_arms` (training is
``smolbook.train.pretrain``, data ``smolbook.data.PretrainStream`` on the single "stable" stage), and
turns the measured numbers into a verdict with :func:`decide`, whose rule is :data:`VERDICT_RULE`.

The rule is fixed before any run and applied to whatever the runs measure: a claim that does not hold at
a small scale is reported as such, never tuned until it holds.
"""
from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from smolbook.errors import SmolbookError
from smolbook.scales import Scale, get_scale

VERDICT_RULE = (
    "Each arm is trained for every seed of the scale; a seed fixes the initialisation (where the shapes agree) "
    "and the data order, so the two arms of a claim are compared seed by seed. The *effect* is the mean over "
    "seeds of the per-seed difference recipe arm - baseline, signed so that positive means the recipe arm is "
    "better. The *seed spread* is the max-min range of those per-seed differences, and the *tolerance* is "
    "max(2 x seed spread, 1% of the baseline mean, an absolute floor for accuracies). "
    "'No worse' claims (GQA matches MHA; NoPE, masking, no embedding decay do not hurt): holds if "
    "effect >= -tolerance, differs if effect < -tolerance. 'Better' claims (NoPE or masking help long "
    "context; no embedding decay steadies the norms): holds if effect > tolerance, differs if "
    "effect < -tolerance, inconclusive in between (the seed spread swamps the effect). Always "
    "inconclusive: fewer than 2 seeds per arm (no spread measured), a probe that stays at chance in both "
    "arms, or, for 'no worse' claims, 2 x seed spread above 5% of the baseline (too noisy to resolve the claim)."
)
MAX_RELATIVE_NOISE = 0.05


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

    def values(self, arm: str, metric: str | Callable[[Run], float]) -> list[float]:
        """One value per seed of ``arm``: a final eval metric name (e.g. ``"valid_loss"``) or a function of a run."""
        fn = metric if callable(metric) else (lambda r: r.last(metric))
        return [float(fn(r)) for r in self.arm_runs(arm)]

    def summary(self, metric: str | Callable[[Run], float]) -> dict[str, dict[str, Any]]:
        """Per arm: values over seeds, mean and spread (max - min)."""
        return {a.name: spread_summary(self.values(a.name, metric)) for a in self.arms}


def spread_summary(values: Sequence[float]) -> dict[str, Any]:
    values = [float(v) for v in values]
    return {"values": values, "mean": statistics.fmean(values), "spread": max(values) - min(values) if len(values) > 1 else None,
            "n": len(values)}


# ------------------------------------------------------------------------------------------
# The verdict rule
# ------------------------------------------------------------------------------------------
@dataclass
class Decision:
    status: str  # holds / differs / inconclusive
    effect: float  # mean per-seed difference recipe - baseline, positive = recipe better
    tolerance: float | None
    spread: float | None  # max - min of the per-seed differences
    baseline: dict[str, Any]
    recipe: dict[str, Any]
    reason: str

    def measured(self, metric: str, baseline_name: str, recipe_name: str, digits: int = 4) -> str:
        """One line for ``book.verdict(measured=...)``: both means with their seed spread, effect, tolerance, reason."""
        def fmt(s: dict[str, Any]) -> str:
            sp = "n/a" if s["spread"] is None else f"{s['spread']:.{digits}f}"
            return f"{s['mean']:.{digits}f} (seed spread {sp}, {s['n']} seeds)"
        tol = "n/a" if self.tolerance is None else f"{self.tolerance:.{digits}f}"
        sp = "n/a" if self.spread is None else f"{self.spread:.{digits}f}"
        return (f"{metric}: {recipe_name} {fmt(self.recipe)} vs {baseline_name} {fmt(self.baseline)}; "
                f"effect {self.effect:+.{digits}f} (mean per-seed difference, positive = {recipe_name} better; "
                f"its seed spread {sp}), tolerance {tol}: {self.reason}")


def decide(baseline: Sequence[float], recipe: Sequence[float], *, claim: str = "no_worse",
           higher_is_better: bool = False, rel_tol: float = 0.01, abs_tol: float = 0.0,
           at_chance: bool = False, max_relative_noise: float = MAX_RELATIVE_NOISE) -> Decision:
    """Apply :data:`VERDICT_RULE` to per-seed values of a baseline arm and the recipe's arm (same seed order).

    ``claim`` is ``"no_worse"`` (the recipe's change does not hurt) or ``"better"`` (it helps);
    ``at_chance`` marks a probe that did not move off chance in either arm.
    """
    if claim not in ("no_worse", "better"):
        raise SmolbookError(f"claim must be 'no_worse' or 'better', got '{claim}'")
    if not baseline or not recipe:
        raise SmolbookError("decide() needs at least one value per arm")
    if len(baseline) != len(recipe):
        raise SmolbookError(f"decide() compares seed by seed: got {len(baseline)} baseline and {len(recipe)} recipe values")
    b, r = spread_summary(baseline), spread_summary(recipe)
    sign = 1.0 if higher_is_better else -1.0
    diffs = [sign * (y - x) for x, y in zip(baseline, recipe)]
    effect = statistics.fmean(diffs)
    if len(diffs) < 2:
        return Decision("inconclusive", effect, None, None, b, r, "fewer than 2 seeds per arm: no seed spread measured")
    spread = max(diffs) - min(diffs)
    ref = abs(b["mean"])
    tol = max(2 * spread, rel_tol * ref, abs_tol)
    if at_chance:
        return Decision("inconclusive", effect, tol, spread, b, r, "the probe stays at chance in both arms")
    # A "no worse" claim would hold by default under huge noise, so it needs runs quiet enough to resolve it;
    # a "better" claim already needs its effect to beat the noise.
    if claim == "no_worse" and ref > 0 and 2 * spread > max_relative_noise * ref:
        return Decision("inconclusive", effect, tol, spread, b, r,
                        f"2 x seed spread is {2 * spread / ref:.1%} of the baseline, too noisy to resolve the claim")
    if effect < -tol:
        return Decision("differs", effect, tol, spread, b, r, "the recipe arm is worse by more than the tolerance")
    if claim == "no_worse":
        return Decision("holds", effect, tol, spread, b, r, "the recipe arm is no worse (within the tolerance, or better)")
    if effect > tol:
        return Decision("holds", effect, tol, spread, b, r, "the recipe arm is better by more than the tolerance")
    return Decision("inconclusive", effect, tol, spread, b, r, "the difference is within the tolerance (seed noise)")


def combine(statuses: Sequence[str]) -> str:
    """One status for a claim made of parts: differs if any part differs, holds if all hold, else inconclusive."""
    if any(s == "differs" for s in statuses):
        return "differs"
    return "holds" if statuses and all(s == "holds" for s in statuses) else "inconclusive"


# ------------------------------------------------------------------------------------------
# Running arms x seeds
# ------------------------------------------------------------------------------------------
def embedding_norm(model: torch.nn.Module) -> float:
    """Mean L2 norm of the token-embedding rows (with tied embeddings, also the output projection)."""
    w = model.get_input_embeddings().weight.detach().float()
    return float(w.norm(dim=-1).mean())


def _eval_steps(steps: int, every: int) -> list[int]:
    """The steps at which ``pretrain`` calls ``eval_fn``: 0, every ``every`` steps before the end, and the end."""
    inner = list(range(every, steps, every)) if every else []
    return [0, *inner, steps]


def _make_eval_fn(heldout: Callable[[torch.nn.Module], dict] | None, steps: int, norm_every: int, valid_every: int
                  ) -> Callable[[torch.nn.Module], dict]:
    """The trainer's eval_fn: embedding norm at every call, held-out loss every ``valid_every`` steps and at the end.

    ``pretrain`` calls eval_fn at known steps (0, every ``eval_every``, end) but does not pass the step, so
    the calls are counted here to thin out the costlier validation loss.
    """
    schedule = _eval_steps(steps, norm_every)
    calls = {"n": 0}

    def eval_fn(model: torch.nn.Module) -> dict:
        step = schedule[min(calls["n"], len(schedule) - 1)]
        calls["n"] += 1
        out = {"embedding_norm": embedding_norm(model)}
        if heldout is not None and (step % valid_every == 0 or step == steps):
            out.update(heldout(model))
        return out

    return eval_fn


def run_arms(name: str, arms: Sequence[Arm], scale: str | Scale, output_dir: str | Path, data: Any, *,
             seeds: Sequence[int] | None = None, tokens: int | None = None, norm_every: int | None = None,
             valid_every: int | None = None, max_valid_rows: int = 16,
             after: Callable[[torch.nn.Module, Run], dict] | None = None, progress: bool = True) -> Ablation:
    """Train every arm for every seed (the scale's seeds unless given) and collect the runs.

    Each run: ``smollm3_config(scale, tokenizer=data.tokenizer, **arm.model)`` (parameter-matched when asked),
    ``build_model(config, seed)``, a single-stage ``PretrainStream`` of ``tokens`` (the scale's
    ``ablation_tokens``) and ``pretrain`` with ``TrainConfig.for_scale(scale, steps, seed, **arm.train)``.
    Held-out validation loss (mean over domains) is logged every ``valid_every`` steps and the embedding
    norm every ``norm_every``; ``after(model, run)`` adds post-training numbers to ``run.final``.
    """
    from smolbook.data import PretrainStream
    from smolbook.evaluate import heldout_evaluator
    from smolbook.model import build_model, count_parameters, kv_cache_bytes_per_token, smollm3_config
    from smolbook.train import TrainConfig, pretrain

    s = get_scale(scale)
    seeds = list(s.seeds if seeds is None else seeds)
    tokens = s.ablation_tokens if tokens is None else int(tokens)
    names = [a.name for a in arms]
    if len(set(names)) != len(names) or not arms:
        raise SmolbookError(f"ablation {name}: arms need distinct names, got {names}")
    configs = {a.name: smollm3_config(s, tokenizer=data.tokenizer, **a.model) for a in arms}
    for a in arms:
        if a.match_params_to is not None:
            if a.match_params_to not in configs:
                raise SmolbookError(f"ablation {name}: arm {a.name} matches parameters of unknown arm '{a.match_params_to}'")
            configs[a.name] = match_parameters(configs[a.name], count_parameters(configs[a.match_params_to]))
    stream_probe = PretrainStream(data, stages=["stable"], token_budget=tokens, seed=0)
    steps = len(stream_probe)
    norm_every = norm_every or max(1, steps // 12)
    valid_every = valid_every or s.eval_every_steps
    heldout = heldout_evaluator(data, s, max_examples=0, max_valid_rows=max_valid_rows)
    runs: list[Run] = []
    root = Path(output_dir) / "ablations" / name
    for a in arms:
        for seed in (seeds if a.seeds is None else list(a.seeds)):
            cfg = configs[a.name]
            model = build_model(cfg, seed)
            stream = PretrainStream(data, stages=["stable"], token_budget=tokens, seed=seed, **a.stream)
            tc = TrainConfig.for_scale(s, steps=steps, seed=seed, eval_every=norm_every, checkpoint_every=0,
                                       progress=progress, **a.train)
            out = root / f"{a.name}-seed{seed}"
            if progress:
                print(f"[{name}] arm {a.name}, seed {seed}: {steps} steps of {stream.tokens_per_batch:,} tokens", flush=True)
            t0 = time.perf_counter()
            res = pretrain(model, stream, tc, out, eval_fn=_make_eval_fn(heldout, steps, norm_every, valid_every))
            run = Run(a.name, seed, out, count_parameters(cfg), kv_cache_bytes_per_token(cfg, 2), steps,
                      steps * stream.tokens_per_batch, time.perf_counter() - t0, res.metrics)
            if after is not None:
                model.eval()
                run.final = dict(after(model, run))
            # The run's numbers beside its metrics.jsonl, so they can be read without the notebook's memory.
            (out / "run.json").write_text(json.dumps(
                {"arm": a.name, "seed": seed, "parameters": run.parameters, "steps": steps, "tokens": run.tokens,
                 "seconds": run.seconds, "tokens_per_second": run.tokens_per_second, "final": run.final},
                indent=1, default=str))
            runs.append(run)
            del model
    return Ablation(name, s, list(arms), runs)


def long_context_eval(data: Any, scale: str | Scale, *, n: int = 8, multiples: Sequence[int] = (1, 2, 4, 8),
                      generate: bool = False, seed: int = 0, progress: bool = False) -> Callable[[torch.nn.Module, Run], dict]:
    """An ``after`` for :func:`run_arms`: the long-context probes of :mod:`smolbook.evaluate.ruler` on the trained model.

    RULER tasks at ``multiples`` of the training length (teacher-forced; ``generate`` adds greedy decoding),
    copying at a distance with the repeat ending at 0.5x-8x the training length, and next-token loss against
    position on held-out windows of 8x the training length. Summaries: ``loss_within`` / ``loss_beyond``
    (mean loss at positions inside / past the training length), ``ruler_accuracy_beyond`` (teacher-forced
    answer accuracy at multiples >= 2), ``ruler_moved`` (any cell off chance), ``copy_accuracy_beyond``.
    """
    from smolbook.evaluate import ruler

    s = get_scale(scale)
    hay = ruler.Haystack.from_data(data)
    L = s.seq_len
    passage, prefix = max(8, L // 8), max(4, L // 16)
    ends = [max(2 * passage + prefix, int(m * L)) for m in (0.5, 1, 2, 4, 8)]
    copy = ruler.copy_samples(hay, sorted({e - 2 * passage - prefix for e in ends}), passage_len=passage,
                              prefix_len=prefix, n=max(4, n // 2), seed=seed)

    def after(model: torch.nn.Module, run: Run) -> dict:
        rows = ruler.run_probe(model, hay, L, multiples=multiples, n=n, seed=seed, batch_size=4, generate=generate,
                               progress=progress)
        crow = ruler.score_copy(model, copy, batch_size=4, progress=progress)
        lbp = ruler.loss_by_position(model, hay, max(multiples) * L, n=max(4, n // 2), seed=seed, batch_size=2,
                                     bins=32, progress=progress)
        within = [lo for p, lo in zip(lbp["position"], lbp["loss"]) if p < L]
        beyond = [lo for p, lo in zip(lbp["position"], lbp["loss"]) if p >= L]
        far = [r for r in rows if r["multiple"] >= 2]
        return {"ruler": rows, "copy": crow, "loss_by_position": lbp,
                "loss_within": statistics.fmean(within) if within else float("nan"),
                "loss_beyond": statistics.fmean(beyond) if beyond else float("nan"),
                "ruler_accuracy_beyond": statistics.fmean(r["token_accuracy"] for r in far) if far else float("nan"),
                "ruler_control_beyond": statistics.fmean(r["control_token_accuracy"] for r in far) if far else float("nan"),
                "ruler_moved": any(r["moved"] for r in rows),
                "copy_accuracy_beyond": statistics.fmean(c["repeat_accuracy"] for c in crow if c["end_position"] > L)}

    return after


def match_parameters(config: Any, target: int) -> Any:
    """A copy of ``config`` whose MLP width makes its parameter count as close as possible to ``target``.

    Used to compare attention variants at equal parameters: GQA/MQA save attention weights, which go back
    into the MLP. The MLP has 3 x hidden x intermediate weights per layer, so the width moves in steps of
    3 x hidden x layers parameters.
    """
    from smolbook.model import count_parameters

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
            sw += f", MLP widened to match {a.match_params_to}"
        mark = " (recipe)" if a.recipe else ""
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


def _mean_curves(curves: list[list[float]]) -> list[float]:
    n = min(len(c) for c in curves)
    return [statistics.fmean(c[j] for c in curves) for j in range(n)]


def plot_long_context(ab: Ablation, axes: Sequence[Any] | None = None) -> Any:
    """Three panels from :func:`long_context_eval`, mean over seeds per arm: loss against position, copying at a
    distance (dashed: the passage's first occurrence, the no-copy control), RULER teacher-forced accuracy
    averaged over tasks (dotted: shuffled-answer control). The dashed vertical line is the training length."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    L = ab.scale.seq_len
    for i, a in enumerate(ab.arms):
        rs = [r for r in ab.arm_runs(a.name) if r.final]
        if not rs:
            continue
        c, label = f"C{i}", a.name + (" (recipe)" if a.recipe else "")
        lbp = [r.final["loss_by_position"] for r in rs]
        axes[0].plot([p / L for p in lbp[0]["position"]], _mean_curves([x["loss"] for x in lbp]), color=c, label=label)
        cp = [r.final["copy"] for r in rs]
        xs = [row["end_position"] / L for row in cp[0]]
        axes[1].plot(xs, _mean_curves([[row["repeat_accuracy"] for row in x] for x in cp]), "o-", color=c, label=label)
        axes[1].plot(xs, _mean_curves([[row["first_accuracy"] for row in x] for x in cp]), "--", color=c, lw=0.8)
        mults = sorted({row["multiple"] for row in rs[0].final["ruler"]})
        acc = [[statistics.fmean(row["token_accuracy"] for row in r.final["ruler"] if row["multiple"] == m) for m in mults]
               for r in rs]
        ctl = [[statistics.fmean(row["control_token_accuracy"] for row in r.final["ruler"] if row["multiple"] == m)
                for m in mults] for r in rs]
        axes[2].plot(mults, _mean_curves(acc), "o-", color=c, label=label)
        axes[2].plot(mults, _mean_curves(ctl), ":", color=c)
    for ax, title, yl in zip(axes, ("loss against position", "copying at a distance", "RULER tasks (mean)"),
                             ("next-token loss", "accuracy on the repeat", "answer token accuracy")):
        ax.axvline(1.0, color="grey", ls="--", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("position / training length" if ax is not axes[2] else "context / training length")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(yl)
        ax.legend(fontsize=8)
    return axes


def embedding_norm_drift(run: Run) -> float:
    """|norm(end) - norm(middle)| / norm(middle) of the mean embedding row norm: how much it still moves late
    in training (smaller = steadier). The middle is the logged point nearest half the steps."""
    steps, norms = run.series("embedding_norm", "eval")
    if len(norms) < 2:
        raise SmolbookError(f"run {run.arm}/seed {run.seed} logged fewer than 2 embedding norms")
    mid = min(range(len(steps)), key=lambda i: abs(steps[i] - steps[-1] / 2))
    return abs(norms[-1] - norms[mid]) / norms[mid]
