"""How runs start at each scale: in-process (smoke/tiny), accelerate launch (small), SLURM (full); the CLI."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from smolbook.errors import SmolbookError
from smolbook.train import ModelSpec, RunSpec, run
from smolbook.train.run import CONFIG_DIR, launch_command, write_sbatch

SMOLBOOK = str(Path(sys.executable).with_name("smolbook"))


def test_accelerate_configs_are_valid_and_fsdp_wraps_decoder_layers():
    fsdp = yaml.safe_load((CONFIG_DIR / "fsdp_3b.yaml").read_text())
    assert fsdp["distributed_type"] == "FSDP" and fsdp["mixed_precision"] == "bf16"
    assert fsdp["fsdp_config"]["fsdp_sharding_strategy"] == "FULL_SHARD"
    assert fsdp["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"] == "SmolLM3DecoderLayer"
    import transformers.models.smollm3.modeling_smollm3 as m
    assert hasattr(m, fsdp["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"])
    for name in ("single_gpu.yaml", "ddp.yaml"):
        assert yaml.safe_load((CONFIG_DIR / name).read_text())["mixed_precision"] == "bf16"


def test_launch_command_runs_the_spec_in_process_on_each_rank(tmp_path):
    cmd = launch_command(tmp_path / "spec.yaml", "small")
    assert cmd[:2] == ["accelerate", "launch"] and str(CONFIG_DIR / "single_gpu.yaml") in cmd
    assert cmd[cmd.index("-m") + 1:] == ["smolbook.train", "run", str((tmp_path / "spec.yaml").resolve()), "--in-process"]
    assert "fsdp_3b.yaml" in " ".join(launch_command(tmp_path / "spec.yaml", "full"))


def test_full_outside_a_job_writes_a_requeueable_sbatch_and_says_to_submit(tmp_path):
    spec = RunSpec(chapter="07_pretraining", name="pretrain", scale="full", output_dir=str(tmp_path))
    with pytest.raises(SmolbookError, match=r"smolbook submit --scale full.*sbatch .*train\.sbatch"):
        run(spec)
    script = (tmp_path / "07_pretraining" / "pretrain" / "train.sbatch").read_text()
    assert "#SBATCH --nodes=36" in script  # 576 rows split evenly over 288 GPUs (no tensor parallelism: whole rows)
    assert "#SBATCH --requeue" in script and "#SBATCH --signal=B:USR1@" in script
    assert "-m smolbook.train run" in script and "--in-process" not in script  # run() launches srun inside the job
    saved = RunSpec.load(tmp_path / "07_pretraining" / "pretrain" / "spec.yaml")
    assert saved == spec
    assert write_sbatch(spec, tmp_path / "s.yaml") == tmp_path.resolve() / "07_pretraining" / "pretrain" / "train.sbatch"
    r = subprocess.run(["bash", "-n", str(tmp_path / "07_pretraining" / "pretrain" / "train.sbatch")], capture_output=True)
    assert r.returncode == 0, r.stderr


def test_inside_a_job_without_srun_is_a_clear_error(tmp_path, monkeypatch):
    spec = RunSpec(chapter="07_pretraining", name="pretrain", scale="full", output_dir=str(tmp_path))
    monkeypatch.setenv("SLURM_JOB_ID", "1234")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "node1")
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    with pytest.raises(SmolbookError, match="srun is not on PATH"):
        run(spec)


@pytest.mark.parametrize("content, needle", [
    ("chapter: 07_pretraining\nname: pretrain\nwarp: 9\n", "unknown field warp"),
    ("name: pretrain\n", "missing field chapter"),
    ("chapter: 07_pretraining\nname: x\nmodel: {rope_thetaa: 2.0e6}\n", "model: unknown field rope_thetaa"),
    ("chapter: 07_pretraining\nname: x\nseed: true\n", "seed: should be a valid integer (got True)"),
    ("chapter: 07_pretraining\nname: x\nbudget: {steps: many}\n", "budget.steps: should be a valid integer"),
    ("chapter: 07_pretraining\nname: my run\n", "no spaces"),
    ("chapter: 07_pretraining\nname: x\nbudget: {tokens: 10, steps: 2}\n", "tokens or steps, not both"),
    ("chapter: 07_pretraining\nname: x\nmodel: {rope_theta: 2.0e6}\n", "give a checkpoint"),
    ("chapter: 07_pretraining\nname: x\noptimizer_state: carry\n", "needs a model checkpoint"),
    ("chapter: 07_pretraining\nname: x\nscale: huge\n", "scale must be one of"),
    ("chapter: [unclosed\n", "not valid YAML"),
    ("chapter: 03_gqa\nname: x\noptim: {weight_decai: 0.0}\n", "unknown setting(s) weight_decai"),
    ("chapter: 03_gqa\nname: x\nevaluation: cloze\n", "evaluation must be one of heldout, ablation"),
])
def test_cli_bad_spec_is_one_line_exit_2(tmp_path, content, needle):
    spec = tmp_path / "spec.yaml"
    spec.write_text(content)
    r = subprocess.run([SMOLBOOK, "train", "run", str(spec)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_cli_missing_checkpoint_names_the_chapter_to_run(tmp_path):
    spec = RunSpec(chapter="08_long_context", name="lc-32k", phase="lc-32k", scale="smoke", output_dir=str(tmp_path),
                   model=ModelSpec(checkpoint="chapter:07_pretraining"))
    path = spec.save(tmp_path / "spec.yaml")
    r = subprocess.run([SMOLBOOK, "train", "run", str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "run 07_pretraining first" in r.stderr, r.stderr
