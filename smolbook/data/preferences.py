"""Preference pairs for APO/DPO: the chosen answer from a stronger source, the rejected one from a weaker.

SmolLM3 took the chosen answer from a stronger model (Qwen3-32B) and the rejected one from a weaker
(Qwen3-0.6B). Here both sources are :class:`smolbook.teacher.Teacher` s, and every answer is verified
with the chat evaluation's own scorer: a pair is kept only when the chosen answer is right and the
rejected one wrong. Pairs where both are right, both wrong, or the weaker source wins are dropped and
counted, never silently.

Rows are in TRL's conversational preference format, ready for ``DPOTrainer``::

    {"prompt": [...messages...], "chosen": [{"role": "assistant", ...}], "rejected": [{"role": "assistant", ...}],
     "chat_template_kwargs": {...}, "kind": ..., "mode": ...}
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import datasets

from smolbook.data.chat import prompt_messages, template_kwargs
from smolbook.data.conversations import MODES
from smolbook.errors import SmolbookError

Scorer = Callable[[dict, str, str], dict]  # (row, completion, mode) -> {"correct": ..., "format_ok": ..., ...}


@dataclass
class PreferenceReport:
    """What happened to each candidate pair."""

    total: int = 0
    kept: int = 0
    both_right: int = 0
    both_wrong: int = 0
    inverted: int = 0        # the weaker source right, the stronger wrong
    by_mode: dict = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "kept": self.kept, "both_right": self.both_right, "both_wrong": self.both_wrong,
                "inverted": self.inverted, "by_mode": dict(self.by_mode)}


def preference_pairs(prompts: Sequence[dict], chosen: Any, rejected: Any, score: Scorer,
                     modes: Sequence[str] = MODES) -> tuple[Any, PreferenceReport]:
    """Pairs from two teachers (``chosen`` the stronger, ``rejected`` the weaker) over ``prompts`` in each mode, kept
    where ``score`` (``smolbook.evaluate.score_completion``: the evaluation layer's, passed in so that the data layer
    imports nothing above it) finds the chosen answer right and well-formed and the rejected one wrong.

    Returns a ``datasets.Dataset`` in TRL's preference format and the :class:`PreferenceReport`.
    """
    rows, report = [], PreferenceReport()
    prompts = [dict(p) for p in prompts]
    for mode in modes:
        if mode not in MODES:
            raise SmolbookError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        # Each row in its own mode: earlier assistant turns (and a /think or /no_think flag) are written in it.
        subset = [p for p in prompts if p["mode"] == mode]
        good, bad = chosen.generate(subset, mode), rejected.generate(subset, mode)
        kept_here = 0
        for row, g, b in zip(subset, good, bad):
            report.total += 1
            g_score = score(row, g, mode)
            g_ok = g_score["correct"] and g_score["format_ok"]
            b_ok = score(row, b, mode)["correct"]
            if g_ok and not b_ok:
                kept_here += 1
                rows.append({"prompt": prompt_messages(row), "chosen": [{"role": "assistant", "content": g}],
                             "rejected": [{"role": "assistant", "content": b}],
                             "chat_template_kwargs": {**row["chat_template_kwargs"], **template_kwargs(row, mode)},
                             "kind": row["kind"], "mode": mode})
            elif g_ok and b_ok:
                report.both_right += 1
            elif not g_ok and not b_ok:
                report.both_wrong += 1
            else:
                report.inverted += 1
        report.by_mode[mode] = kept_here
    report.kept = len(rows)
    if not rows:
        raise SmolbookError(f"no preference pair survived verification ({report.as_dict()}): the chosen source must "
                            "be right where the rejected one is wrong")
    return datasets.Dataset.from_list(rows), report
