"""``smolbook submit`` without a cluster: the job it writes for each scale, its errors, and the two ways a job
stops training without losing it (the stop file of the time-limit signal; a checkpoint cut off mid-write).

The job running on a real SLURM is tests/test_slurm.py; two torchrun nodes are tests/test_multinode.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smolbook.cluster import accelerate_env, placement, stage_plans
from smolbook.train import TrainResult, pretrain
from smolbook.train import checkpoint as ckpt_mod
from smolbook.train.run import CONFIG_DIR
from helpers import SLOW_TRAIN_SCRIPT as SCRIPT
from helpers import ToyStream, toy_config, toy_model
from helpers import train_rows as _train_rows

SMOLBOOK = str(Path(sys.executable).with_name("smolbook"))
STEPS = 30  # at 0.3 s a step: metrics.jsonl is flushed every 5 s, so the first rows show up mid-run
SLOW_SCRIPT = SCRIPT.replace("toy_config(12)", f"toy_config({STEPS})")


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SMOLBOOK, *args], capture_output=True, text=True, timeout=120, env=env)


def _script_of(dry_run_output: str) -> str:
    text = dry_run_output.split("--- sbatch script (not submitted: --dry-run) ---\n", 1)[1]
    return text.split("\n--- training launches", 1)[0]


def _check_shell(script: Path) -> None:
    r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (scripts/setup.sh --test installs Debian's shellcheck)")
    r = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_full_dry_run_is_the_recipes_48_nodes_with_srun_torchrun_requeue_and_signal(tmp_path):
    r = _cli("submit", "--scale", "full", "--dry-run", "--output", str(tmp_path / "full"), "--partition", "hopper",
             "--account", "smol", "--time", "2-00:00:00")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    script = _script_of(out)
    for line in ("#SBATCH --nodes=48", "#SBATCH --gpus-per-node=8", "#SBATCH --requeue", "#SBATCH --signal=B:USR1@600",
                 "#SBATCH --partition=hopper", "#SBATCH --account=smol", "#SBATCH --time=2-00:00:00",
                 "#SBATCH --ntasks-per-node=1"):
        assert line in script.splitlines(), line
    assert "-m smolbook.cli run --scale full" in script and "scontrol requeue" in script
    # the plan: what the recipe used per stage and what replaces tensor / context parallelism
    assert "pretraining  recipe  384 GPUs (dp 192 x tp 2)" in out and "lc-32k       recipe   96 GPUs" in out
    assert "tensor parallelism -> FSDP full-shard" in out and "context parallelism -> whole 32,768-token rows" in out
    launches = out.split("--- training launches", 1)[1]
    assert "srun --nodes=36" in launches and "--nnodes=36 --nproc_per_node=8 --rdzv_backend=c10d" in launches
    assert "--rdzv_endpoint=$HEAD:$PORT" in launches and "smolbook.train run" in launches
    assert not (tmp_path / "full" / "slurm").exists()  # a dry run writes nothing
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    _check_shell(path)


def test_placement_splits_rows_evenly_over_whole_nodes():
    assert placement(576, 48, 8, cap=384) == (36, 8)     # 2 rows per GPU: 384 ranks cannot split 576 rows
    assert placement(576, 24, 8, cap=384) == (24, 8)     # the recipe's dp 192 x 3 rows
    assert placement(72, 48, 8, cap=96) == (9, 8)
    assert placement(36, 48, 8, cap=96) == (6, 6)
    assert placement(4, 1, 1) == (1, 1)                  # the smoke scale on one CPU node
    plans = {p.stage: p for p in stage_plans("full", 48, 8)}
    assert plans["pretraining"].recipe_gpus == 384 and plans["lc-64k"].recipe_layout == "dp 12 x tp 2 x cp 4"


def test_fsdp_config_checkpoints_activations_and_reaches_torchrun_ranks():
    env = accelerate_env(CONFIG_DIR / "fsdp_3b.yaml")
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_ACTIVATION_CHECKPOINTING"] == "true"
    assert env["FSDP_TRANSFORMER_CLS_TO_WRAP"] == "SmolLM3DecoderLayer" and env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    from accelerate.utils import FullyShardedDataParallelPlugin

    # syncing module states needs a GPU to broadcast from; everything else is read the same on this CPU machine
    cpu = dict(env, FSDP_SYNC_MODULE_STATES="false", FSDP_CPU_RAM_EFFICIENT_LOADING="false")
    old = {k: os.environ.get(k) for k in cpu}
    os.environ.update(cpu)
    try:  # accelerate's own plugin reads them as the config file means
        plugin = FullyShardedDataParallelPlugin()
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert plugin.activation_checkpointing is True and plugin.use_orig_params is True
    assert "FULL_SHARD" in str(plugin.sharding_strategy)


@pytest.mark.parametrize("args, needle", [
    (["--nodes", "0"], "--nodes must be a positive number"),
    (["--time", "two days"], "is not a SLURM time"),
    (["--partition", "a b"], "is not a SLURM name"),
    (["--only", "99"], "no notebook '99'"),
])
def test_bad_input_is_one_line(tmp_path, args, needle):
    r = _cli("submit", "--scale", "smoke", "--dry-run", "--output", str(tmp_path), *args)
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_without_sbatch_it_says_where_to_run(tmp_path):
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # python and smolbook, no SLURM
    r = _cli("submit", "--scale", "smoke", "--only", "07", "--output", str(tmp_path), env=env)
    assert r.returncode == 2 and "sbatch is not on PATH" in r.stderr, r.stderr


def test_stop_file_checkpoints_and_stops_training_then_resume_matches(tmp_path):
    """The time-limit path: the job's USR1 trap touches the stop file; every rank saves and stops."""
    out, stop = tmp_path / "run", tmp_path / "stop"
    script = tmp_path / "train.py"
    assert SLOW_SCRIPT != SCRIPT
    script.write_text(SLOW_SCRIPT)
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", SMOLBOOK_STOP_FILE=str(stop))
    proc = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env)
    deadline = time.time() + 120
    while len(_train_rows(out / "metrics.jsonl")) < 1:
        assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
        assert time.time() < deadline, "training subprocess did not start"
        time.sleep(0.1)
    stop.touch()
    log = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 130, log[-2000:]
    (ckpt,) = ckpt_mod.list_checkpoints(out)
    assert ckpt_mod.check_intact(ckpt) is None and not (out / "final").exists()
    assert ckpt_mod.read_state(ckpt)["step"] < STEPS
    resumed = pretrain(toy_model(seed=9), ToyStream(seed=2), toy_config(STEPS), out, resume=True)
    reference = pretrain(toy_model(seed=0), ToyStream(seed=2), toy_config(STEPS), tmp_path / "reference")
    assert abs(resumed.series("loss")[1][-1] - reference.series("loss")[1][-1]) <= 1e-6


def test_a_checkpoint_cut_off_mid_write_is_passed_over_with_a_message(tmp_path, capsys):
    """A job killed while saving leaves a .tmp folder, or (shared filesystems) a renamed folder with short files:
    resume goes back to the previous intact checkpoint and says so, and ends where an uninterrupted run ends."""
    full = pretrain(toy_model(seed=0), ToyStream(seed=2), toy_config(12, checkpoint_every=4), tmp_path / "full")
    out = tmp_path / "cut"
    cfg = toy_config(12, checkpoint_every=4, keep_last_checkpoints=0)
    shutil.copytree(tmp_path / "full", out)
    shutil.rmtree(out / "final")
    for c in ckpt_mod.list_checkpoints(out):
        assert ckpt_mod.check_intact(c) is None, c
    newest = ckpt_mod.list_checkpoints(out)[-1]  # step 8
    opt = newest / "accelerate" / "optimizer.bin"
    opt.write_bytes(opt.read_bytes()[: opt.stat().st_size // 2])
    shutil.copytree(newest, newest.with_name("step-0000012.tmp"))  # a later save that never finished
    assert "bytes" in ckpt_mod.check_intact(newest)
    capsys.readouterr()
    resumed = pretrain(toy_model(seed=9), ToyStream(seed=2), cfg, out, resume=True)
    said = capsys.readouterr().out
    assert "step-0000008" in said and "not intact" in said and "resuming from the previous intact checkpoint " \
        "step-0000004" in said, said
    a, b = full.series("loss")[1], resumed.series("loss")[1]
    assert abs(a[-1] - b[-1]) <= 1e-6 and resumed.series("loss")[0] == list(range(1, 13))
    assert TrainResult.from_dir(out).checkpoint == out / "final"


def test_spec_resume_true_without_a_checkpoint_starts_the_run(tmp_path, capsys):
    from smolbook.train import RunSpec
    from smolbook.train.run import _resume_decision

    spec = RunSpec(chapter="07_pretraining", name="x", scale="smoke", output_dir=str(tmp_path), resume=True)
    assert _resume_decision(spec, spec.run_dir) is False
    assert "no intact checkpoint yet; starting the run" in capsys.readouterr().out


def test_one_run_sbatch_script_passes_shellcheck(tmp_path):
    from smolbook.train import ModelSpec, RunSpec
    from smolbook.train.run import write_sbatch

    spec = RunSpec(chapter="08_long_context", name="lc-32k", phase="lc-32k", scale="full", output_dir=str(tmp_path),
                   model=ModelSpec(checkpoint="chapter:07_pretraining", rope_theta=2e6))
    script = write_sbatch(spec, spec.save(tmp_path / "spec.yaml"))
    assert "#SBATCH --nodes=9" in script.read_text()  # 72 rows of 32k over 72 GPUs
    _check_shell(script)
