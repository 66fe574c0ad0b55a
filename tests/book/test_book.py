"""The whole book at smoke scale, through `smolbook run` itself (a real subprocess, real papermill kernels)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_takes_papermill_parameters(path: Path):
    nb = jupytext.read(path)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    for name in ("scale", "seed", "output_dir"):
        assert f"{name} =" in tagged[0].source
    assert nb.cells[0].cell_type == "markdown", "a chapter opens with prose"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book") / "smoke"
    cmd = [str(Path(sys.executable).with_name("smolbook")), "run", "--scale", "smoke", "--output", str(out), "--no-progress"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, f"smolbook run failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    return out


def test_every_notebook_runs_at_smoke(smoke_run: Path):
    manifest = json.loads((smoke_run / "manifest.json").read_text())
    assert {k: v["status"] for k, v in manifest["notebooks"].items()} == {p.stem: "ok" for p in NOTEBOOKS}
    for p in NOTEBOOKS:
        assert (smoke_run / "notebooks" / f"{p.stem}.ipynb").exists()
        assert (smoke_run / "records" / f"{p.stem}.json").exists(), f"{p.stem} recorded nothing for the report card"
    card = json.loads((smoke_run / "report.json").read_text())
    assert [c["name"] for c in card["chapters"]] == [p.stem for p in NOTEBOOKS]
    assert (smoke_run / "report.md").read_text().startswith("# smolbook report card: smoke scale")


def test_second_run_skips_everything(smoke_run: Path):
    cmd = [str(Path(sys.executable).with_name("smolbook")), "run", "--scale", "smoke", "--output", str(smoke_run), "--no-progress"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"ran 0, skipped {len(NOTEBOOKS)} notebook(s)" in r.stdout
