"""Fixtures several test folders share (a smoke run folder with chapter 07's pretraining, the smoke data and
conversations), and the ``slow`` marker on the tests ``make test-fast`` leaves out.

The folders follow the library's layers: recipe, data, chat, model, train, evaluate, chapters (one chapter's
helpers each), book (runner, claims, report, CLI), site, cluster (SLURM, multi-node). ``helpers.py`` holds the toy
stream and model of the trainer tests and the chat-trainer run spec.
"""
from __future__ import annotations

from pathlib import Path

import pytest

PRETRAIN_CHAPTER = "07_pretraining"
# Files whose tests execute notebooks, start clusters, servers, browsers or several training processes:
# ``make test`` runs them, ``make test-fast`` (``-m "not slow"``) does not.
SLOW_FILES = {"test_book.py", "test_site_browser.py", "test_slurm.py", "test_multinode.py", "test_submit.py",
              "test_train_distributed.py", "test_train_signals.py", "test_serve.py", "test_runner.py",
              "test_ablations.py", "test_alignment_chapter.py", "test_merging.py", "test_lighteval.py",
              "test_sft_rows.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def pretrained_run(tmp_path_factory) -> Path:
    """A run folder (``output_dir``) where the smoke pretraining spec ran and registered its checkpoints, as
    chapter 07 does: the data, ``07_pretraining/pretrain/`` and ``checkpoints.json``. About 5 s."""
    from smolbook.train import RunSpec, run

    out = tmp_path_factory.mktemp("run") / "smoke"
    run(RunSpec(chapter=PRETRAIN_CHAPTER, name="pretrain", scale="smoke", output_dir=str(out), register_stages=True))
    return out


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory):
    """The smoke scale's data products (corpus, tokenizer, token ids) in a folder of their own."""
    from smolbook.data import prepare

    return prepare("smoke", tmp_path_factory.mktemp("smoke-data"), progress=False)


@pytest.fixture
def smoke_out(tmp_path, smoke_data):
    """A run folder of its own (``tmp_path``) holding a copy of the smoke data: what ``prepare(scale, output_dir)``
    returns in a chapter, for tests that train runs into the folder."""
    import shutil

    from smolbook.data import prepare

    shutil.copytree(smoke_data.root, tmp_path / "data")
    return prepare("smoke", tmp_path, progress=False)


@pytest.fixture(scope="session")
def chat():
    """The smoke scale's conversations (training and held-out, every kind), from the corpus of seed 0."""
    from smolbook.data.chat import build_chat_data

    return build_chat_data("smoke", seed=0)
