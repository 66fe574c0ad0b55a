"""Checkpoints: a Hugging Face model folder (``AutoModelForCausalLM`` / ``AutoTokenizer`` load it) plus the trainer's
state (optimizer, scheduler, RNG states, data position, step) so that a run resumes exactly.

Layout of one checkpoint ``DIR``::

    DIR/config.json, model.safetensors, tokenizer files     <- save_pretrained (model and the run's tokenizer)
    DIR/trainer_state.json                                  <- step, tokens, stage, the TrainConfig
    DIR/accelerate/                                         <- Accelerator.save_state: model, optimizer, RNG,
                                                               scheduler and data stream (registered objects)

The trainer state goes through accelerate's ``save_state`` because it already knows how to gather DDP and FSDP
(sharded optimizer) states; the model is written a second time in HF format so later notebooks load it plainly.
"""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

from smolbook.errors import SmolbookError

STATE_FILE = "trainer_state.json"
ACCEL_DIR = "accelerate"
PRETRAIN_CHAPTER = "07_pretraining"


def checkpoint_name(step: int) -> str:
    return f"step-{step:07d}"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints under ``run_dir/checkpoints`` (oldest first); half-written ``.tmp`` folders are ignored."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / STATE_FILE).is_file())


def latest_checkpoint(run_dir: str | Path) -> Path:
    """The newest checkpoint of a run, or a clear error naming where it looked."""
    found = list_checkpoints(run_dir)
    if not found:
        raise SmolbookError(f"no checkpoint to resume from in {Path(run_dir) / 'checkpoints'} "
                            f"(expected step-NNNNNNN/{STATE_FILE}); start without --resume")
    return found[-1]


def read_state(ckpt: str | Path) -> dict[str, Any]:
    """The ``trainer_state.json`` of a checkpoint, checking that every file the resume needs is there."""
    ckpt = Path(ckpt)
    state_file = ckpt / STATE_FILE
    if not ckpt.is_dir():
        raise SmolbookError(f"checkpoint folder {ckpt} does not exist")
    if not state_file.is_file():
        raise SmolbookError(f"checkpoint {ckpt} is missing {state_file.name}: not a smolbook training checkpoint")
    try:
        state = json.loads(state_file.read_text())
        int(state["step"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise SmolbookError(f"checkpoint file {state_file} is corrupt ({e}); resume from an earlier checkpoint") from None
    accel = ckpt / ACCEL_DIR
    for name in state.get("files", []):
        if not (accel / name).is_file():
            raise SmolbookError(f"checkpoint file {accel / name} is missing; resume from an earlier checkpoint")
    return state


def find_corrupt_file(ckpt: str | Path) -> Path | None:
    """After a failed load: the first file of the checkpoint that cannot be read (None if all read)."""
    import torch
    from safetensors import safe_open

    for f in sorted((Path(ckpt) / ACCEL_DIR).iterdir()):
        try:
            if f.suffix == ".safetensors":
                with safe_open(str(f), framework="pt") as h:
                    for k in h.keys():
                        h.get_tensor(k)
            elif f.suffix in (".bin", ".pkl", ".pt"):
                torch.load(f, map_location="cpu", weights_only=False)
        except (Exception, pickle.UnpicklingError):
            return f
    return None


def write_state(tmp_dir: Path, state: dict[str, Any]) -> None:
    state = dict(state, files=sorted(p.name for p in (tmp_dir / ACCEL_DIR).iterdir() if p.is_file()))
    (tmp_dir / STATE_FILE).write_text(json.dumps(state, indent=2, default=str))


def prune(run_dir: str | Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` step checkpoints (the final one lives elsewhere and is kept)."""
    if keep_last <= 0:
        return
    for old in list_checkpoints(run_dir)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)


def final_checkpoint(output_dir: str | Path) -> Path:
    """The pretrained model that later notebooks start from: ``output_dir/07_pretraining/final``.

    A clear error names the notebook that makes it when it is not there yet.
    """
    path = Path(output_dir) / PRETRAIN_CHAPTER / "final"
    if not (path / "config.json").is_file():
        raise SmolbookError(f"no pretrained checkpoint at {path}: run notebook {PRETRAIN_CHAPTER} first "
                            f"(smolbook run, or `smolbook train pretrain --scale SCALE --output {output_dir}`)")
    return path
