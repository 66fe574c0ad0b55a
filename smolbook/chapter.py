"""What a notebook holds on to: its scale, its output folder, and the one call that records results.

Every notebook starts with ``book = Chapter("07_pretraining", scale, seed, output_dir)``. Numbers and
claims go through :meth:`Chapter.number`, :meth:`Chapter.judge` (empirical claims, :mod:`smolbook.claims`) and
:meth:`Chapter.check` (implementation checks); they land in
``output_dir/records/<chapter>.json`` from which ``smolbook report`` builds the report card.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smolbook.claims import Check, RULE, check_record, decide
from smolbook.errors import SmolbookError
from smolbook.quiet import quiet_libraries
from smolbook.registry import (CHECKPOINTS_FILE, find_checkpoint, register_checkpoint, registered_checkpoints,
                               resolve_checkpoint)
from smolbook.scales import Scale, get_scale

__all__ = ["CHECKPOINTS_FILE", "Chapter", "Timer", "find_checkpoint", "register_checkpoint", "registered_checkpoints",
           "resolve_checkpoint"]

VERDICTS = ("holds", "differs", "inconclusive")

if TYPE_CHECKING:
    from smolbook.claims import Check, Claim, Verdict


def _figure_titles(fig: Any) -> str:
    """A figure's own words for itself: its suptitle, else its axes' titles."""
    suptitle = getattr(fig, "_suptitle", None)
    if suptitle is not None and suptitle.get_text().strip():
        return suptitle.get_text().strip()
    titles = [ax.get_title().strip() for ax in getattr(fig, "axes", [])]
    return "; ".join(t for t in titles if t)


class Timer:
    """What :meth:`Chapter.timed` measured: ``seconds`` of wall time (0 until the block ends) and the number's note."""

    seconds: float = 0.0
    note: str = ""


class Chapter:
    """One notebook's handle on its scale, its folder and the report card."""

    def __init__(self, name: str, scale: str | Scale = "tiny", seed: int = 0, output_dir: str | os.PathLike = "runs/tiny"):
        quiet_libraries()  # library noise stays out of the chapter's outputs (smolbook.quiet)
        self.name = name
        self.scale = get_scale(scale)
        self.seed = int(seed)
        self.output_dir = Path(output_dir)
        self.dir = self.output_dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.figures_dir = self.output_dir / "figures"
        self._needs: list[str] | None = None
        self._records_path = self.output_dir / "records" / f"{name}.json"
        # A rerun of a chapter starts its record afresh: stale numbers never survive a rerun.
        self._record: dict[str, Any] = {"chapter": name, "scale": self.scale.name, "seed": self.seed,
                                        "numbers": {}, "verdicts": []}
        self._save()

    @property
    def seeds(self) -> list[int]:
        """The seeds of this chapter's runs: as many as the scale's, counted from the chapter's own seed."""
        return [self.seed + k for k in range(len(self.scale.seeds))]

    # -- the report card -------------------------------------------------------------------
    @contextmanager
    def timed(self, name: str, note: str = "") -> Iterator["Timer"]:
        """Time a block and record its wall time as the number ``name`` in seconds (the chapter's time budget, part
        by part): ``with book.timed("SFT seconds, recipe arm") as t: ...``; ``t.seconds`` holds it afterwards. The
        number's ``note`` may also be set inside the block (``t.note = ...``), once it is known what the block did."""
        timer = Timer()
        timer.note = note
        start = time.perf_counter()
        try:
            yield timer
        finally:
            timer.seconds = time.perf_counter() - start
        self.number(name, round(timer.seconds, 1), "s", timer.note)

    def number(self, name: str, value: float | int | str, unit: str = "", note: str = "") -> None:
        """Record a headline number of this chapter (shown in ``report.md``)."""
        if isinstance(value, float) and value != value:
            raise ValueError(f"number '{name}' is NaN: record a measured value")
        self._record["numbers"][name] = {"value": value, "unit": unit, "note": note}
        self._save()

    def verdict(self, claim: str, measured: str, status: str, source: str = "", kind: str = "empirical") -> None:
        """Record a verdict decided elsewhere (kind ``empirical`` or ``implementation``). New chapters use
        :meth:`judge` (empirical claims, decided by the book's rule) and :meth:`check` (implementation checks)."""
        if status not in VERDICTS:
            raise ValueError(f"verdict status '{status}' is not one of {', '.join(VERDICTS)}")
        if kind not in ("empirical", "implementation"):
            raise ValueError(f"verdict kind '{kind}' is not 'empirical' or 'implementation'")
        self._add_verdict({"claim": claim, "measured": measured, "status": status, "source": source,
                           "scale": self.scale.name, "kind": kind, "metric": None,
                           "direction": "check" if kind == "implementation" else None, "margin": None,
                           "interval": None, "effect": None, "n_seeds": None, "values": None,
                           "rule": "decided in the chapter"})

    def judge(self, claim: "Claim", baseline: "Sequence[float] | float", recipe: Sequence[float], *,
              baseline_name: str = "baseline", recipe_name: str = "recipe", at_chance: bool | None = None,
              max_effect: float | None = None, note: str = "", items: int | None = None) -> "Verdict":
        """Decide an empirical claim by :data:`smolbook.claims.RULE` on per-seed values (``baseline``: per seed, or one
        number for a single reference checkpoint), record it, print it.

        ``items`` is the number of held-out items each seed's value is computed on: required for a probe (a claim
        with a ``chance`` level), optional for a loss. The rule is printed with the first verdict of the chapter;
        every verdict prints its numbers.
        """
        v = decide(claim, baseline, recipe, baseline_name=baseline_name, recipe_name=recipe_name,
                   at_chance=at_chance, max_effect=max_effect, note=note, items=items)
        if not any(r.get("kind") == "empirical" and r.get("rule") == RULE for r in self._record["verdicts"]):
            print("The rule, fixed before the runs:", RULE, "\n")
        self._add_verdict(v.record(self.scale.name))
        print(f"[{v.status}] {claim.claim}\n    {v.measured()}")
        return v

    def check(self, check: "Check | str", measured: str, ok: bool, source: str = "") -> bool:
        """Record an implementation check (the code builds what the recipe describes): reported apart, never
        counted as evidence."""
        c = check if isinstance(check, Check) else Check(check, source)
        self._add_verdict(check_record(c, measured, bool(ok), self.scale.name))
        return bool(ok)

    def _add_verdict(self, record: dict[str, Any]) -> None:
        self._record["verdicts"] = [v for v in self._record["verdicts"] if v["claim"] != record["claim"]]
        self._record["verdicts"].append(record)
        self._save()

    def savefig(self, fig: Any, name: str, caption: str = "", headline: bool = False) -> Path:
        """Save a matplotlib figure under ``output_dir/figures/<chapter>_<name>.png`` and list it in the record:
        the site captions the figure with ``caption`` (default: its name and the figure's titles), and a
        ``headline`` figure stands for its part of the recipe on the site's landing page."""
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        path = self.figures_dir / f"{self.name}_{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        entry = {"name": name, "file": path.name, "caption": caption, "titles": _figure_titles(fig),
                 "headline": headline}
        figures = [f for f in self._record.get("figures", []) if f["name"] != name]
        self._record["figures"] = figures + [entry]
        self._save()
        return path

    def _save(self) -> None:
        self._records_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._records_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._record, indent=2, default=str))
        tmp.replace(self._records_path)

    def __repr__(self) -> str:
        return f"Chapter({self.name!r}, scale={self.scale.name!r}, seed={self.seed}, dir={str(self.dir)!r})"

    # -- checkpoints: what a chapter hands on ----------------------------------------------------------------------
    @property
    def needs(self) -> list[str]:
        """The chapters this one may start from: the ``needs`` of its notebook's Jupytext header."""
        if self._needs is None:
            self._needs = _notebook_needs(self.name)
        return self._needs

    def start_from(self, chapter: str, name: str | None = None) -> Path:
        """The checkpoint an earlier chapter registered (its final one unless ``name`` is given).

        The chapter must be in this notebook's ``needs`` header (so the runner runs it first and reruns this one
        when it changes); a clear one-line error names the chapter to run first when its checkpoint is not there.
        """
        if chapter not in self.needs:
            raise SmolbookError(f"{self.name} starts from {chapter}, which is not in its notebook's `needs` header "
                                f"({', '.join(self.needs) or 'empty'}): add it there")
        return find_checkpoint(self.output_dir, chapter, name)

    def checkpoint(self, name: str, path: str | os.PathLike, step: int | None = None, tokens: int | None = None,
                   final: bool = False) -> Path:
        """Register a checkpoint this chapter produced (``checkpoints.json`` of the run folder), for later chapters
        (:meth:`start_from`) and the evaluation chapter. ``final`` marks the one ``start_from`` picks by default."""
        return register_checkpoint(self.output_dir, self.name, name, path, step=step, tokens=tokens, final=final)


def _notebook_needs(name: str) -> list[str]:
    """``needs`` of ``notebooks/<name>.py`` (the runner runs notebooks from the repository root)."""
    import yaml

    for folder in (Path.cwd() / "notebooks", Path(__file__).resolve().parents[1] / "notebooks"):
        path = folder / f"{name}.py"
        if path.is_file():
            # The header is YAML behind "# " in the first lines (Jupytext percent format); read without jupytext.
            lines = []
            for line in path.read_text().splitlines()[1:]:
                if line.strip() == "# ---":
                    break
                lines.append(line[2:] if line.startswith("# ") else line.lstrip("#"))
            header = (yaml.safe_load("\n".join(lines)) or {}).get("jupyter", {}) or {}
            return [str(n) for n in (header.get("smolbook", {}) or {}).get("needs", []) or []]
    return []
