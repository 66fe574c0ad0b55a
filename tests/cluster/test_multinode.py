"""Two torchrun "nodes" on one machine run a run spec and match one process.

The launcher inside a SLURM job starts one ``torchrun`` per node (:func:`smolbook.cluster.torchrun_command`) and
the nodes meet at a c10d rendezvous on the first node. Here that exact command is started twice on this machine
(``--nnodes 2``, one process each, gloo on CPU, rendezvous on 127.0.0.1), with node ranks 0 and 1 in the
environment as srun would give them (c10d assigns ranks itself at the rendezvous). Each node takes half of every
global batch; in fp32 the loss trajectory equals one process's within 1e-5.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from smolbook.cluster import free_port, torchrun_command
from smolbook.train import BudgetSpec, RunSpec, TrainResult, run

pytestmark = pytest.mark.slow
TOLERANCE = 1e-5


def _spec(out: Path, name: str) -> RunSpec:
    # fp32: the claim is about splitting the batch over nodes, which bf16 rounding (per shape) would blur
    return RunSpec(chapter="multinode", name=name, scale="smoke", output_dir=str(out), precision="fp32",
                   budget=BudgetSpec(steps=6), checkpoint_every=3, evaluate=False)


def test_two_torchrun_nodes_match_one_process(pretrained_run, tmp_path):
    spec_file = _spec(pretrained_run, "two-nodes").save(tmp_path / "spec.yaml")
    cmd = torchrun_command(spec_file, nodes=2, procs_per_node=1, endpoint=f"127.0.0.1:{free_port()}",
                           rdzv_id=f"test-{os.getpid()}")
    assert "--nnodes=2" in cmd and "--rdzv_backend=c10d" in cmd
    nodes = []
    for node_rank in (0, 1):
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", SLURM_NODEID=str(node_rank),
                   SLURM_PROCID=str(node_rank))
        log = (tmp_path / f"node{node_rank}.log").open("w")
        nodes.append((subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    for proc, log in nodes:
        try:
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    logs = "\n".join((tmp_path / f"node{i}.log").read_text()[-2000:] for i in (0, 1))
    assert all(p.returncode == 0 for p, _ in nodes), logs

    run_dir = pretrained_run / "multinode" / "two-nodes"
    assert json.loads((run_dir / "final" / "trainer_state.json").read_text())["world_size"] == 2
    two = TrainResult.from_dir(run_dir)
    one = run(_spec(pretrained_run, "one-process"))
    a, b = one.series("loss")[1], two.series("loss")[1]
    assert len(a) == len(b) == 6
    assert max(abs(x - y) for x, y in zip(a, b)) <= TOLERANCE, list(zip(a, b))
    assert (run_dir / "final" / "model.safetensors").is_file()
