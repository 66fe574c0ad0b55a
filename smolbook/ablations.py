"""Ablations: the same short pretraining run with one switch flipped, over seeds. Arms x seeds, nothing else.

A chapter (notebooks 03-06) names its *arms* (:class:`Arm`: overrides for the model config, the trainer
and the data stream) and runs each arm for every seed of the scale with :func:`run_arms` (training is
``smolbook.train.pretrain``, data ``smolbook.data.PretrainStream`` on the single "stable" stage). The claims
and the rule that judges them live in :mod:`smolbook.claims`.

Ablation runs keep the learning rate constant after warm-up (no decay), so a shorter arm is exactly the first
part of a longer one: a claim about short-context loss can compare a short baseline run with the recipe arm
at the same step (:meth:`Ablation.values` with ``step``). The recipe arm itself (the recipe's own settings,
no overrides) is trained once per seed and shared by every chapter that runs it: the first chapter trains it,
the others read it back from ``output_dir/ablations/recipe``.
"""
from __future__ import annotations

import hashlib
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
from smolbook.parallel import in_worker, worker_count
from smolbook.train.sweep import wait_with_progress

SHARED_RECIPE_DIR = "recipe"
CLOZE_EXAMPLES = 48  # held-out cloze rows scored at every validation (in-context retrieval as it emerges)


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
# Running arms x seeds
# ------------------------------------------------------------------------------------------
def embedding_norm(model: torch.nn.Module) -> float:
    """Mean L2 norm of the token-embedding rows (with tied embeddings, also the output projection)."""
    w = model.get_input_embeddings().weight.detach().float()
    return float(w.norm(dim=-1).mean())


def _make_eval_fn(heldout: Callable[[torch.nn.Module], dict], cloze: Callable[[torch.nn.Module], float] | None
                  ) -> Callable[[torch.nn.Module], dict]:
    """The trainer's eval_fn: embedding norm, held-out validation loss and held-out cloze accuracy."""
    def eval_fn(model: torch.nn.Module) -> dict:
        out = {"embedding_norm": embedding_norm(model), **heldout(model)}
        if cloze is not None:
            out["acc/cloze"] = cloze(model)
        return out

    return eval_fn


AfterFn = Callable[[torch.nn.Module, "Run"], dict]


def after_key(key: str) -> Callable[[Callable[[torch.nn.Module, "Run"], dict]], AfterFn]:
    """Name a post-training evaluation: its result lands in ``run.final[key]`` and a shared recipe run that
    already holds ``key`` is not evaluated again."""
    def wrap(fn: Callable[[torch.nn.Module, "Run"], dict]) -> AfterFn:
        fn.key = key  # type: ignore[attr-defined]
        return fn
    return wrap


def long_context_after(data: Any, scale: str | Scale, lengths: Sequence[int] | None = None, *, n: int = 64,
                       seed: int = 0) -> AfterFn:
    """An ``after`` for :func:`run_arms`: :func:`smolbook.evaluate.longcontext.long_context_report` on the
    trained model (default lengths: 1x, 2x and 4x the training length), in ``run.final["long_context"]``."""
    from smolbook.evaluate.longcontext import long_context_report

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


def _run_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read_run(out: Path, key: str) -> "Run | None":
    """A finished run whose settings match ``key`` (shared recipe runs), else None."""
    info_path, metrics_path = out / "run.json", out / "metrics.jsonl"
    try:
        info = json.loads(info_path.read_text())
        if info.get("key") != key or not (out / "final").is_dir():
            return None
        rows = [json.loads(x) for x in metrics_path.read_text().splitlines() if x.strip()]
    except (OSError, ValueError):
        return None
    return Run(info["arm"], info["seed"], out, info["parameters"], info["kv_cache_bytes_per_token"], info["steps"],
               info["tokens"], info["seconds"], rows, info.get("final", {}))


def _write_run(run: "Run", key: str) -> None:
    """The run's numbers beside its metrics.jsonl, so they can be read without the notebook's memory."""
    (run.output_dir / "run.json").write_text(json.dumps(
        {"key": key, "arm": run.arm, "seed": run.seed, "parameters": run.parameters,
         "kv_cache_bytes_per_token": run.kv_cache_bytes_per_token, "steps": run.steps, "tokens": run.tokens,
         "seconds": run.seconds, "tokens_per_second": run.tokens_per_second, "final": run.final},
        indent=1, default=str))


def run_arms(name: str, arms: Sequence[Arm], scale: str | Scale, output_dir: str | Path, data: Any, *,
             seeds: Sequence[int] | None = None, tokens: int | None = None, max_valid_rows: int = 16,
             after: AfterFn | None = None, progress: bool = True, workers: int | None = None) -> Ablation:
    """Train every arm for every seed (the scale's seeds unless given) and collect the runs.

    Each run: ``smollm3_config(scale, tokenizer=data.tokenizer, **arm.model)`` (parameter-matched when asked),
    ``build_model(config, seed)``, a single-stage ``PretrainStream`` of ``arm.tokens`` or ``tokens`` (the scale's
    ``ablation_tokens``) and ``pretrain`` with ``TrainConfig.for_scale(scale, steps, seed, **arm.train)`` at a
    constant learning rate after warm-up. Every ``eval_every_steps``: held-out validation loss (mean over
    domains), held-out cloze accuracy and the embedding norm. ``after(model, run)`` adds post-training numbers
    to ``run.final[after.key]`` (see :func:`after_key`). The recipe arm (:attr:`Arm.shared`) is read back when
    another chapter already trained it with the same settings.

    ``workers``: on a CPU, runs train side by side in that many processes (default: one per torch thread of this
    process, at most one per run; :func:`plan_workers`), which keeps more of the cores busy than one process
    with several threads does at these small sizes. On a GPU, and with 1, they train here one after another.
    """
    from smolbook.model import count_parameters, kv_cache_bytes_per_token, smollm3_config

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
    every = s.eval_every_steps
    n_cloze = _cloze_count(data)
    root = Path(output_dir) / "ablations"
    jobs: list[dict[str, Any]] = []
    runs: list[tuple[Run, str]] = []
    for a in arms:
        arm_tokens = tokens if a.tokens is None else int(a.tokens)
        steps = max(1, arm_tokens // s.tokens_per_step)  # what PretrainStream serves
        if steps % every and steps > every:
            raise SmolbookError(f"ablation {name}: arm {a.name} runs {steps} steps, not a multiple of the "
                                f"evaluation interval {every}; give it a token budget of a whole number of "
                                f"intervals ({every * s.tokens_per_step:,} tokens each)")
        for seed in (seeds if a.seeds is None else list(a.seeds)):
            cfg = configs[a.name]
            train = dict(steps=steps, seed=seed, eval_every=every, checkpoint_every=0, decay_fraction=0.0, **a.train)
            out = root / (f"{SHARED_RECIPE_DIR}/seed{seed}" if a.shared else f"{name}/{a.name}-seed{seed}")
            tc = _train_config(s, train, progress=False)
            key = _run_key({"model": cfg.to_dict(), "train": {k: v for k, v in tc.to_dict().items() if k != "progress"},
                            "stream": a.stream, "tokens": arm_tokens, "data": data.manifest.get("fingerprint"),
                            "valid_rows": max_valid_rows, "cloze": n_cloze})
            run = _read_run(out, key) if a.shared else None
            if run is None:
                run = Run(a.name, seed, out, count_parameters(cfg), kv_cache_bytes_per_token(cfg, 2), steps,
                          steps * s.tokens_per_step, 0.0, [])
                jobs.append({"run": run, "config": cfg, "train": train, "stream": dict(a.stream), "tokens": arm_tokens})
            elif progress:
                print(f"[{name}] arm {a.name}, seed {seed}: trained by an earlier chapter, read from {out}", flush=True)
            run.arm = a.name
            runs.append((run, key))
    _train_jobs(name, jobs, s, data, max_valid_rows, progress, plan_workers(s, len(jobs), workers))
    for run, key in runs:
        if after is not None and getattr(after, "key", "after") not in run.final:
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(run.output_dir / "final").eval()
            run.final[getattr(after, "key", "after")] = dict(after(model, run))
            del model
        _write_run(run, key)
    return Ablation(name, s, list(arms), [run for run, _ in runs])


def plan_workers(scale: str | Scale, n_runs: int, workers: int | None = None) -> int:
    """How many processes train an ablation's runs: :func:`smolbook.parallel.worker_count` for the scale's
    device (on a CPU one per torch thread, at most one per run; 1 on a GPU, where runs train here)."""
    return worker_count(get_scale(scale).device, n_runs, workers)


def _train_config(s: Scale, train: dict[str, Any], progress: bool) -> Any:
    from smolbook.train import TrainConfig

    return TrainConfig.for_scale(s, progress=progress, **train)


def _cloze_count(data: Any) -> int:
    return min(CLOZE_EXAMPLES, len(data.evals["cloze"])) if "cloze" in getattr(data, "evals", {}) else 0


def _eval_fn_for(data: Any, s: Scale, max_valid_rows: int) -> Callable[[torch.nn.Module], dict]:
    """Held-out validation loss, held-out cloze accuracy and the embedding norm (what every ablation logs)."""
    from smolbook.evaluate import cloze_accuracy, heldout_evaluator

    heldout = heldout_evaluator(data, s, max_examples=0, max_valid_rows=max_valid_rows)
    cloze_rows = list(data.evals["cloze"])[:CLOZE_EXAMPLES] if _cloze_count(data) else []
    cloze = (lambda m: cloze_accuracy(m, data.tokenizer, cloze_rows, s.seq_len)) if cloze_rows else None
    return _make_eval_fn(heldout, cloze)


def _train_one(job: dict[str, Any], data: Any, s: Scale, eval_fn: Callable, progress: bool) -> dict[str, Any]:
    """Train one arm x seed into its folder; what its :class:`Run` needs back (picklable: it may run in a worker)."""
    from smolbook.data import PretrainStream
    from smolbook.model import build_model
    from smolbook.train import pretrain

    run: Run = job["run"]
    stream = PretrainStream(data, stages=["stable"], token_budget=job["tokens"], seed=run.seed, **job["stream"])
    model = build_model(job["config"], run.seed)
    t0 = time.perf_counter()
    res = pretrain(model, stream, _train_config(s, job["train"], progress), run.output_dir, eval_fn=eval_fn)
    if res.interrupted:
        raise SmolbookError(f"the run {run.arm}/seed {run.seed} was interrupted; run the chapter again to retrain it")
    return {"metrics": res.metrics, "seconds": time.perf_counter() - t0}


_WORKER_STATE: dict[str, Any] = {}


def _worker_train(job: dict[str, Any], data_dir: str, data_seed: int, s: Scale, max_valid_rows: int, threads: int
                  ) -> dict[str, Any]:
    """A worker process's job: the data read back once per process, ``threads`` torch threads, no progress bar."""
    from smolbook.data import prepare

    in_worker(threads)
    key = (data_dir, data_seed, s.name, max_valid_rows)
    if _WORKER_STATE.get("key") != key:
        data = prepare(s, data_dir, seed=data_seed, progress=False)
        _WORKER_STATE.update(key=key, data=data, eval_fn=_eval_fn_for(data, s, max_valid_rows))
    return _train_one(job, _WORKER_STATE["data"], s, _WORKER_STATE["eval_fn"], progress=False)


def _train_jobs(name: str, jobs: list[dict[str, Any]], s: Scale, data: Any, max_valid_rows: int, progress: bool,
                workers: int) -> None:
    """Train the runs of ``jobs`` (longest first), here one after another or in ``workers`` processes."""
    if not jobs:
        return
    jobs.sort(key=lambda j: -j["run"].steps)
    if workers == 1:
        eval_fn = _eval_fn_for(data, s, max_valid_rows)
        for job in jobs:
            run = job["run"]
            if progress:
                print(f"[{name}] arm {run.arm}, seed {run.seed}: {run.steps} steps of {s.tokens_per_step:,} tokens",
                      flush=True)
            _finish(run, _train_one(job, data, s, eval_fn, progress))
        return
    import multiprocessing as mp

    budget = max(torch.get_num_threads(), workers)
    if progress:
        listed = ", ".join(f"{j['run'].arm} seed {j['run'].seed}" for j in jobs)
        print(f"[{name}] {len(jobs)} runs ({listed}) in {workers} processes side by side", flush=True)
    # Jobs start in order as workers free up: the last ones, with fewer runs left beside them, get more threads.
    pool = mp.get_context("spawn").Pool(workers)
    try:
        pending = [(job, pool.apply_async(_worker_train, (job, str(data.root.parent), int(data.seed), s, max_valid_rows,
                                                           max(1, budget // min(workers, len(jobs) - i)))))
                   for i, job in enumerate(jobs)]
        wait_with_progress(name, [(job["run"].output_dir, job["run"].steps, res) for job, res in pending], progress)
        for job, res in pending:
            _finish(job["run"], res.get())
    finally:
        pool.terminate()
        pool.join()


def _finish(run: Run, out: dict[str, Any]) -> None:
    run.metrics, run.seconds = out["metrics"], out["seconds"]


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
