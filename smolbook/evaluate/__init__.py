"""Evaluation: held-out scores used during pretraining (:mod:`smolbook.evaluate.heldout`), RULER-style
long-context probes (:mod:`smolbook.evaluate.ruler`), and chat evaluations through the chat template
(:mod:`smolbook.evaluate.chat`, IFEval's checkers in :mod:`smolbook.evaluate.ifeval`)."""
from __future__ import annotations

import importlib
from typing import Any

from smolbook.evaluate.heldout import (answer_accuracy, cloze_accuracy, heldout_evaluator, score_items,
                                       validation_loss)

# Chat evaluation names load on first use (PEP 562), like smolbook.data's.
_LAZY = {
    "smolbook.evaluate.chat": ("answer_matches", "evaluate_chat", "evaluate_checkpoints", "extract_answer", "format_ok",
                               "score_completion", "summarise", "tool_call_matches", "tool_call_valid"),
    "smolbook.evaluate.ifeval": ("ifeval_check", "ifeval_scores"),
    "smolbook.evaluate.language": ("detect_language",),
}
_WHERE = {name: mod for mod, names in _LAZY.items() for name in names}

__all__ = ["answer_accuracy", "cloze_accuracy", "heldout_evaluator", "score_items", "validation_loss", *sorted(_WHERE)]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'smolbook.evaluate' has no attribute '{name}'")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
