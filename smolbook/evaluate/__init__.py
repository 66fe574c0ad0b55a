"""Evaluation: held-out scores used during pretraining (:mod:`smolbook.evaluate.heldout`) and RULER-style
long-context probes (:mod:`smolbook.evaluate.ruler`)."""
from smolbook.evaluate.heldout import (answer_accuracy, cloze_accuracy, heldout_evaluator, score_items,
                                       validation_loss)

__all__ = ["answer_accuracy", "cloze_accuracy", "heldout_evaluator", "score_items", "validation_loss"]
