"""smolbook.quiet: the library noise a chapter must not show is dropped at its source, and nothing else."""
from __future__ import annotations

import logging
import os
import warnings

import pytest

from smolbook.quiet import quiet_libraries


def test_drops_only_the_known_noise(caplog: pytest.LogCaptureFixture):
    quiet_libraries()
    quiet_libraries()  # idempotent: one filter per logger
    logger = logging.getLogger("accelerate.utils.other")
    assert len(logger.filters) == 1
    with caplog.at_level(logging.WARNING):
        logger.warning("Removed shared tensor {'lm_head.weight'} while saving. This should be OK")
        logger.warning("Removed shared tensor {'model.layers.0.mlp.weight'} while saving.")  # not a tie: kept
        logging.getLogger("transformers.utils.generic").warning(
            "`past_key_values`/`cache_params` are deprecated. Use `cache` instead.")
        logging.getLogger("transformers.utils.generic").warning("something else")
    assert [r.getMessage() for r in caplog.records] == [
        "Removed shared tensor {'model.layers.0.mlp.weight'} while saving.", "something else"]


def test_silences_the_cache_rename_warning_and_progress_bars():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_libraries()
        warnings.warn("`past_key_values` is deprecated and will be removed in version 5.40.0", FutureWarning)
        warnings.warn("another future change", FutureWarning)
    assert [str(w.message) for w in caught] == ["another future change"]
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
