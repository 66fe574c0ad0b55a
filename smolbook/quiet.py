"""Keep library chatter out of the book: what a reader sees in a chapter is the chapter's own output.

``quiet_libraries()`` runs when a notebook makes its :class:`smolbook.Chapter`, so a chapter run by
``smolbook run`` and the same chapter run by hand in Jupyter are equally clean. It filters at the source,
by logger and by exact message, only noise the book has checked is harmless:

- accelerate's "Removed shared tensor {'lm_head.weight'} while saving": SmolLM3 ties its input and output
  embeddings, so the saved checkpoint holds that tensor once by design (the checkpoint reloads tied);
- transformers 5's renames of ``past_key_values`` to ``cache`` (a log line and a ``FutureWarning``) and of
  gradient checkpointing to activation checkpointing (read by TRL under the old name): deprecations of argument
  names, not about what the chapter measures;
- transformers' "mtime may not be reliable": it falls back to ordering TRL's checkpoints by step, as wanted;
- the progress bars that transformers (e.g. "Writing model shards"), huggingface_hub and datasets draw
  around their own work. The book's own bars (training, evaluation) stay.

Everything else a library logs still reaches the notebook.
"""
from __future__ import annotations

import logging
import os
import sys
import warnings

# logger name -> message fragments dropped from it (the logger where the record is made, so that the
# filter holds whatever handlers the library or the notebook add later)
DROPPED_LOG_MESSAGES: dict[str, tuple[str, ...]] = {
    "accelerate.utils.other": ("Removed shared tensor {'lm_head.weight'} while saving",),
    "transformers.utils.generic": ("`past_key_values`/`cache_params` are deprecated",),
    # TRL's checkpoints of a short run are written within a second of each other; transformers then orders them by
    # step number instead of modification time, which is the order the book wants anyway
    "transformers.trainer_utils": ("mtime may not be reliable on this filesystem",),
}
# (message regex, category) of Python warnings ignored
IGNORED_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    (r"`past_key_values` is deprecated", FutureWarning),
    # transformers 5 renamed gradient checkpointing to activation checkpointing; TRL's configs and trainers still
    # read the old names (the book sets it off explicitly on CPU), which warns on every SFT/DPO run
    (r"`gradient_checkpointing` is deprecated", FutureWarning),
    (r"`is_gradient_checkpointing` is deprecated", FutureWarning),
    (r"`gradient_checkpointing_enable` is deprecated", FutureWarning),
)
# environment switches read when the library is imported
PROGRESS_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}


class DropMessages(logging.Filter):
    """Drops log records whose message contains one of ``fragments``."""

    def __init__(self, fragments: tuple[str, ...]):
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(f in message for f in self.fragments)


def quiet_libraries() -> None:
    """Install the filters above; idempotent, and cheap: it imports no library that is not loaded yet."""
    for name, fragments in DROPPED_LOG_MESSAGES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropMessages) and f.fragments == fragments for f in logger.filters):
            logger.addFilter(DropMessages(fragments))
    for message, category in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for key, value in PROGRESS_ENV.items():
        os.environ.setdefault(key, value)
    # Libraries imported before the chapter read those switches already: tell them directly.
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
