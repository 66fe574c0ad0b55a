"""The SLURM batch script of a book job or a training run, written so that preemption loses nothing.

The job runs ``smolbook run`` (papermill, chapter by chapter) on the allocation's first node; each training cell
sees ``SLURM_JOB_ID`` and launches its run spec over the job's nodes with ``srun`` + ``torchrun``
(:mod:`smolbook.cluster`), waits, and reads the run back from the run folder on the shared filesystem.

Preemption loses nothing:

* ``#SBATCH --requeue``: a preempted job (or ``scontrol requeue``) goes back to the queue with the same script.
* ``#SBATCH --signal=B:USR1@S``: S seconds before the time limit the script touches a stop file that every
  training rank watches (:mod:`smolbook.train.preemption`); they save a checkpoint at the same step and exit, the
  chapter fails as *interrupted*, and the script requeues the job itself.
* SIGTERM (preemption, ``scontrol requeue``, ``scancel``) reaches every process of the job: the trainer saves a
  checkpoint on it too. The book runner ignores it so that the chapter ends as interrupted rather than vanishing.
* The requeued job runs the same command: ``smolbook run`` skips finished chapters (its manifest), and the
  interrupted chapter's training cell resumes its run from the newest intact checkpoint (``resume="auto"``).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from smolbook.cluster import GPUS_PER_NODE, recipe_nodes
from smolbook.errors import SmolbookError
from smolbook.scales import SCALE_NAMES, get_scale

DEFAULT_SIGNAL_SECONDS = 600  # time for the last step and a 3B checkpoint before the time limit
_TIME = re.compile(r"^(\d+-)?\d+(:\d\d){0,2}$|^\d+-\d+$")
_NAME = re.compile(r"^[A-Za-z0-9_.,:+-]+$")


@dataclass
class JobOptions:
    """What the sbatch header asks for; the defaults follow the scale (the recipe's 48 nodes x 8 GPUs at full)."""

    scale: str
    output: Path
    nodes: int = 1
    gpus_per_node: int = 0
    partition: str | None = None
    account: str | None = None
    time: str | None = None
    signal_seconds: int = DEFAULT_SIGNAL_SECONDS
    job_name: str = "smolbook"
    launcher: str = "scale"  # "srun": launch even a CPU scale's runs with srun + torchrun
    extra_env: dict[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """Clear errors for bad input, before anything is written or submitted."""
        if self.scale not in SCALE_NAMES:
            raise SmolbookError(f"unknown scale '{self.scale}': choose one of {', '.join(SCALE_NAMES)}")
        if not isinstance(self.nodes, int) or self.nodes < 1:
            raise SmolbookError(f"--nodes must be a positive number of nodes, got {self.nodes!r}")
        if not isinstance(self.gpus_per_node, int) or self.gpus_per_node < 0:
            raise SmolbookError(f"--gpus-per-node must be 0 or more, got {self.gpus_per_node!r}")
        if self.signal_seconds < 10:
            raise SmolbookError(f"--signal-seconds must leave time to save a checkpoint (>= 10), got {self.signal_seconds}")
        if self.time is not None and not _TIME.match(self.time):
            raise SmolbookError(f"--time '{self.time}' is not a SLURM time (MM, HH:MM:SS, D-HH, D-HH:MM:SS)")
        for key in ("partition", "account", "job_name"):
            v = getattr(self, key)
            if v is not None and not _NAME.match(v):
                raise SmolbookError(f"--{key.replace('_', '-')} '{v}' is not a SLURM name (letters, digits, _.-)")
        if " " in str(self.output):
            raise SmolbookError(f"output folder '{self.output}' has a space in its path: choose one without spaces")
        if self.launcher not in ("scale", "srun"):
            raise SmolbookError(f"--launcher must be 'scale' or 'srun', got {self.launcher!r}")


def default_resources(scale: str) -> tuple[int, int]:
    """``(nodes, GPUs per node)`` for a scale: the recipe's largest stage at full (48 x 8), one GPU at small, one
    CPU node otherwise."""
    s = get_scale(scale)
    if s.name == "full":
        return recipe_nodes(GPUS_PER_NODE), GPUS_PER_NODE
    return 1, 1 if s.device == "cuda" else 0


def render_job(opts: JobOptions, command: list[str], comment: str = "") -> str:
    """The sbatch script: resources, ``--requeue`` and the early signal; a trap that stops training through the
    stop file; ``command`` run in the background with SIGTERM ignored (so it ends its chapter as interrupted);
    and a self-requeue when the stop came from the time limit."""
    opts.check()
    out = opts.output.resolve()
    logs = out / "slurm"
    header = [f"#SBATCH --job-name={opts.job_name}", f"#SBATCH --nodes={opts.nodes}", "#SBATCH --ntasks-per-node=1",
              f"#SBATCH --output={logs}/%x-%j.out", "#SBATCH --open-mode=append", "#SBATCH --requeue",
              f"#SBATCH --signal=B:USR1@{opts.signal_seconds}"]
    if opts.gpus_per_node:
        header += [f"#SBATCH --gpus-per-node={opts.gpus_per_node}", "#SBATCH --exclusive"]
    header += [f"#SBATCH --{k}={v}" for k, v in (("partition", opts.partition), ("account", opts.account),
                                                 ("time", opts.time)) if v]
    env = {"PYTHONUNBUFFERED": "1", **opts.extra_env}
    if opts.launcher == "srun":
        env["SMOLBOOK_LAUNCHER"] = "slurm"
    exports = "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env.items())
    notes = "".join(f"# {line}\n" for line in comment.splitlines())
    cmd = " ".join(shlex.quote(c) for c in command)
    return f"""#!/bin/bash
{chr(10).join(header)}
{notes}# Written by smolbook submit. A requeued job reruns this script: finished chapters are skipped and the
# interrupted training run resumes from its newest intact checkpoint.
set -uo pipefail
: "${{SLURM_JOB_ID:?submit this script with sbatch}}"
mkdir -p {shlex.quote(str(logs))}
cd {shlex.quote(str(Path.cwd().resolve()))} || exit 1
{exports}
export SMOLBOOK_STOP_FILE={shlex.quote(str(logs))}/stop-"$SLURM_JOB_ID"
rm -f "$SMOLBOOK_STOP_FILE"
terminated=0
# shellcheck disable=SC2317  # called by trap
on_usr1() {{
  echo "smolbook: $(date -u +%FT%TZ) time limit near: training checkpoints and stops, then the job requeues"
  touch "$SMOLBOOK_STOP_FILE"
}}
# shellcheck disable=SC2317  # called by trap
on_term() {{
  echo "smolbook: $(date -u +%FT%TZ) SIGTERM (preempted, requeued or cancelled): training checkpoints and stops"
  terminated=1
  touch "$SMOLBOOK_STOP_FILE"
}}
trap on_usr1 USR1
trap on_term TERM
echo "smolbook: job $SLURM_JOB_ID (restart ${{SLURM_RESTART_COUNT:-0}}) on $SLURM_JOB_NUM_NODES node(s): $SLURM_JOB_NODELIST"
(trap '' TERM; exec {cmd}) &
child=$!
status=0
while :; do
  wait "$child"
  status=$?
  kill -0 "$child" 2>/dev/null || break
done
if [ -e "$SMOLBOOK_STOP_FILE" ] && [ "$terminated" = 0 ]; then
  echo "smolbook: requeueing job $SLURM_JOB_ID to continue"
  scontrol requeue "$SLURM_JOB_ID"
  exit 0
fi
echo "smolbook: finished with status $status"
exit "$status"
"""
