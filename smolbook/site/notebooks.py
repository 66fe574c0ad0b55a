"""The executed notebooks as a reader should see them: papermill's injected parameters shown in the notebook's own
parameters cell, every cell anchored, every figure captioned from the chapter's record, and the cell where each
verdict was decided found (the landing page's badges link to it)."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from smolbook.site.staging import STAGED_RUN

SAVEFIG = re.compile(r"savefig\(\s*[\w.]+\s*,\s*(?:name\s*=\s*)?[\"']([^\"']+)[\"']")
ASSIGNMENT = re.compile(r"^(\w+)\s*=\s*(.*?)\s*$")


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict[str, Any]) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def merge_parameters(defaults: str, injected: str) -> str:
    """The notebook's parameters cell with the values the run injected in place of its defaults (each
    default kept as a comment), so that one cell shows what the chapter ran with."""
    values = {m.group(1): m.group(2) for line in injected.splitlines() if (m := ASSIGNMENT.match(line))}
    out, seen = [], set()
    for line in defaults.splitlines():
        m = ASSIGNMENT.match(line)
        if m and m.group(1) in values:
            name, default = m.group(1), m.group(2)
            seen.add(name)
            value = values[name]
            out.append(f"{name} = {value}" if value == default else f"{name} = {value}  # notebook default: {default}")
        else:
            out.append(line)
    out += [f"{k} = {v}" for k, v in values.items() if k not in seen]
    return "\n".join(out)


def _output_text(output: dict[str, Any]) -> str:
    """Everything an output says, as text (for finding a claim in it)."""
    if output.get("output_type") == "stream":
        text = output.get("text", "")
        return "".join(text) if isinstance(text, list) else text
    parts = []
    for mime in ("text/plain", "text/markdown", "text/html"):
        value = output.get("data", {}).get(mime, "")
        parts.append("".join(value) if isinstance(value, list) else value)
    return html.unescape("\n".join(parts)).replace("\\|", "|")


def _squash(text: str) -> str:
    return " ".join(text.split())


def decided_in(cells: list[dict[str, Any]], claim: str) -> int | None:
    """The index of the cell where a claim was decided: the first whose output shows the claim, else the
    cell whose code states it, else the last cell that records a verdict."""
    claim = _squash(claim)
    for i, cell in enumerate(cells):
        if any(claim in _squash(_output_text(o)) for o in cell.get("outputs", [])):
            return i
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and claim in _squash(_source(cell)):
            return i
    verdict_cells = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and "verdict" in _source(c)]
    return verdict_cells[-1] if verdict_cells else None


def caption(name: str | None, record_figures: dict[str, dict[str, Any]]) -> str:
    """A figure's caption: the chapter's own (``Chapter.savefig(caption=...)``), else its saved name and the
    figure's titles."""
    if name is None:
        return ""
    figure = record_figures.get(name, {})
    if figure.get("caption"):
        return figure["caption"]
    words = name.replace("_", " ").replace("-", " ")
    words = words[:1].upper() + words[1:]
    return f"{words} ({figure['titles']})" if figure.get("titles") else words


def prepare_notebook(path: Path, record: dict[str, Any] | None = None) -> dict[str, str]:
    """Rewrite a staged executed notebook for reading: papermill's injected-parameters cell folded into the
    notebook's own parameters cell; each cell anchored (``cell-N``) and each figure captioned (from the chapter's
    record, ``Chapter.savefig``). Returns ``{claim: anchor}`` for the chapter's verdicts."""
    nb = json.loads(path.read_text())
    nb.get("metadata", {}).pop("jupytext", None)  # the source's pairing; MyST would read it as frontmatter
    cells = nb["cells"]
    record = record or {}
    injected = next((c for c in cells if "injected-parameters" in _tags(c)), None)
    params = next((c for c in cells if "parameters" in _tags(c)), None)
    if injected is not None and params is not None:  # without a parameters cell, the injected one says it all
        cells.remove(injected)
        params["source"] = merge_parameters(_source(params), _source(injected))
    captions = {f["name"]: f for f in record.get("figures", []) if "name" in f}
    figure_number = 0
    for i, cell in enumerate(cells):
        meta = cell.setdefault("metadata", {}).setdefault("smolbook", {})
        # papermill's banner in a failed notebook links to the cell where it stopped
        meta["anchor"] = "papermill-error-cell" if 'id="papermill-error-cell"' in _source(cell) else f"cell-{i}"
        if cell["cell_type"] != "code":
            continue
        names = SAVEFIG.findall(_source(cell))
        figure_captions = []
        for o in cell.get("outputs", []):
            if any(k.startswith("image/") for k in o.get("data", {})):
                figure_number += 1
                k = len(figure_captions)
                text = caption(names[k] if k < len(names) else None, captions)
                figure_captions.append(f"Figure {figure_number}" + (f". {text}" if text else ""))
        if figure_captions:
            meta["captions"] = figure_captions
    path.write_text(json.dumps(nb, indent=1))
    anchors = {}
    for v in record.get("verdicts", []):
        i = decided_in(cells, v.get("claim", ""))
        if i is not None:
            anchors[v["claim"]] = f"cell-{i}"
    return anchors


def read_records(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Every chapter's record of the run (``records/<chapter>.json``), by chapter."""
    out = {}
    for p in sorted((run_dir / "records").glob("*.json")):
        try:
            out[p.stem] = json.loads(p.read_text())
        except json.JSONDecodeError:
            continue  # the report card names a broken record; the site shows the chapter without it
    return out


def prepare_notebooks(src: Path, records: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """:func:`prepare_notebook` for every staged notebook: ``{chapter: {claim: anchor}}``."""
    return {nb.stem: prepare_notebook(nb, records.get(nb.stem))
            for nb in sorted((src / STAGED_RUN / "notebooks").glob("*.ipynb"))}
