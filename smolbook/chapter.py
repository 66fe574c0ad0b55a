"""What a notebook holds on to: its scale, its output folder, and the one call that records results.

Every notebook starts with ``book = Chapter("07_pretraining", scale, seed, output_dir)``. Numbers and
claim verdicts go through :meth:`Chapter.number` and :meth:`Chapter.verdict`; they land in
``output_dir/records/<chapter>.json`` from which ``smolbook report`` builds the report card.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from smolbook.scales import Scale, get_scale

VERDICTS = ("holds", "differs", "inconclusive")


class Chapter:
    """One notebook's handle on its scale, its folder and the report card."""

    def __init__(self, name: str, scale: str | Scale = "tiny", seed: int = 0, output_dir: str | os.PathLike = "runs/tiny"):
        self.name = name
        self.scale = get_scale(scale)
        self.seed = int(seed)
        self.output_dir = Path(output_dir)
        self.dir = self.output_dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.figures_dir = self.output_dir / "figures"
        self._records_path = self.output_dir / "records" / f"{name}.json"
        # A rerun of a chapter starts its record afresh: stale numbers never survive a rerun.
        self._record: dict[str, Any] = {"chapter": name, "scale": self.scale.name, "seed": self.seed,
                                        "numbers": {}, "verdicts": []}
        self._save()

    # -- the report card -------------------------------------------------------------------
    def number(self, name: str, value: float | int | str, unit: str = "", note: str = "") -> None:
        """Record a headline number of this chapter (shown in ``report.md``)."""
        if isinstance(value, float) and value != value:
            raise ValueError(f"number '{name}' is NaN: record a measured value")
        self._record["numbers"][name] = {"value": value, "unit": unit, "note": note}
        self._save()

    def verdict(self, claim: str, measured: str, status: str, source: str = "") -> None:
        """Record a claim check: the recipe's claim, what this run measured, and holds/differs/inconclusive."""
        if status not in VERDICTS:
            raise ValueError(f"verdict status '{status}' is not one of {', '.join(VERDICTS)}")
        self._record["verdicts"] = [v for v in self._record["verdicts"] if v["claim"] != claim]
        self._record["verdicts"].append({"claim": claim, "measured": measured, "status": status,
                                         "source": source, "scale": self.scale.name})
        self._save()

    def savefig(self, fig: Any, name: str) -> Path:
        """Save a matplotlib figure under ``output_dir/figures/<chapter>_<name>.png``."""
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        path = self.figures_dir / f"{self.name}_{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        return path

    def _save(self) -> None:
        self._records_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._records_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._record, indent=2, default=str))
        tmp.replace(self._records_path)

    def __repr__(self) -> str:
        return f"Chapter({self.name!r}, scale={self.scale.name!r}, seed={self.seed}, dir={str(self.dir)!r})"
