"""The book on a SLURM cluster: where each training stage runs, and how a run spec is launched over an allocation.

Inside a SLURM job (``SLURM_JOB_ID`` set) a training run is launched with one ``srun`` task per node, each
starting ``torchrun`` for that node's GPUs; the ranks meet at a c10d rendezvous on the job's first node (where the
notebook, and so this code, runs). FSDP settings travel to the ranks as the environment variables accelerate's
own launcher would set from ``train/configs/fsdp_3b.yaml`` (activation checkpointing included), so one code path
serves GPUs and the CPU test cluster alike.

The recipe ran its stages with tensor (and, for long context, context) parallelism in nanotron; the book's
trainer has neither: every GPU is a data-parallel rank computing whole rows, and FSDP shards parameters,
gradients and optimizer state (what tensor parallelism spared in memory), with activation checkpointing (what
context parallelism spared in activations at 32k/64k). A step's rows must then split evenly over the ranks:
:func:`placement` picks the largest rank count the allocation and the stage's global batch allow, and
:func:`stage_plans` says, per stage, what the recipe used and what the book uses instead.
"""
from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from smolbook.errors import SmolbookError
from smolbook.recipe import load_recipe
from smolbook.scales import LONG_CONTEXT_STAGES, get_scale

GPUS_PER_NODE = 8
CONFIG_DIR = Path(__file__).with_name("train") / "configs"


@dataclass(frozen=True)
class Allocation:
    """The SLURM job this process runs in: its id, its nodes and the GPUs of each node (0 on CPU nodes)."""

    job_id: str
    nodes: int
    gpus_per_node: int
    head: str  # the first node: the rendezvous host

    @property
    def procs_per_node(self) -> int:
        """Training processes per node: one per GPU, or one per node without GPUs (gloo on CPU)."""
        return max(1, self.gpus_per_node)


@dataclass(frozen=True)
class StagePlan:
    """Where one training stage runs: the recipe's layout, the book's, and what replaces the difference."""

    stage: str
    rows: int            # sequences per optimizer step (the global batch)
    seq_len: int
    recipe_gpus: int
    recipe_layout: str   # "dp 192 x tp 2"
    nodes: int
    procs_per_node: int
    note: str

    @property
    def ranks(self) -> int:
        return self.nodes * self.procs_per_node


def allocation() -> Allocation | None:
    """The SLURM allocation this process runs inside, or ``None`` outside one."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return None
    nodes = int(os.environ.get("SLURM_JOB_NUM_NODES") or os.environ.get("SLURM_NNODES") or 1)
    gpus = _gpus_per_node_from_env()
    nodelist = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST") or socket.gethostname()
    return Allocation(job_id=job, nodes=nodes, gpus_per_node=gpus, head=first_host(nodelist))


def _gpus_per_node_from_env() -> int:
    """GPUs SLURM gave each node (``SLURM_GPUS_ON_NODE``, or ``--gpus-per-node``'s ``[type:]N``); 0 when none."""
    for key in ("SLURM_GPUS_ON_NODE", "SLURM_GPUS_PER_NODE"):
        raw = os.environ.get(key, "")
        if raw:
            try:
                return int(raw.split(":")[-1].split("(")[0])
            except ValueError:
                continue
    return 0


def first_host(nodelist: str) -> str:
    """The first host of a SLURM node list (``gpu[001-048]`` -> ``gpu001``), via ``scontrol show hostnames``."""
    if "[" not in nodelist and "," not in nodelist:
        return nodelist
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                             timeout=60, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError) as e:
        raise SmolbookError(f"cannot expand the SLURM node list '{nodelist}' with scontrol ({e})") from None
    if not out:
        raise SmolbookError(f"scontrol show hostnames '{nodelist}' printed no host")
    return out[0]


def placement(rows: int, max_nodes: int, procs_per_node: int, cap: int | None = None) -> tuple[int, int]:
    """``(nodes, processes per node)`` for a step of ``rows`` sequences: the most ranks (at most ``cap``, the
    recipe's GPUs for the stage) that divide ``rows`` evenly and fit the allocation, on as few nodes as possible.

    Every rank computes whole rows (no tensor or context parallelism), so 576 rows cannot use 384 GPUs evenly:
    they run on 288 (2 rows each), which is as fast as 384 ranks with 1 or 2 rows each would be.
    """
    if rows < 1 or max_nodes < 1 or procs_per_node < 1:
        raise SmolbookError(f"cannot place {rows} rows on {max_nodes} node(s) x {procs_per_node} process(es)")
    limit = min(max_nodes * procs_per_node, cap or rows, rows)
    for world in range(limit, 0, -1):
        if rows % world:
            continue
        for nodes in range(-(-world // procs_per_node), max_nodes + 1):
            if world % nodes == 0 and world // nodes <= procs_per_node:
                return nodes, world // nodes
    return 1, 1


def stage_plans(scale: str, nodes: int, gpus_per_node: int) -> list[StagePlan]:
    """The training stages of a scale with the recipe's parallelism, placed on ``nodes`` x ``gpus_per_node``."""
    s = get_scale(scale)
    runs = load_recipe().runs
    plans = []
    for stage in ("pretraining", *LONG_CONTEXT_STAGES):
        run = runs[stage]
        if stage == "pretraining":
            rows, seq = s.global_batch_size, s.seq_len
        else:
            b = s.budget(stage)
            rows, seq = b.rows_per_step, b.seq_len
        layout = f"dp {run.dp} x tp {run.tp}" + (f" x cp {run.context_parallel_size}"
                                                 if run.context_parallel_size > 1 else "")
        n, g = placement(rows, nodes, max(1, gpus_per_node), cap=run.gpus)
        replaced = ["tensor parallelism -> FSDP full-shard (parameters, gradients, optimizer state)"]
        if run.context_parallel_size > 1:
            replaced.append(f"context parallelism -> whole {seq:,}-token rows per GPU with activation checkpointing")
        note = "; ".join(replaced) + f"; {rows // (n * g)} row(s) of {seq:,} tokens per rank"
        if n * g < run.gpus:
            note += (f"; {rows} rows split evenly over {n * g} ranks, not {run.gpus} (a rank computes whole rows)")
        plans.append(StagePlan(stage=stage, rows=rows, seq_len=seq, recipe_gpus=run.gpus, recipe_layout=layout,
                               nodes=n, procs_per_node=g, note=note))
    return plans


def recipe_nodes(gpus_per_node: int = GPUS_PER_NODE) -> int:
    """Nodes of the recipe's largest stage (pretraining: 384 H100s = 48 nodes of 8)."""
    return max(-(-run.gpus // gpus_per_node) for run in load_recipe().runs.values())


def format_plan(plans: list[StagePlan], nodes: int, gpus_per_node: int) -> str:
    """The plan as the text ``smolbook submit`` prints."""
    lines = [f"job: {nodes} node(s) x {gpus_per_node} GPU(s)"]
    used = max((p.nodes for p in plans), default=nodes)
    for p in plans:
        lines.append(f"  {p.stage:<12} recipe {p.recipe_gpus:>4} GPUs ({p.recipe_layout}); book {p.ranks:>4} ranks "
                     f"= {p.nodes} node(s) x {p.procs_per_node}, {p.rows} x {p.seq_len:,} tokens per step")
        lines.append(f"  {'':<12} {p.note}")
    if used < nodes:
        lines.append(f"  note: the stages use at most {used} of the {nodes} nodes; --nodes {used} asks for no more")
    lines.append("  other runs (mid-training, SFT, APO) use the ranks their global batch splits over, on the same job")
    return "\n".join(lines)


# -- launching a run spec inside an allocation --------------------------------------------------------------------
def accelerate_env(config_file: str | Path) -> dict[str, str]:
    """The environment ``accelerate launch --config_file`` would give each rank, for ranks started by torchrun.

    accelerate's ``Accelerator()`` reads FSDP settings (``ACCELERATE_USE_FSDP``, ``FSDP_*``) and mixed precision
    from the environment; ``accelerate launch`` sets them from the config file, torchrun does not.
    """
    cfg = yaml.safe_load(Path(config_file).read_text()) or {}
    env = {"ACCELERATE_MIXED_PRECISION": str(cfg.get("mixed_precision", "no"))}
    if cfg.get("distributed_type") == "FSDP":
        env["ACCELERATE_USE_FSDP"] = "true"
        for key, value in (cfg.get("fsdp_config") or {}).items():
            name = key.upper() if key.startswith("fsdp_") else "FSDP_" + key.upper()
            if key == "fsdp_transformer_layer_cls_to_wrap":
                name = "FSDP_TRANSFORMER_CLS_TO_WRAP"  # accelerate's name for it
            env[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def free_port() -> int:
    """A TCP port free on this host: the rendezvous runs here, on the job's first node."""
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def torchrun_path() -> str:
    """This environment's ``torchrun`` (the job's nodes see the same virtual environment on the shared filesystem)."""
    import sys

    here = Path(sys.executable).with_name("torchrun")
    return str(here) if here.is_file() else "torchrun"


def torchrun_command(spec_file: str | Path, nodes: int, procs_per_node: int, endpoint: str, rdzv_id: str) -> list[str]:
    """``torchrun`` of one node's ranks of a saved spec, meeting the other nodes at ``endpoint`` (c10d rendezvous:
    ranks are assigned when all ``nodes`` have joined, so no node needs to know its own rank)."""
    return [torchrun_path(), f"--nnodes={nodes}", f"--nproc_per_node={procs_per_node}", "--rdzv_backend=c10d",
            f"--rdzv_endpoint={endpoint}", f"--rdzv_id={rdzv_id}", "--max_restarts=0",
            "-m", "smolbook.train", "run", str(Path(spec_file).resolve()), "--in-process"]


def srun_command(spec_file: str | Path, alloc: Allocation, nodes: int, procs_per_node: int, port: int | str,
                 rdzv_id: str) -> list[str]:
    """``srun`` one task per node, each a ``torchrun`` of that node's ranks, meeting at ``head:port`` (c10d)."""
    return ["srun", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
            "--overlap", f"--job-name=train-{Path(spec_file).parent.name}",
            *torchrun_command(spec_file, nodes, procs_per_node, f"{alloc.head}:{port}", rdzv_id)]


def launch_in_allocation(spec_file: str | Path, rows: int, config_file: str | Path | None,
                         alloc: Allocation) -> int:
    """Run a saved spec over the allocation (``srun`` + ``torchrun``) and wait; returns the exit code."""
    if shutil.which("srun") is None:
        raise SmolbookError("inside a SLURM job (SLURM_JOB_ID is set) but srun is not on PATH")
    nodes, per = placement(rows, alloc.nodes, alloc.procs_per_node)
    rdzv_id = f"smolbook-{alloc.job_id}-{os.getpid()}-{int(time.time())}"
    cmd = srun_command(spec_file, alloc, nodes, per, free_port(), rdzv_id)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if alloc.gpus_per_node and config_file is not None:
        env.update(accelerate_env(config_file))
    print(f"launching on {nodes} node(s) x {per} rank(s) of job {alloc.job_id}:\n  "
          + " ".join(shlex.quote(c) for c in cmd), flush=True)
    return subprocess.run(cmd, env=env).returncode
