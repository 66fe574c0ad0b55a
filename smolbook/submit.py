"""``smolbook submit``: run the book as one SLURM batch job that survives preemption (the script and why it survives
are :mod:`smolbook.sbatch`'s).

The job runs ``smolbook run`` (papermill, chapter by chapter) on the allocation's first node; each training cell
sees ``SLURM_JOB_ID`` and launches its run spec over the job's nodes with ``srun`` + ``torchrun``
(:mod:`smolbook.cluster`), waits, and reads the run back from the run folder on the shared filesystem.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from smolbook.cluster import Allocation, format_plan, srun_command, stage_plans
from smolbook.errors import SmolbookError
from smolbook.runner import check_params, default_notebooks_dir, discover, parse_params, select
from smolbook.sbatch import DEFAULT_SIGNAL_SECONDS, JobOptions, default_resources, render_job
from smolbook.scales import SCALE_NAMES


def book_command(opts: JobOptions, only: str | None, start: str | None, seed: int, params: list[str],
                 notebooks: Path) -> list[str]:
    """``smolbook run`` as the job runs it (this Python, so the job uses the same environment)."""
    cmd = [sys.executable, "-m", "smolbook.cli", "run", "--scale", opts.scale, "--output", str(opts.output.resolve()),
           "--seed", str(seed), "--notebooks", str(notebooks.resolve()), "--no-progress"]
    if only:
        cmd += ["--only", only]
    if start:
        cmd += ["--from", start]
    for p in params:
        cmd += ["--param", p]
    return cmd


def launch_lines(opts: JobOptions) -> list[str]:
    """The ``srun``/``torchrun`` line each recipe stage's training cell runs inside the job (for ``--dry-run``)."""
    alloc = Allocation(job_id="$SLURM_JOB_ID", nodes=opts.nodes, gpus_per_node=opts.gpus_per_node, head="$HEAD")
    lines = []
    for p in stage_plans(opts.scale, opts.nodes, max(1, opts.gpus_per_node)):
        spec = opts.output.resolve() / "<chapter>" / p.stage / "spec.yaml"
        cmd = srun_command(spec, alloc, p.nodes, p.procs_per_node, "$PORT", f"$SLURM_JOB_ID-{p.stage}")
        lines.append(f"{p.stage}: " + " ".join(cmd))
    return lines


def submit(opts: JobOptions, only: str | None = None, start: str | None = None, seed: int = 0,
           params: list[str] | None = None, dry_run: bool = False) -> tuple[Path, str | None]:
    """Write the book's sbatch script into ``OUTPUT/slurm/`` and submit it (``dry_run``: print, do not submit).

    Returns the script and the job id (``None`` on a dry run)."""
    opts.check()
    notebooks = default_notebooks_dir()
    chosen = select(discover(notebooks), only, start)  # bad --only/--from fail here, not in the queue
    check_params(chosen, parse_params(params))  # a typo fails here, not after the job waited in the queue
    plan = format_plan(stage_plans(opts.scale, opts.nodes, max(1, opts.gpus_per_node)), opts.nodes,
                       opts.gpus_per_node)
    chapters = ", ".join(b.name for b in chosen)
    script_text = render_job(opts, book_command(opts, only, start, seed, params or [], notebooks),
                             comment=f"the book at scale {opts.scale}: {chapters}\n{plan}")
    print(plan)
    if dry_run:
        print("\n--- sbatch script (not submitted: --dry-run) ---")
        print(script_text)
        print("--- training launches inside the job ($HEAD: the first node; $PORT: a free port there) ---")
        print("\n".join(launch_lines(opts)))
        return opts.output.resolve() / "slurm" / f"book-{opts.scale}.sbatch", None
    if shutil.which("sbatch") is None:
        raise SmolbookError("sbatch is not on PATH: run this on a SLURM login node (or use --dry-run to see the job)")
    script = opts.output.resolve() / "slurm" / f"book-{opts.scale}.sbatch"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(script_text)
    proc = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SmolbookError(f"sbatch refused the job: {proc.stderr.strip() or proc.stdout.strip()}")
    job = proc.stdout.strip().split(";")[0]
    print(f"submitted job {job}: {script}\n  watch: squeue -j {job}; tail -f {script.parent}/{opts.job_name}-{job}.out")
    return script, job


def _cmd_submit(args: argparse.Namespace) -> int:
    nodes, gpus = default_resources(args.scale) if args.scale in SCALE_NAMES else (1, 0)
    output = Path(args.output if args.output else f"runs/{args.scale}")
    opts = JobOptions(scale=args.scale, output=output, nodes=args.nodes if args.nodes is not None else nodes,
                      gpus_per_node=args.gpus_per_node if args.gpus_per_node is not None else gpus,
                      partition=args.partition, account=args.account, time=args.time,
                      signal_seconds=args.signal_seconds, job_name=args.job_name or f"smolbook-{args.scale}",
                      launcher=args.launcher)
    submit(opts, only=args.only, start=args.start, seed=args.seed, params=args.param, dry_run=args.dry_run)
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="run the book as a SLURM batch job (multi-node training, requeue on preemption)",
                       description="Write an sbatch job that runs `smolbook run` inside the allocation; training "
                                   "cells launch srun + torchrun over its nodes. Preemption and the time limit "
                                   "checkpoint and requeue; the requeued job resumes.")
    p.add_argument("--scale", required=True, help=f"one of {', '.join(SCALE_NAMES)}")
    p.add_argument("--only", help="comma-separated chapters, e.g. 07,08")
    p.add_argument("--from", dest="start", help="start at this chapter, e.g. 07")
    p.add_argument("--output", help="run folder on the shared filesystem (default runs/<scale>)")
    p.add_argument("--nodes", type=int, help="nodes (default: the recipe's 48 at full, else 1)")
    p.add_argument("--gpus-per-node", type=int, help="GPUs per node (default 8 at full, 1 at small, 0 on CPU)")
    p.add_argument("--partition", help="SLURM partition")
    p.add_argument("--account", help="SLURM account")
    p.add_argument("--time", help="time limit, e.g. 2-00:00:00 (the job requeues itself before it)")
    p.add_argument("--signal-seconds", type=int, default=DEFAULT_SIGNAL_SECONDS,
                   help=f"checkpoint this many seconds before the time limit (default {DEFAULT_SIGNAL_SECONDS})")
    p.add_argument("--job-name", help="job name (default smolbook-<scale>)")
    p.add_argument("--launcher", choices=("scale", "srun"), default="scale",
                   help="srun: launch every training run with srun + torchrun, even at CPU scales")
    p.add_argument("--seed", type=int, default=0, help="seed injected into every notebook")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="chapter option (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, the script and the launch lines only")
    p.set_defaults(func=_cmd_submit)
