"""The run folder's checkpoint registry (``checkpoints.json``): what each chapter hands on to later ones.

A run registers its final checkpoint as ``chapter/name`` (:func:`smolbook.train.run` does it for every run, with the
arm and seed of a sweep's); a later run spec or chapter names it ``chapter:NN_name[/name]``
(:func:`resolve_checkpoint`), and :meth:`smolbook.Chapter.start_from` reads it. Paths inside the run folder are
stored relative to it, so a run folder can be moved or copied whole.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from smolbook.errors import SmolbookError

CHECKPOINTS_FILE = "checkpoints.json"


def registered_checkpoints(output_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every checkpoint registered in a run folder, in registration order: chapter, name, path, step, tokens, final."""
    path = Path(output_dir) / CHECKPOINTS_FILE
    if not path.is_file():
        return []
    try:
        entries = list(json.loads(path.read_text())["checkpoints"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise SmolbookError(f"{path} is corrupt ({e}); rerun the chapters that register checkpoints with --force") from None
    # Paths inside the run folder are stored relative to it, so a run folder can be moved or copied whole.
    return [dict(e, path=str((Path(output_dir) / e["path"]).resolve())) for e in entries]


def register_checkpoint(output_dir: str | os.PathLike, chapter: str, name: str, path: str | os.PathLike,
                        step: int | None = None, tokens: int | None = None, final: bool = False,
                        arm: str | None = None, seed: int | None = None) -> Path:
    """Add (or replace) the entry ``chapter/name`` of the run folder's ``checkpoints.json`` (a sweep's runs also
    record their ``arm`` and ``seed``)."""
    path = Path(path).resolve()
    if not (path / "config.json").is_file():
        raise SmolbookError(f"cannot register {chapter}/{name}: {path} holds no checkpoint (config.json)")
    root = Path(output_dir).resolve()
    before = registered_checkpoints(output_dir)
    # Registering the same folder again under its name (a chapter marking a sweep's run as its final checkpoint)
    # keeps the arm and seed the sweep recorded.
    same = next((e for e in before if (e["chapter"], e["name"]) == (chapter, name) and Path(e["path"]) == path), {})
    arm, seed = arm if arm is not None else same.get("arm"), seed if seed is not None else same.get("seed")
    entries = [e for e in before if (e["chapter"], e["name"]) != (chapter, name)]
    entry = {"chapter": chapter, "name": name, "path": str(path), "step": step, "tokens": tokens, "final": final}
    entries.append(entry | {k: v for k, v in (("arm", arm), ("seed", seed)) if v is not None})
    entries = [dict(e, path=str(Path(e["path"]).relative_to(root)) if Path(e["path"]).is_relative_to(root) else e["path"])
               for e in entries]
    target = Path(output_dir) / CHECKPOINTS_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"checkpoints": entries}, indent=1))
    tmp.replace(target)
    return path


def find_checkpoint(output_dir: str | os.PathLike, chapter: str, name: str | None = None) -> Path:
    """The registered checkpoint ``chapter/name`` (``name=None``: the chapter's last one marked final)."""
    entries = [e for e in registered_checkpoints(output_dir) if e["chapter"] == chapter]
    if name is None:
        entries = [e for e in entries if e.get("final")]
    else:
        entries = [e for e in entries if e["name"] == name]
    what = f"{chapter}/{name}" if name else chapter
    if not entries:
        others = ", ".join(e["name"] for e in registered_checkpoints(output_dir) if e["chapter"] == chapter)
        hint = f" (it registered: {others})" if others else f": run {chapter} first (smolbook run --only {chapter[:2]})"
        raise SmolbookError(f"no checkpoint {what} in {Path(output_dir) / CHECKPOINTS_FILE}{hint}")
    path = Path(entries[-1]["path"])
    if not (path / "config.json").is_file():
        raise SmolbookError(f"checkpoint {what} is registered at {path} but is not there: rerun {chapter} "
                            f"(smolbook run --only {chapter[:2]} --force)")
    return path


def resolve_checkpoint(output_dir: str | os.PathLike, ref: str | os.PathLike) -> Path:
    """A checkpoint reference of a run spec: ``chapter:NN_name[/name]`` or a folder."""
    text = str(ref)
    if text.startswith("chapter:"):
        chapter, _, name = text[len("chapter:"):].partition("/")
        return find_checkpoint(output_dir, chapter, name or None)
    path = Path(text)
    if not (path / "config.json").is_file():
        raise SmolbookError(f"no checkpoint at {path} (expected {path / 'config.json'})")
    return path
