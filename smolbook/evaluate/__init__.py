"""Evaluation: held-out scores used during pretraining (:mod:`smolbook.evaluate.heldout`), RULER-style
long-context probes (:mod:`smolbook.evaluate.ruler`), and chat evaluations through the chat template
(:mod:`smolbook.evaluate.chat`, IFEval's checkers in :mod:`smolbook.evaluate.ifeval`), and the same tasks through
lighteval (:mod:`smolbook.evaluate.lighteval_tasks`, run by :mod:`smolbook.evaluate.lighteval_run`)."""
from __future__ import annotations

from smolbook.evaluate.heldout import (ablation_evaluator, answer_accuracy, cloze_accuracy, embedding_norm,
                                       heldout_evaluator, score_items, validation_loss)
from smolbook.lazy import lazy_exports

# Chat evaluation names load on first use (PEP 562), like smolbook.data's.
_LAZY = {
    "smolbook.evaluate.chat": ("chat_scores", "evaluate_chat", "evaluate_checkpoints", "learning_curve"),
    "smolbook.evaluate.scoring": ("answer_matches", "extract_answer", "format_ok", "score_completion", "summarise",
                                  "tool_call_matches", "tool_call_valid"),
    "smolbook.evaluate.ifeval": ("ifeval_check", "ifeval_scores"),
    "smolbook.evaluate.longcontext": ("copying",),
    "smolbook.evaluate.language": ("detect_language",),
    # lighteval: the book's tasks as custom tasks, run offline on any checkpoint (chapter 14, `smolbook eval`)
    "smolbook.evaluate.lighteval_run": ("evaluate_checkpoint",),
    "smolbook.evaluate.lighteval_book": ("evaluate_registered", "win_rates"),
}
_lazy_names, __getattr__, _ = lazy_exports(__name__, _LAZY, globals())
__all__ = ["ablation_evaluator", "answer_accuracy", "cloze_accuracy", "embedding_norm", "heldout_evaluator", "score_items",
           "validation_loss", *_lazy_names]
