"""``smolbook train run SPEC.yaml`` (= ``python -m smolbook.train run SPEC.yaml``): a run spec from the shell.

Without ``--in-process`` the scale's launcher runs it, exactly as a notebook's ``smolbook.train.run(spec)`` does
(in this process at smoke/tiny, ``accelerate launch`` at small, an sbatch script at full). ``--in-process`` is
what those launchers start on each rank (``accelerate launch -m smolbook.train run SPEC --in-process``, or under
``torchrun``): it trains right here and leaves registering the checkpoints to the process that launched it.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from smolbook.errors import SmolbookError
from smolbook.train.run import TrainingInterrupted, run, train_here
from smolbook.train.spec import RunSpec


def _cmd_run(args: argparse.Namespace) -> int:
    spec = RunSpec.load(args.spec)
    overrides = {k: v for k, v in (("output_dir", args.output), ("resume", args.resume)) if v is not None}
    if overrides:
        spec = RunSpec.from_dict({**spec.to_dict(), **overrides})
    try:
        result = train_here(spec) if args.in_process else run(spec)
    except TrainingInterrupted as e:
        print(f"smolbook: {e}", file=sys.stderr)
        return 130
    if result.interrupted:
        print(f"smolbook: interrupted; checkpoint saved at {result.checkpoint}; the same command continues it",
              file=sys.stderr)
        return 130
    print(f"final checkpoint: {result.checkpoint}")
    return 0


def _resume(text: str) -> str | bool:
    return {"auto": "auto", "true": True, "false": False}.get(text.lower(), text)


def register_cli(subparsers: Any) -> None:
    """``smolbook train run SPEC.yaml [--output DIR] [--resume auto|true|false] [--in-process]``."""
    p = subparsers.add_parser("train", help="run a training spec (pretraining, long context, ...) at any scale")
    sub = p.add_subparsers(dest="train_command", required=True)
    q = sub.add_parser("run", help="run a RunSpec YAML file the way its scale says (smolbook.train.run)")
    q.add_argument("spec", help="a RunSpec YAML file (RunSpec.save writes one; every run folder keeps its spec.yaml)")
    q.add_argument("--output", default=None, help="override the spec's output_dir")
    q.add_argument("--resume", type=_resume, default=None, help="auto (default: continue the same run), true or false")
    q.add_argument("--in-process", action="store_true",
                   help="train in this process (what accelerate launch / torchrun start on each rank)")
    q.set_defaults(func=_cmd_run)


def main(argv: list[str] | None = None) -> int:
    """``python -m smolbook.train ...``: the same commands as ``smolbook train ...``."""
    parser = argparse.ArgumentParser(prog="python -m smolbook.train")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except SmolbookError as e:
        print(f"smolbook: error: {e}", file=sys.stderr)
        return 2
