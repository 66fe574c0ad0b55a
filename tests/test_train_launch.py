"""How runs start at each scale: in-process, accelerate launch (small), SLURM (full)."""
from __future__ import annotations

import pytest
import yaml

from smolbook.errors import SmolbookError
from smolbook.train.launch import CONFIG_DIR, launch_command, run_pretraining, write_sbatch


def test_accelerate_configs_are_valid_and_fsdp_wraps_decoder_layers():
    fsdp = yaml.safe_load((CONFIG_DIR / "fsdp_3b.yaml").read_text())
    assert fsdp["distributed_type"] == "FSDP" and fsdp["mixed_precision"] == "bf16"
    assert fsdp["fsdp_config"]["fsdp_sharding_strategy"] == "FULL_SHARD"
    assert fsdp["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"] == "SmolLM3DecoderLayer"
    import transformers.models.smollm3.modeling_smollm3 as m
    assert hasattr(m, fsdp["fsdp_config"]["fsdp_transformer_layer_cls_to_wrap"])
    for name in ("single_gpu.yaml", "ddp.yaml"):
        assert yaml.safe_load((CONFIG_DIR / name).read_text())["mixed_precision"] == "bf16"


def test_launch_command_runs_the_cli_entry_point(tmp_path):
    cmd = launch_command("small", tmp_path, seed=1, resume=True)
    assert cmd[:2] == ["accelerate", "launch"] and str(CONFIG_DIR / "single_gpu.yaml") in cmd
    assert cmd[cmd.index("-m") + 1:cmd.index("-m") + 3] == ["smolbook.train", "pretrain"]
    assert cmd[-1] == "--resume" and "--scale" in cmd and cmd[cmd.index("--scale") + 1] == "small"
    assert "fsdp_3b.yaml" in " ".join(launch_command("full", tmp_path))


def test_slurm_writes_sbatch_and_says_how_to_submit(tmp_path, capsys):
    with pytest.raises(SmolbookError, match="sbatch .*pretrain.sbatch"):
        run_pretraining("full", tmp_path)
    script = (tmp_path / "07_pretraining" / "pretrain.sbatch").read_text()
    assert "#SBATCH --nodes=24" in script  # 576 / micro batch 3 = 192 GPUs = 24 nodes of 8
    assert "--machine_rank $SLURM_NODEID" in script and "smolbook.train pretrain --scale full" in script
    assert "sbatch" in capsys.readouterr().out
    assert write_sbatch("full", tmp_path) == tmp_path.resolve() / "07_pretraining" / "pretrain.sbatch"
