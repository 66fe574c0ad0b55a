"""SIGTERM during a real training subprocess saves a checkpoint; resuming reaches the uninterrupted run's loss."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from smolbook.train import pretrain
from helpers import SIGNAL_STEPS as STEPS
from helpers import SLOW_TRAIN_SCRIPT as SCRIPT
from helpers import ToyStream, toy_config, toy_model
from helpers import train_rows as _train_rows

@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_matches(tmp_path):
    out = tmp_path / "run"
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    deadline = time.time() + 120
    while len(_train_rows(out / "metrics.jsonl")) < 2:
        assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        assert time.time() < deadline, "training subprocess did not start"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    log = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 130, log[-2000:]
    ckpts = sorted((out / "checkpoints").iterdir())
    assert len(ckpts) == 1 and (ckpts[0] / "trainer_state.json").is_file()
    stopped_at = json.loads((ckpts[0] / "trainer_state.json").read_text())["step"]
    assert 2 <= stopped_at < STEPS and not (out / "final").exists()

    # Resume in this process with a different init seed: weights, optimizer, schedule and data position all
    # come from the checkpoint the signal handler wrote.
    resumed = pretrain(toy_model(seed=9), ToyStream(seed=2), toy_config(STEPS), out, resume=True)
    reference = pretrain(toy_model(seed=0), ToyStream(seed=2), toy_config(STEPS), tmp_path / "reference")
    a = dict(zip(*reference.series("loss")))
    b = dict(zip(*resumed.series("loss")))
    assert sorted(b) == list(range(1, STEPS + 1))  # metrics.jsonl continues the interrupted run's rows
    assert max(abs(a[s] - b[s]) for s in range(stopped_at + 1, STEPS + 1)) <= 1e-6
    assert abs(a[STEPS] - b[STEPS]) <= 1e-6
    assert (out / "final" / "model.safetensors").is_file()
