"""Checkpoints: a Hugging Face model folder (``AutoModelForCausalLM`` / ``AutoTokenizer`` load it) plus the trainer's
state (optimizer, scheduler, RNG states, data position, step) so that a run resumes exactly.

Layout of one checkpoint ``DIR``::

    DIR/config.json, model.safetensors, tokenizer files     <- save_pretrained (model and the run's tokenizer)
    DIR/trainer_state.json                                  <- step, tokens, stage, the TrainConfig
    DIR/accelerate/                                         <- Accelerator.save_state: model, optimizer, RNG,
                                                               scheduler and data stream (registered objects)

The trainer state goes through accelerate's ``save_state`` because it already knows how to gather DDP and FSDP
(sharded optimizer) states; the model is written a second time in HF format so later notebooks load it plainly.

A checkpoint is written into ``DIR.tmp`` and renamed when complete, and ``trainer_state.json`` records the size of
every file in it. A job killed while saving (a preempted or timed-out SLURM job; a node lost mid-write, where a
shared filesystem may show the rename before the data) leaves either a ``.tmp`` folder or files shorter than
recorded: :func:`resume_point` skips such a checkpoint, says so, and resumes from the previous intact one.
"""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any, Sequence

from smolbook.errors import SmolbookError

STATE_FILE = "trainer_state.json"
ACCEL_DIR = "accelerate"


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
    """Write ``trainer_state.json`` last, listing the trainer-state files and the size of every file of the
    checkpoint, so that a resume can tell an intact checkpoint from one cut off mid-write."""
    files = sorted(p.name for p in (tmp_dir / ACCEL_DIR).iterdir() if p.is_file())
    sizes = {str(p.relative_to(tmp_dir)): p.stat().st_size for p in sorted(tmp_dir.rglob("*"))
             if p.is_file() and p.name != STATE_FILE}
    state = dict(state, files=files, sizes=sizes)
    (tmp_dir / STATE_FILE).write_text(json.dumps(state, indent=2, default=str))


def prune(run_dir: str | Path, keep_last: int, keep: Sequence[int] = ()) -> None:
    """Delete all but the newest ``keep_last`` step checkpoints, and those of the steps in ``keep`` (stage ends);
    the final one lives elsewhere and is kept."""
    if keep_last <= 0:
        return
    kept = {checkpoint_name(k) for k in keep}
    for old in list_checkpoints(run_dir)[:-keep_last]:
        if old.name not in kept:
            shutil.rmtree(old, ignore_errors=True)


def check_intact(ckpt: str | Path) -> str | None:
    """Why a checkpoint cannot be resumed from (``None`` when it is intact), without loading its tensors.

    Checks what a cut-off write leaves behind: a missing or unreadable ``trainer_state.json``, a listed file that is
    missing or shorter/longer than recorded, a safetensors file whose header does not parse. Cheap (file sizes and
    headers only), so every resume can afford it even for a 3B model's sharded optimizer state.
    """
    ckpt = Path(ckpt)
    if ckpt.name.endswith(".tmp"):
        return "it was cut off mid-write (still a .tmp folder)"
    try:
        state = read_state(ckpt)
    except SmolbookError as e:
        return str(e).split(";")[0]
    for rel, size in (state.get("sizes") or {}).items():
        f = ckpt / rel
        if not f.is_file():
            return f"{rel} is missing"
        if f.stat().st_size != int(size):
            return f"{rel} has {f.stat().st_size:,} of its {int(size):,} bytes"
    for f in sorted(ckpt.rglob("*.safetensors")):
        if not _safetensors_header_ok(f):
            return f"{f.relative_to(ckpt)} has a truncated or unreadable header"
    return None


def _safetensors_header_ok(path: Path) -> bool:
    """A safetensors file starts with an 8-byte header length and a JSON header; a cut-off file fails here."""
    try:
        with path.open("rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or n > path.stat().st_size - 8:
                return False
            json.loads(f.read(n))
    except (OSError, ValueError):
        return False
    return True


def resume_point(run_dir: str | Path, log: Any = None) -> Path:
    """The checkpoint a run resumes from: its final one if intact, else its newest intact step checkpoint.

    Every newer checkpoint that is not intact (:func:`check_intact`), and every ``.tmp`` folder a killed save left,
    is reported through ``log`` and passed over: the run continues from the previous intact checkpoint rather
    than stopping to ask. Raises when the run has no intact checkpoint at all.
    """
    log = log or _say
    run_dir = Path(run_dir)
    root = run_dir / "checkpoints"
    final = run_dir / "final"
    candidates = [final] if final.exists() else []
    if root.is_dir():
        steps = sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-")),
                       key=lambda p: p.name, reverse=True)
        candidates += steps
    for tmp in sorted(run_dir.glob("final.tmp")):
        log(f"{tmp}: a save was cut off mid-write (the job was killed while saving); ignored")
    skipped = []
    for c in candidates:
        why = check_intact(c)
        if why is None:
            if skipped:
                log(f"resuming from the previous intact checkpoint {c.name} (skipped: {'; '.join(skipped)})")
            return c
        skipped.append(f"{c.name}: {why}")
        if not c.name.endswith(".tmp"):
            log(f"checkpoint {c} is not intact ({why}): the job was probably killed while saving it")
    detail = f" (not intact: {'; '.join(skipped)})" if skipped else ""
    raise SmolbookError(f"no checkpoint to resume from in {root} (expected step-NNNNNNN/{STATE_FILE}){detail}; "
                        "start without --resume")


def _say(msg: str) -> None:
    """Print once per launched run (rank 0 only), not once per GPU."""
    import os

    if os.environ.get("RANK", "0") == "0":
        print(f"smolbook: {msg}", flush=True)


def intact_checkpoint_exists(run_dir: str | Path) -> bool:
    """Whether :func:`resume_point` would find something to resume from (quietly)."""
    try:
        resume_point(run_dir, log=lambda _msg: None)
    except SmolbookError:
        return False
    return True
