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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smolbook.errors import SmolbookError

CURVES = {"rewards/margins": "reward margin (chosen - rejected)", "rewards/accuracies": "preference accuracy"}
# TRL's name of each loss, and how the book labels it.
LOSS_NAMES = {"apo_zero": "APO (apo_zero)", "apo_down": "APO (apo_down)", "sigmoid": "DPO (sigmoid)", "ipo": "IPO"}


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

    def rows(self) -> list[dict]:
        return self.result.rows("train")


def preference_spec(chapter: str, source: str, scale: str, output_dir: str | Path, seed: int, loss: str,
                    **options: Any) -> Any:
    """The run spec of one preference run: ``trainer: dpo`` from ``source`` with ``loss_type=loss``."""
    from smolbook.train import DataSpec, ModelSpec, RunSpec
    from smolbook.train.trl import LOSS_TYPES

    if loss not in LOSS_TYPES:
        raise SmolbookError(f"loss {loss!r} is not one of {', '.join(LOSS_TYPES)}")
    return RunSpec(chapter=chapter, name=f"{loss}-seed{seed}", scale=scale, output_dir=str(output_dir),
                   phase="preference", trainer="dpo", model=ModelSpec(checkpoint=source), seed=seed,
                   data=DataSpec(options={"loss_type": loss, **options}))


def train_arms(chapter: str, source: str, scale: str, output_dir: str | Path, seeds: Sequence[int],
               losses: Sequence[str], **options: Any) -> dict[str, list[Arm]]:
    """Every (loss, seed) preference run, through one :func:`smolbook.train.sweep`; a seed draws the same pairs for
    every loss, at the same budget: ``loss -> [Arm per seed]``."""
    from smolbook.train import sweep

    specs = {(loss, seed): preference_spec(chapter, source, scale, output_dir, seed, loss, **options)
             for loss in losses for seed in seeds}
    done = sweep(specs, desc="preference training")
    return {loss: [Arm(loss, seed, specs[loss, seed].name, done[loss, seed].result) for seed in seeds]
            for loss in losses}


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
    from smolbook.evaluate.chat import chat_scores

    out: dict[str, dict[str, float]] = {}
    for rec in chat_scores(checkpoints, rows, modes, max_new_tokens, batch_size):
        out.setdefault(rec["checkpoint"], {})[rec["mode"]] = task_score(rec)
    return out


def preference_data(spec: Any, data: Any) -> Any:
    """The preference pairs a spec trains on, built by the same data builder the run uses (``spec.builder``)."""
    from smolbook.train.run import DATA_BUILDERS, budget_of

    return DATA_BUILDERS[spec.builder](spec, data, budget_of(spec))


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
    from smolbook.evaluate.chat import folder_teacher
    from smolbook.evaluate.scoring import score_completion, summarise

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
