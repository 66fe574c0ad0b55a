"""Fixtures shared by several test files: a smoke-scale run folder with chapter 07's pretraining in it."""
from __future__ import annotations

from pathlib import Path

import pytest

PRETRAIN_CHAPTER = "07_pretraining"


@pytest.fixture(scope="session")
def pretrained_run(tmp_path_factory) -> Path:
    """A run folder (``output_dir``) where the smoke pretraining spec ran and registered its checkpoints, as
    chapter 07 does: the data, ``07_pretraining/pretrain/`` and ``checkpoints.json``. About 5 s."""
    from smolbook.train import RunSpec, run

    out = tmp_path_factory.mktemp("run") / "smoke"
    run(RunSpec(chapter=PRETRAIN_CHAPTER, name="pretrain", scale="smoke", output_dir=str(out), register_stages=True))
    return out
