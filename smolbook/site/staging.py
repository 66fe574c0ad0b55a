"""Staging a build: what ``myst.yml``'s table of contents names, copied from the checkout (data cards, pages) and
from the run (its executed notebooks, report card and figures) into ``run_dir/site_src/``, with the data cards
grouped by the stage where their dataset enters the mixture."""
from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from smolbook.scales import DEFAULT_SCALE
from smolbook.site.tools import MYST_CONFIG, REPO_DIR, SITE_DIR

# myst.yml names the default run's files (so that an online `jupyter book build` works from the repo root);
# a build for another run folder takes that run's files in their place.
DEFAULT_RUN_PREFIX = f"runs/{DEFAULT_SCALE}/"
STAGED_RUN = "run/"


def _toc_paths(entries: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], str]]:
    """Every (entry, key) in a MyST toc whose value names files (``file`` or ``pattern``)."""
    for entry in entries:
        for key in ("file", "pattern"):
            if key in entry:
                yield entry, key
        yield from _toc_paths(entry.get("children", []))


def _source_of(toc_path: str, run_dir: Path) -> tuple[Path, str]:
    """Where a toc path's files live: (root folder, pattern relative to it)."""
    if toc_path.startswith(DEFAULT_RUN_PREFIX):
        return run_dir, toc_path[len(DEFAULT_RUN_PREFIX):]
    return REPO_DIR, toc_path


def _prune(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop toc entries left without files, and groups left without entries."""
    kept = []
    for entry in entries:
        if "children" in entry:
            entry["children"] = _prune(entry["children"])
            if not entry["children"] and "file" not in entry:
                continue
        if entry.get("_empty"):
            if not entry.get("children"):
                continue
            entry.pop("file", None)
        entry.pop("_empty", None)
        kept.append(entry)
    return kept


def _matches(root: Path, rel: str) -> list[Path]:
    """The files a toc path names. Plain globs are matched here as MyST matches them; a MyST extended glob
    (``!(README).md``) brings its whole folder and MyST picks the files."""
    if "(" in rel:
        return sorted(p for p in (root / rel).parent.glob("*") if p.is_file())
    if any(ch in rel for ch in "*?["):
        return sorted(p for p in root.glob(rel) if p.is_file() and not p.name.startswith("."))
    return [root / rel] if (root / rel).is_file() else []


CARD_ROW = re.compile(r"^\|\s*([^|]+?)\s*\|")


def card_stage(card: Path) -> str | None:
    """The first stage a data card's dataset enters (its "Stages and weights" table), None if it has none."""
    lines = card.read_text().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("## Stages"))
    except StopIteration:
        return None
    rows = [line for line in lines[start + 1:] if line.startswith("|")]
    if len(rows) < 3:  # header, separator, one row at least
        return None
    m = CARD_ROW.match(rows[2])
    return m.group(1) if m else None


def _stage_order(overview: Path) -> list[str]:
    """The recipe's stages in order: the stage columns of the data cards' overview table (after "licence")."""
    if not overview.is_file():
        return []
    for line in overview.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == "dataset" and "licence" in cells:
            return cells[cells.index("licence") + 1:]
    return []


def _group_cards(entries: list[dict[str, Any]], src: Path) -> None:
    """Replace the toc's data-card pattern by one group per stage (the stage where each dataset enters the
    mixture, in recipe order), so the sidebar reads like the recipe."""
    for entry in entries:
        children = entry.get("children", [])
        for i, child in enumerate(children):
            rel = child.get("pattern", "")
            if not rel.startswith("data_cards/"):
                continue
            cards = [p for p in _matches(src, rel) if p.suffix == ".md" and p.name != "README.md"]
            by_stage: dict[str, list[str]] = {}
            for card in cards:
                by_stage.setdefault(card_stage(card) or "other", []).append(f"data_cards/{card.name}")
            order = _stage_order(src / "data_cards" / "README.md")
            stages = sorted(by_stage, key=lambda st: (order.index(st) if st in order else len(order), st))
            children[i:i + 1] = [{"title": f"Enters at {st}" if st != "other" else "Other",
                                  "children": [{"file": f} for f in by_stage[st]]} for st in stages]
            return
        _group_cards(children, src)


def stage(run_dir: Path, src: Path) -> tuple[dict[str, Any], list[str]]:
    """Copy what myst.yml's toc names (from the repo, or from ``run_dir`` for the run's files) into ``src``
    and write ``src/myst.yml``. Returns the staged config and the toc paths that found no file (left out of
    the staged toc)."""
    config = yaml.safe_load(MYST_CONFIG.read_text())
    toc = config["project"]["toc"]
    missing = []
    for entry, key in _toc_paths(toc):
        root, rel = _source_of(entry[key], run_dir)
        staged = STAGED_RUN + rel if root == run_dir else rel
        files = _matches(root, rel)
        dest_dir = src / Path(staged).parent
        if not files:
            missing.append(entry[key])
            entry["_empty"] = True
        dest_dir.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy2(f, dest_dir / f.name)
        entry[key] = staged
    config["project"]["toc"] = _prune(toc)
    _group_cards(config["project"]["toc"], src)
    if (run_dir / "figures").is_dir():  # the report card may show the run's figures
        shutil.copytree(run_dir / "figures", src / STAGED_RUN / "figures", dirs_exist_ok=True)
    config.setdefault("site", {})["template"] = str(SITE_DIR / "template")
    (src / "myst.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return config, missing
