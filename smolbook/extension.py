"""Long-context extension as the recipe ran it: two stages, each a run spec, then YaRN at inference.

Stage ``lc-32k`` continues a checkpoint at 8x the base length with RoPE theta raised to the 4k->32k config's
(2M; the blog says 1.5M), carrying the optimizer (``load_optimizer: true``); stage ``lc-64k`` continues that at 16x
with theta 5M and a fresh optimizer (``load_optimizer: false``). Both read their mixtures, cosine schedules and
learning rates from the recipe and their tokens from the scale's budgets. One chain per seed (the data order);
a chain's checkpoints are registered as ``<prefix>lc-32k`` and ``<prefix>lc-64k`` of the calling chapter.

:func:`save_yarn` writes the YaRN x2 variant of a checkpoint (rope_type yarn over the final training length),
:func:`verdict_probe` is the cheaper form of the long-context report (:mod:`smolbook.evaluate.longcontext`, which
also reads reports the way every chapter does: ``reports``, ``cloze_at``, ``loss_between``) on one checkpoint;
:func:`report_rows` is the chapter's table of reports.
"""
from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

from smolbook.data import PreparedData
from smolbook.evaluate.longcontext import loss_between, reports
from smolbook.model import load_with_rope
from smolbook.recipe import load_recipe
from smolbook.scales import LONG_CONTEXT_STAGES, get_scale
from smolbook.train import DataSpec, ModelSpec, RunSpec, sweep


STAGES = LONG_CONTEXT_STAGES


@dataclass
class Chain:
    """One seed's extension: its two run results and the registered reference of each stage's checkpoint."""

    seed: int
    prefix: str
    results: dict[str, Any]
    refs: dict[str, str]

    def path(self, stage: str = STAGES[-1]) -> Path:
        """The folder of a stage's final checkpoint (the last stage's by default)."""
        return Path(self.results[stage].checkpoint)


def stage_specs(chapter: str, source: str, scale: str, output_dir: str | Path, seed: int, prefix: str = "",
                data_options: dict[str, Any] | None = None, evaluate: bool = True, final: bool = True) -> list[Any]:
    """The two stages' run specs: the first continues ``source`` (a checkpoint reference), the second the first;
    ``final``: the second stage's checkpoint is the chapter's final one."""
    runs = load_recipe().runs
    specs, previous = [], source
    for stage in STAGES:
        spec = RunSpec(chapter=chapter, name=f"{prefix}{stage}", scale=scale, output_dir=str(output_dir), phase=stage,
                       seed=seed, model=ModelSpec(checkpoint=previous, rope_theta=runs[stage].rope_theta),
                       data=DataSpec(stages=[stage], options=dict(data_options or {})), evaluate=evaluate,
                       final=final and stage == STAGES[-1])
        specs.append(spec)
        previous = spec.ref
    return specs


def extend(chapter: str, source: str | Mapping[int, str], scale: str, output_dir: str | Path, seeds: Sequence[int],
           prefix: str = "", data_options: dict[str, Any] | None = None, evaluate: bool = True) -> list[Chain]:
    """Run both stages for every seed, from ``source`` (one checkpoint reference, or one per seed); ``prefix`` +
    ``seed<k>-`` names all but the first seed's chain. Each stage is one :func:`smolbook.train.sweep` over the seeds
    (side by side on a CPU), the second after the first. ``evaluate`` logs held-out scores before and after each
    stage of the first chain (the control arms skip it: the probes judge them). Only the main chain (the first
    seed, no prefix) registers its last stage as the chapter's final checkpoint."""
    sources = {k: source for k in seeds} if isinstance(source, str) else {k: str(source[k]) for k in seeds}
    prefixes = {k: prefix if i == 0 else f"{prefix}seed{k}-" for i, k in enumerate(seeds)}
    specs = {k: stage_specs(chapter, sources[k], scale, output_dir, k, prefixes[k], data_options,
                            evaluate and i == 0, final=not prefixes[k]) for i, k in enumerate(seeds)}
    arm = prefix.rstrip("-") or "main"
    results: dict[int, dict[str, Any]] = {k: {} for k in seeds}
    for j, stage in enumerate(STAGES):
        theta = specs[seeds[0]][j].model.rope_theta
        done = sweep({(arm, k): specs[k][j] for k in seeds},
                     desc=f"{chapter} {prefix or 'main '}{stage} (theta {theta:,.0f})")
        for k in seeds:
            results[k][stage] = done[arm, k].result
    return [Chain(k, prefixes[k], results[k], {st: sp.ref for st, sp in zip(STAGES, specs[k])}) for k in seeds]


def save_yarn(checkpoint: str | Path, target: str | Path, factor: float, original_max_position_embeddings: int) -> Path:
    """The checkpoint with YaRN scaling (``factor`` over ``original_max_position_embeddings``), saved with its
    tokenizer so plain ``AutoModelForCausalLM`` / ``AutoTokenizer`` load it as it is."""
    target = Path(target)
    shutil.rmtree(target, ignore_errors=True)
    model = load_with_rope(checkpoint, yarn_factor=factor, original_max_position_embeddings=original_max_position_embeddings)
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(checkpoint).save_pretrained(target)
    return target


def verdict_probe(checkpoint: str | Path, data: PreparedData, scale: str, lengths: Sequence[int], *, n: int, seed: int = 0,
                  loss_length: int | None = None) -> dict[str, Any]:
    """One checkpoint's report for a verdict that compares it with others on the same prompts: cloze without the
    fact-absent control and two loss windows, half a full report's cost (a full report's control already says
    where chance lies)."""
    return reports({"x": checkpoint}, data, scale, lengths, n=n, seed=seed, control=False, loss_windows=2,
                   loss_length=loss_length)["x"]


def report_rows(by_label: Mapping[str, dict[str, Any]], base_length: int, final_length: int) -> list[dict[str, Any]]:
    """One table row per labelled report: cloze accuracy at each length it scored, and the loss below the base
    length, between it and the final training length, and beyond that to twice it (only YaRN claims the last)."""
    bands = {f"loss <{base_length}": (0, base_length),
             f"loss {base_length}-{final_length}": (base_length, final_length),
             f"loss {final_length}-{2 * final_length}": (final_length, 2 * final_length)}
    return [{"checkpoint": label, **{f"cloze @{r['length']}": round(r["accuracy"], 3) for r in rep["cloze"]},
             **{name: round(loss_between(rep, a, b), 3) for name, (a, b) in bands.items()}}
            for label, rep in by_label.items()]


def recipe_parallelism(scale: str) -> list[str]:
    """How the recipe fit each extension stage's rows on its GPUs (tensor x context x pipeline x data parallel),
    beside this scale's launcher: the book has no tensor or context parallelism, a difference to state."""
    s, runs = get_scale(scale), load_recipe().runs
    lines = []
    for stage in STAGES:
        r = runs[stage]
        lines.append(f"recipe {stage}: {r.gpus} GPUs = tp {r.tp} x cp {r.context_parallel_size} x pp {r.pp} x dp "
                     f"{r.dp}; {s.name}: {s.launcher} launcher, no tensor or context parallelism")
    return lines


def theta_table(scale: str) -> list[dict[str, Any]]:
    """RoPE theta and theta / sequence length per stage, in the recipe and at ``scale``: the scale keeps the
    recipe's theta, so its shorter rows rotate the lowest frequencies far less per row (a departure to state)."""
    s = get_scale(scale)
    runs = load_recipe().runs
    rows = [{"stage": "pretraining", "theta": runs["pretraining"].rope_theta, "recipe seq_len": runs["pretraining"].sequence_length,
             f"{s.name} seq_len": s.seq_len}]
    for st, length in zip(STAGES, s.long_context):
        rows.append({"stage": st, "theta": runs[st].rope_theta, "recipe seq_len": runs[st].sequence_length,
                     f"{s.name} seq_len": length})
    for r in rows:
        r["recipe theta / seq_len"] = round(r["theta"] / r["recipe seq_len"], 2)
        r[f"{s.name} theta / seq_len"] = round(r["theta"] / r[f"{s.name} seq_len"], 2)
    return rows
