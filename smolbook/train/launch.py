"""How a pretraining run is started: in the notebook's process (``smoke``/``tiny``), under ``accelerate launch``
(``small``), or as a SLURM job (``full``), depending on the scale's ``launcher``. All three end in the same
entry point, ``smolbook train pretrain --scale S --output DIR`` (= ``python -m smolbook.train pretrain ...``).
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from smolbook.errors import SmolbookError
from smolbook.scales import Scale, get_scale
from smolbook.train.checkpoint import PRETRAIN_CHAPTER
from smolbook.train.config import TrainConfig
from smolbook.train.loop import TrainResult, pretrain

PRETRAIN_STAGES = ["stable", "stable-2", "decay"]
CONFIG_DIR = Path(__file__).with_name("configs")
# accelerate configs: one GPU for ``small``; FSDP full-shard over SmolLM3DecoderLayer in bf16 for the 3B (``full``).
LAUNCH_CONFIGS = {"small": "single_gpu.yaml", "full": "fsdp_3b.yaml"}
GPUS_PER_NODE = 8


def pretrain_dir(output_dir: str | Path) -> Path:
    """Where the pretraining run of a book run writes (metrics.jsonl, checkpoints/, final/)."""
    return Path(output_dir) / PRETRAIN_CHAPTER


def build_pretraining(scale: str | Scale, output_dir: str | Path, seed: int = 0) -> dict[str, Any]:
    """Data (load-or-build), the three-stage stream, a fresh model sized by the scale and its evaluator."""
    from smolbook.data import PretrainStream, prepare
    from smolbook.evaluate import heldout_evaluator
    from smolbook.model import build_model, smollm3_config

    s = get_scale(scale)
    data = prepare(s, output_dir, seed=seed)
    stream = PretrainStream(data, stages=PRETRAIN_STAGES, token_budget=s.pretrain_tokens, seq_len=s.seq_len,
                            batch_size=s.global_batch_size, seed=seed, doc_masking=True)
    model = build_model(smollm3_config(s, tokenizer=data.tokenizer), seed)
    return {"data": data, "stream": stream, "model": model, "eval_fn": heldout_evaluator(data, s)}


def train_in_process(scale: str | Scale, output_dir: str | Path, seed: int = 0, resume: bool = False,
                     evaluate: bool = True, **overrides: Any) -> TrainResult:
    """Pretrain in this process (what ``smolbook train pretrain`` does on each rank)."""
    s = get_scale(scale)
    parts = build_pretraining(s, output_dir, seed)
    config = TrainConfig.for_scale(s, seed=seed, **overrides)
    return pretrain(parts["model"], parts["stream"], config, pretrain_dir(output_dir),
                    eval_fn=parts["eval_fn"] if evaluate else None, tokenizer=parts["data"].tokenizer, resume=resume)


def launch_command(scale: str | Scale, output_dir: str | Path, seed: int = 0, resume: bool = False) -> list[str]:
    """The ``accelerate launch`` command line of a scale (multi-node arguments are added by the sbatch script)."""
    s = get_scale(scale)
    config = CONFIG_DIR / LAUNCH_CONFIGS.get(s.name, "single_gpu.yaml")
    cmd = ["accelerate", "launch", "--config_file", str(config), "-m", "smolbook.train", "pretrain",
           "--scale", s.name, "--output", str(Path(output_dir).resolve()), "--seed", str(seed)]
    return cmd + (["--resume"] if resume else [])


def write_sbatch(scale: str | Scale, output_dir: str | Path, seed: int = 0, resume: bool = False) -> Path:
    """An sbatch script for the scale's pretraining (8 GPUs per node; nodes from the global batch / micro batch)."""
    s = get_scale(scale)
    gpus = max(1, s.global_batch_size // s.micro_batch_size)
    nodes = max(1, -(-gpus // GPUS_PER_NODE))
    run = pretrain_dir(output_dir).resolve()
    run.mkdir(parents=True, exist_ok=True)
    launch = launch_command(s, output_dir, seed, resume)
    inner = " ".join(shlex.quote(a) for a in launch[:4]) + \
        " --num_machines $SLURM_NNODES --num_processes $((SLURM_NNODES * %d)) --machine_rank $SLURM_NODEID" \
        " --main_process_ip $MASTER_ADDR --main_process_port 29500 " % GPUS_PER_NODE + \
        " ".join(shlex.quote(a) for a in launch[4:])
    script = run / "pretrain.sbatch"
    script.write_text(f"""#!/bin/bash
#SBATCH --job-name=smolbook-pretrain-{s.name}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node={GPUS_PER_NODE}
#SBATCH --exclusive
#SBATCH --output={run}/slurm-%j.out
# {gpus} data-parallel ranks = global batch {s.global_batch_size} / micro batch {s.micro_batch_size} (stage1_8T.yaml: dp 192)
set -euo pipefail
export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
srun bash -c {shlex.quote(inner)}
""")
    return script


def run_pretraining(scale: str | Scale, output_dir: str | Path, seed: int = 0, resume: bool = False) -> TrainResult:
    """Pretrain the way the scale says: in-process (smoke/tiny), accelerate subprocess (small), SLURM (full).

    A launched run is read back from its folder (metrics.jsonl, final checkpoint) when it finishes. For SLURM the
    sbatch script is written into the run folder and the submit command printed; rerun once the job is done.
    """
    s = get_scale(scale)
    if s.launcher == "inprocess":
        return train_in_process(s, output_dir, seed=seed, resume=resume)
    if s.launcher == "accelerate":
        cmd = launch_command(s, output_dir, seed, resume)
        print("launching:", " ".join(shlex.quote(c) for c in cmd), flush=True)
        proc = subprocess.run(cmd)
        if proc.returncode != 0:
            raise SmolbookError(f"pretraining subprocess exited with code {proc.returncode}; see its output above, "
                                f"then rerun with resume=True to continue from the last checkpoint")
        return TrainResult.from_dir(pretrain_dir(output_dir))
    # slurm
    if (pretrain_dir(output_dir) / "final" / "config.json").is_file():
        return TrainResult.from_dir(pretrain_dir(output_dir))
    script = write_sbatch(s, output_dir, seed, resume)
    print(f"submit the pretraining job with:\n  sbatch {script}", flush=True)
    raise SmolbookError(f"pretraining at scale '{s.name}' runs as a SLURM job: submit it with `sbatch {script}`, "
                        f"then rerun this notebook once {pretrain_dir(output_dir) / 'final'} exists")


# -- command line ------------------------------------------------------------------------------------------------
def _cmd_pretrain(args: argparse.Namespace) -> int:
    overrides = {"steps": args.steps} if args.steps else {}
    result = train_in_process(args.scale, args.output, seed=args.seed, resume=args.resume,
                              evaluate=not args.no_eval, **overrides)
    if result.interrupted:
        print(f"smolbook: interrupted; checkpoint saved at {result.checkpoint}; continue with --resume", file=sys.stderr)
        return 130
    print(f"final checkpoint: {result.checkpoint}")
    return 0


def register_cli(subparsers: Any) -> None:
    """``smolbook train pretrain --scale S --output DIR [--resume]``."""
    p = subparsers.add_parser("train", help="pretraining (the entry point accelerate launch / torchrun run)")
    sub = p.add_subparsers(dest="train_command", required=True)
    q = sub.add_parser("pretrain", help="pretrain the scale's model through the three stages")
    q.add_argument("--scale", required=True, help="smoke, tiny, small or full")
    q.add_argument("--output", required=True, help="the run's output_dir (data in DIR/data, run in DIR/07_pretraining)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    q.add_argument("--steps", type=int, default=None, help="override the scale's step count (debugging)")
    q.add_argument("--no-eval", action="store_true", help="skip the periodic held-out evaluation")
    q.set_defaults(func=_cmd_pretrain)


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
