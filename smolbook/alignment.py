"""Preference training (APO against DPO) through the run spec, and the task scores chapters 12 and 13 compare.

The recipe aligned its SFT model with Anchored Preference Optimization (TRL's ``loss_type="apo_zero"``), a DPO
variant. One :class:`~smolbook.train.RunSpec` per loss and seed trains TRL's ``DPOTrainer`` on the same preference
pairs (the ``preference-pairs`` data builder: the chosen answer from the stronger source, the rejected from the
weaker, both modes), at the same budget; only ``data.options.loss_type`` differs between the arms.

The mode of a pair reaches TRL through the chat-template keyword ``enable_thinking`` of the row's
``chat_template_kwargs``, which TRL passes to ``apply_chat_template`` (the template writes ``Reasoning Mode:
/think`` or ``/no_think`` into the system block; ``tests/chapters/test_alignment_chapter.py`` checks the tokens TRL trains on).

    arms = train_arms("12_apo", "chapter:11_sft", "tiny", "runs/tiny", seeds=[0, 1, 2], losses=["apo_zero", "sigmoid"])
    arms["apo_zero"][0].path      # the seed-0 APO checkpoint
"""
from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from smolbook.claims import Claim
from smolbook.data import PreparedData
from smolbook.data.chat import shared_chat_data
from smolbook.data.hub_chat import open_chat_dataset, released_source
from smolbook.data.preferences import preference_pairs
from smolbook.errors import SmolbookError
from smolbook.evaluate.chat import chat_scores, folder_teacher
from smolbook.evaluate.longcontext import plot_report
from smolbook.evaluate.scoring import score_completion, summarise
from smolbook.registry import resolve_checkpoint
from smolbook.scales import Budget, get_scale
from smolbook.teacher import SolverTeacher
from smolbook.train import DataSpec, ModelSpec, RunSpec, sweep
from smolbook.train.trl import LOSS_TYPES


CURVES = {"rewards/margins": "reward margin (chosen - rejected)", "rewards/accuracies": "preference accuracy"}
# TRL's name of each loss, and how the book labels it.
LOSS_NAMES = {"apo_zero": "APO (apo_zero)", "apo_down": "APO (apo_down)", "sigmoid": "DPO (sigmoid)", "ipo": "IPO"}
DPO = "sigmoid"  # TRL's name of the original DPO loss: the baseline arm every APO variant is compared with


@dataclass
class Arm:
    """One preference run: its loss, seed, run folder and final checkpoint."""

    loss: str
    seed: int
    name: str
    result: Any  # smolbook.train.loop.TrainResult

    @property
    def path(self) -> Path:
        return Path(self.result.output_dir) / "final"

    @property
    def label(self) -> str:
        """How the chapter's tables and scores name this run's checkpoint: ``<loss> seed <k>``."""
        return f"{self.loss} seed {self.seed}"

    def rows(self) -> list[dict]:
        return self.result.rows("train")


def apo_variant(option: str | None, default: str) -> str:
    """The APO loss the chapter trains: its ``apo_loss`` option, else the recipe's default. Refuses DPO's own loss,
    which would compare the baseline with itself."""
    loss = option or default
    if loss == DPO:
        raise SmolbookError(f"apo_loss {DPO!r} is the DPO baseline itself: choose an APO variant (apo_zero, apo_down)")
    return loss


def preference_spec(chapter: str, source: str, scale: str, output_dir: str | Path, seed: int, loss: str,
                    **options: Any) -> Any:
    """The run spec of one preference run: ``trainer: dpo`` from ``source`` with ``loss_type=loss``."""
    if loss not in LOSS_TYPES:
        raise SmolbookError(f"loss {loss!r} is not one of {', '.join(LOSS_TYPES)}")
    return RunSpec(chapter=chapter, name=f"{loss}-seed{seed}", scale=scale, output_dir=str(output_dir),
                   phase="preference", trainer="dpo", model=ModelSpec(checkpoint=source), seed=seed,
                   data=DataSpec(options={"loss_type": loss, **options}))


def train_arms(chapter: str, source: str, scale: str, output_dir: str | Path, seeds: Sequence[int],
               losses: Sequence[str], **options: Any) -> dict[str, list[Arm]]:
    """Every (loss, seed) preference run, through one :func:`smolbook.train.sweep`; a seed draws the same pairs for
    every loss, at the same budget: ``loss -> [Arm per seed]``."""
    specs = {(loss, seed): preference_spec(chapter, source, scale, output_dir, seed, loss, **options)
             for loss in losses for seed in seeds}
    done = sweep(specs, desc="preference training")
    return {loss: [Arm(loss, seed, specs[loss, seed].name, done[loss, seed].result) for seed in seeds]
            for loss in losses}


def final_log_means(runs: Sequence[Arm]) -> dict[str, float]:
    """The mean over seeds of each curve's last logged value (reward margin, preference accuracy): where training
    ended, the number the chapter records per loss."""
    last = [a.rows()[-1] for a in runs]
    return {key: sum(r[key] for r in last) / len(last) for key in CURVES}


def arm_checkpoints(arms: Mapping[str, Sequence[Arm]], start: Mapping[str, str | Path]) -> dict[str, str | Path]:
    """``label -> checkpoint`` of the starting model(s) and every arm's runs, in that order: what the task scores
    evaluate, so the table reads before, then each loss seed by seed."""
    return {**start, **{a.label: a.path for runs in arms.values() for a in runs}}


def pair_lengths(pairs: Any, tokenizer: Any) -> list[int]:
    """Tokens of each pair's longer side (prompt + answer, as the chat template writes it with the row's keywords):
    what the scale's length cap (the recipe's 24k) is compared with."""
    out = []
    for r in pairs:
        kw = {k: v for k, v in (r.get("chat_template_kwargs") or {}).items() if v is not None}
        texts = [tokenizer.apply_chat_template(r["prompt"] + r[side], tokenize=False, **kw)
                 for side in ("chosen", "rejected")]
        # counting, not truncating: the tokenizer's model_max_length does not apply (and would warn)
        out.append(max(len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]))
    return out


def pair_counts(pairs: Any) -> pd.DataFrame:
    """Pairs per (mode, kind): that both modes and every kind survived the filter on right-over-wrong answers."""
    return pd.DataFrame(list(pairs.select_columns(["mode", "kind"]))).value_counts().rename("pairs").reset_index()


def plot_curves(arms: dict[str, list[Arm]], axes: Sequence[Any]) -> None:
    """Reward margin and preference accuracy (TRL's logs) against step, one line per loss (mean over seeds, the
    seeds' range shaded)."""
    for ax, (key, label) in zip(axes, CURVES.items()):
        for loss, runs in arms.items():
            series = [[(r["step"], r[key]) for r in a.rows() if key in r] for a in runs]
            steps = sorted({s for ser in series for s, _ in ser})
            by_step = [[v for ser in series for s, v in ser if s == st] for st in steps]
            mean = [statistics.fmean(v) for v in by_step]
            line, = ax.plot(steps, mean, marker="o", ms=3, label=LOSS_NAMES.get(loss, loss))
            ax.fill_between(steps, [min(v) for v in by_step], [max(v) for v in by_step], alpha=0.2,
                            color=line.get_color())
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.legend()


def curves_figure(arms: dict[str, list[Arm]]) -> plt.Figure:
    """The chapter's figure of :func:`plot_curves`: reward margin and preference accuracy side by side."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    plot_curves(arms, axes)
    fig.suptitle("Preference training, from TRL's logs (mean over seeds, range shaded)")
    fig.tight_layout()
    return fig


def plot_task_scores(scores: Mapping[str, Mapping[str, float]], arms: Mapping[str, Sequence[Arm]],
                     modes: Sequence[str], start: str) -> plt.Figure:
    """Grouped bars per mode: the starting model, then each loss's mean over its seeds, so the lift of alignment
    and the gap between the losses read off one axis."""
    means = {start: scores[start]}
    for loss, runs in arms.items():
        means[LOSS_NAMES[loss]] = {m: sum(scores[a.label][m] for a in runs) / len(runs) for m in modes}
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(means)
    for i, (label, by_mode) in enumerate(means.items()):
        ax.bar([j + i * width for j in range(len(modes))], [by_mode[m] for m in modes], width, label=label)
    ax.set_xticks([j + width for j in range(len(modes))], modes)
    ax.set_ylabel("task score (share correct)")
    ax.legend()
    ax.set_title("Held-out task scores per mode, before (11) and after alignment (mean over seeds)")
    return fig


def long_context_figure(reports: Mapping[str, dict[str, Any]], before: str, after: str) -> plt.Figure:
    """Chapter 08's long-context report drawn for the model before alignment against the aligned seeds (every report
    but ``before``'s, averaged), the view in which the blog's RULER drop would show."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    plot_report({before: [reports[before]], after: [v for k, v in reports.items() if k != before]}, axes)
    fig.suptitle("Long-context probes before (SFT) and after APO (mean over seeds)")
    fig.tight_layout()
    return fig


def claim_in_mode(claim: Claim, mode: str) -> Claim:
    """A per-mode claim (``{mode}`` in its text and metric) written out for one mode: one verdict per mode."""
    return replace(claim, claim=claim.claim.format(mode=mode), metric=claim.metric.format(mode=mode))


def both_modes(by_mode: Mapping[str, float]) -> float:
    """One checkpoint's task score over both modes (each mode weighs the same): what APO and DPO are compared on."""
    return sum(by_mode.values()) / len(by_mode)


def task_score(record: dict[str, Any]) -> float:
    """One number per checkpoint and mode: the mean over the evaluated kinds of the share answered correctly
    (``correct/<kind>`` of :func:`smolbook.evaluate.chat.summarise`; each kind weighs the same)."""
    kinds = [v for k, v in record.items() if k.startswith("correct/") and v is not None]
    if not kinds:
        raise SmolbookError(f"record of {record.get('checkpoint')} has no per-kind scores")
    return statistics.fmean(kinds)


def task_scores(checkpoints: dict[str, str | Path], rows: Any, modes: Sequence[str] = ("think", "no_think"),
                max_new_tokens: int = 192, batch_size: int = 16) -> dict[str, dict[str, float]]:
    """``label -> {mode: task score}`` of each checkpoint on ``rows`` (held-out conversations), from
    :func:`smolbook.evaluate.chat.chat_scores`."""
    out: dict[str, dict[str, float]] = {}
    for rec in chat_scores(checkpoints, rows, modes, max_new_tokens, batch_size):
        out.setdefault(rec["checkpoint"], {})[rec["mode"]] = task_score(rec)
    return out


def preference_pairs_stream(spec: Any, data: PreparedData, budget: Budget) -> Any:
    """The ``preference-pairs`` data builder, pairs in both modes: offline, the chosen answer from the solver
    (verified right) and the rejected one from a weaker source (verified wrong or ill-formed) over the prompts of
    ``options.kinds``; online, the released preference mixture streamed from the hub.

    The weaker source (``options.rejected``) is by default the model being aligned itself (``model``: the SFT
    checkpoint's own greedy answers, the recipe's "rejected from a weaker model" with the nearest weaker model at
    hand), so a pair holds what this model gets wrong; ``solver`` is a solver that slips at
    ``options.rejected_error_rate``."""
    if not get_scale(spec.scale).offline:
        return open_chat_dataset(released_source("apo"), streaming=True, seed=spec.seed)
    opts = spec.data.options
    source = opts.get("rejected", "model")
    if source not in ("model", "solver"):
        raise SmolbookError(f"data.options.rejected must be 'model' (the model's own answers) or 'solver', got {source!r}")
    prompts = shared_chat_data(spec.scale, data.seed).mixture(tuple(opts.get("kinds", ("math", "code", "facts"))),
                                                                   seed=spec.seed)
    # The trainer reads steps x rows pairs: make (and have TRL tokenize) only those, from more prompts for the pairs
    # verification drops (the model's right answers make no pair); the mixture is shuffled, so both modes and every
    # kind stay.
    need = budget.steps * budget.rows_per_step
    prompts = prompts.select(range(min(len(prompts), int(opts.get("prompts_per_pair", 3)) * need)))
    if source == "model":
        rejected = folder_teacher(resolve_checkpoint(spec.output_dir, spec.model.checkpoint), "rejected",
                                  max_new_tokens=int(opts.get("max_new_tokens", 192)))
    else:
        rejected = SolverTeacher(error_rate=float(opts.get("rejected_error_rate", 1.0)), seed=spec.seed + 1)
    pairs, _ = preference_pairs(list(prompts), SolverTeacher(seed=spec.seed), rejected, score=score_completion)
    return pairs.shuffle(seed=spec.seed).select(range(min(len(pairs), need)))


MODE_FLAGS = {"think": "Reasoning Mode: /think", "no_think": "Reasoning Mode: /no_think"}


def mode_reaches_template(pairs: Any, tokenizer: Any) -> dict[str, float]:
    """Per mode, the share of pairs whose prompt, rendered as TRL renders it (``apply_chat_template`` with the row's
    ``chat_template_kwargs``), carries that mode's flag in the system block."""
    hits: dict[str, list[bool]] = {}
    for r in pairs:
        kw = {k: v for k, v in (r.get("chat_template_kwargs") or {}).items() if v is not None}
        text = tokenizer.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True, **kw)
        hits.setdefault(r["mode"], []).append(MODE_FLAGS[r["mode"]] in text)
    return {m: statistics.fmean(v) for m, v in hits.items()}


def task_scores_by_slice(checkpoints: dict[str, str | Path], rows: Any, n: int = 3,
                         modes: Sequence[str] = ("think", "no_think"), max_new_tokens: int = 192,
                         batch_size: int = 16) -> dict[str, dict[str, list[float]]]:
    """``label -> {mode: [task score per slice]}``: each checkpoint answers every row of ``rows`` in each mode once,
    and the scores are cut into ``n`` disjoint slices (every n-th row of the mode, so each slice keeps every kind).
    The slices are the replicates when one model (a merge) is compared with another on the same data."""
    out: dict[str, dict[str, list[float]]] = {}
    for label, path in checkpoints.items():
        teacher = folder_teacher(path, label, max_new_tokens, batch_size)
        out[label] = {}
        for mode in modes:
            chosen = [dict(r) for r in rows if r["mode"] == mode]
            if len(chosen) < n:
                raise SmolbookError(f"{len(chosen)} held-out rows in mode {mode!r} cannot make {n} slices")
            scores = [score_completion(r, c, mode) for r, c in zip(chosen, teacher.generate(chosen, mode))]
            out[label][mode] = [task_score(summarise(scores[i::n], mode, label)) for i in range(n)]
    return out


def both_modes_by_slice(tasks: Mapping[str, Mapping[str, Sequence[float]]]) -> dict[str, list[float]]:
    """``label -> [score per slice]`` of :func:`task_scores_by_slice`, each slice's score the mean of its modes: the
    replicates a one-model comparison (a merge against another) reads."""
    return {label: [sum(x) / len(x) for x in zip(*by_mode.values())] for label, by_mode in tasks.items()}
