"""Two CPU processes (torchrun, gloo) follow the same loss trajectory as one process.

Each process takes half of every global batch; the loss is a token sum over the global token count and DDP
averages gradients, so the update is the same as one process's up to float summation order. Tolerance: 1e-5
absolute on the loss at every step (observed differences are ~1e-7).

torchrun rather than ``accelerate launch --cpu --num_processes 2``: accelerate 1.x starts multi-CPU jobs through
mpirun only; under torchrun the trainer's Accelerator(cpu=True) joins the gloo group itself.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from smolbook.train import TrainResult, pretrain
from helpers import ToyStream, toy_config, toy_model

TESTS = Path(__file__).resolve().parents[1]  # tests/, where helpers.py is
STEPS = 6
TOLERANCE = 1e-5

SCRIPT = textwrap.dedent(f"""
    import sys
    sys.path.insert(0, {str(TESTS)!r})
    from helpers import ToyStream, toy_config, toy_model
    from smolbook.train import pretrain

    pretrain(toy_model(seed=0), ToyStream(seed=4), toy_config({STEPS}), sys.argv[1])
""")


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out2 = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(out2)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    two = TrainResult.from_dir(out2)
    assert json.loads((out2 / "final" / "trainer_state.json").read_text())["world_size"] == 2
    one = pretrain(toy_model(seed=0), ToyStream(seed=4), toy_config(STEPS), tmp_path / "one")
    assert [r.get("stage") for r in two.rows()] == [r.get("stage") for r in one.rows()]
    a, b = one.series("loss")[1], two.series("loss")[1]
    assert len(a) == len(b) == STEPS
    assert max(abs(x - y) for x, y in zip(a, b)) <= TOLERANCE, list(zip(a, b))
    assert b[-1] < b[0]
    assert (out2 / "final" / "model.safetensors").is_file()
