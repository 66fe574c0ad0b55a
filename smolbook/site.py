"""``smolbook site``: the book as a static website, built offline from a run's executed notebooks.

MyST does the reading: ``myst build --site`` (npm ``mystmd``) turns the notebooks, data cards and report
card named in ``myst.yml`` into page ASTs, with a local stand-in template (``site/template``) so that it
downloads no web theme. ``site/render.mjs`` renders those ASTs with MyST's ``myst-to-html``. This module
stages the build, then writes each page into a small HTML shell with the navigation of ``myst.yml``'s
table of contents (the recipe's parts; the data cards grouped by stage), previous/next links and a search
box over a small index shipped with the site: ``DIR/site/index.html`` and one page per chapter, openable
from disk (``file://``).

What a reader sees is the product. Staging rewrites the run's executed notebooks for reading
(:func:`prepare_notebook`: papermill's injected parameters shown in the notebook's own parameters cell, cells
anchored, figures captioned); the landing page adds the report card's verdicts (badges linking to the cell
that decided each), the run's facts and a headline figure per part of the recipe; each chapter page opens
with its claims and verdicts.

``check_site`` opens the built site in headless Chromium (Debian's ``chromium``, driven by npm's
``playwright-core``) and checks what a reader would see on the landing page and every chapter page;
``smolbook site --check`` and the browser test use it.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from smolbook.errors import SmolbookError
from smolbook.scales import DEFAULT_SCALE

REPO_DIR = Path(__file__).resolve().parents[1]
SITE_DIR = REPO_DIR / "site"
NODE_MODULES = REPO_DIR / "node_modules"
MYST_CONFIG = REPO_DIR / "myst.yml"
# myst.yml names the default run's files (so that an online `jupyter book build` works from the repo root);
# a build for another run folder takes that run's files in their place.
DEFAULT_RUN_PREFIX = f"runs/{DEFAULT_SCALE}/"
STAGED_RUN = "run/"
MAKE_RUN = f"smolbook run --scale {DEFAULT_SCALE}"
NPM_INSTALL = f"npm ci --prefix {REPO_DIR}"
NODE_PACKAGES = ("mystmd", "myst-to-html", "katex")
CHROMIUM = "/usr/bin/chromium"


# -- the run and the tools ---------------------------------------------------------------------------
def default_run_dir() -> Path:
    """The run folder that ``smolbook run`` writes by default."""
    return Path(f"runs/{DEFAULT_SCALE}")


def _check_run(run_dir: Path) -> list[Path]:
    if not run_dir.is_dir():
        raise SmolbookError(f"no run folder at {run_dir}: make one with `{MAKE_RUN}`")
    notebooks = sorted((run_dir / "notebooks").glob("*.ipynb"))
    if not notebooks:
        raise SmolbookError(f"{run_dir / 'notebooks'} holds no executed notebooks: make a run with `{MAKE_RUN}`")
    return notebooks


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise SmolbookError("the site is built with Node.js (20 or newer), which is not installed: "
                            f"`apt-get install -y nodejs npm`, then `{NPM_INSTALL}`")
    return node


def _node_tool(package: str) -> Path:
    path = NODE_MODULES / package
    if not path.is_dir():
        missing = [p for p in NODE_PACKAGES if not (NODE_MODULES / p).is_dir()]
        raise SmolbookError(f"npm package(s) {', '.join(missing or [package])} not installed: run `{NPM_INSTALL}`")
    return path


def _run_node(args: list[str], cwd: Path, what: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # mystmd asks the npm registry whether a newer mystmd exists; point it at a closed local port so the
    # build never touches the network (the check fails quietly).
    env["npm_config_registry"] = "http://127.0.0.1:9/"
    env.setdefault("NO_COLOR", "1")
    try:
        proc = subprocess.run([_node(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SmolbookError(f"{what} took over {timeout:.0f}s and was stopped (staged in {cwd})") from None
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise SmolbookError(f"{what} failed (exit {proc.returncode}) in {cwd}: {tail}")
    return proc


# -- staging -----------------------------------------------------------------------------------------
def _toc_paths(entries: list[dict[str, Any]]):
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


# -- the executed notebooks, as a reader should see them ---------------------------------------------
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


def _caption(name: str | None, record_figures: dict[str, dict[str, Any]]) -> str:
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
                text = _caption(names[k] if k < len(names) else None, captions)
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


def _records(run_dir: Path) -> dict[str, dict[str, Any]]:
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


# -- pages -------------------------------------------------------------------------------------------
def _nav_entries(site_config: dict[str, Any], pages: dict[str, Any]) -> list[dict[str, Any]]:
    """The sidebar in toc order: the index page, then myst's page list (groups have no slug)."""
    project = site_config["projects"][0]
    index = project.get("index", "index")

    def label(slug: str | None, toc_title: str) -> str:
        page = pages.get(slug or "", {})
        if not page or page["title"] != toc_title:  # a group, or a title set in the toc
            return toc_title
        return page.get("short_title") or page["title"]

    entries = [{"slug": index, "title": label(index, pages.get(index, {}).get("title", "Home")), "level": 1}]
    entries += [{"slug": p.get("slug"), "title": p.get("short_title") or label(p.get("slug"), p["title"]),
                 "level": p.get("level", 1)}
                for p in project["pages"]]
    return entries


def _href(slug: str, index: str) -> str:
    return "index.html" if slug == index else f"{slug}.html"


def _links_html(nav: list[dict[str, Any]]) -> str:
    items = []
    for item in nav:
        for link in item.get("children", [item]):
            if link.get("url"):
                label = link["title"] if link is item else f"{item['title']}: {link['title']}"
                items.append(f'<a href="{html.escape(link["url"])}">{html.escape(label)}</a>')
    return " ".join(items)


# A group this long starts folded, unless the page shown is in it (e.g. the data cards).
FOLD_GROUPS_OVER = 30
# Code cells longer than this are folded on the page (passed to site/render.mjs).
FOLD_CODE_LINES = 30


def _nest(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """myst's flat page list (levels; groups have no slug) as a tree: a group's ``members`` are the entries
    below it at deeper levels."""
    out, i = [], 0
    while i < len(entries):
        e = dict(entries[i])
        i += 1
        if not e["slug"]:
            j = i
            while j < len(entries) and entries[j]["level"] > e["level"]:
                j += 1
            e["members"] = _nest(entries[i:j])
            i = j
        out.append(e)
    return out


def _pages_in(group: dict[str, Any]) -> list[str]:
    """Every page slug in a group, nested groups included."""
    return [s for m in group["members"] for s in (_pages_in(m) if "members" in m else [m["slug"]])]


def _sidebar_html(tree: list[dict[str, Any]], current: str, index: str) -> str:
    out = []
    for e in tree:
        if "members" not in e:
            here = ' aria-current="page"' if e["slug"] == current else ""
            out.append(f'<li class="level-{e["level"]}"><a href="{_href(e["slug"], index)}"{here}>'
                       f'{html.escape(e["title"])}</a></li>')
            continue
        pages = _pages_in(e)
        is_open = len(pages) <= FOLD_GROUPS_OVER or current in pages
        out.append(f'<li class="group level-{e["level"]}"><details{" open" if is_open else ""}><summary>'
                   f'{html.escape(e["title"])} <span class="count">{len(pages)}</span></summary><ul>'
                   + _sidebar_html(e["members"], current, index) + "</ul></details></li>")
    return "\n".join(out)


# -- the report card on the pages --------------------------------------------------------------------
# The part of the recipe each sidebar group stands for, and the chapters whose first figure stands for it
# on the landing page (in order of preference) unless a chapter marks a headline figure itself.
HEADLINE_CHAPTERS = {"Pretraining": ("07",), "Long context": ("08",), "Post-training": ("11", "09", "12", "13", "10"),
                     "Evaluation and inference": ("14", "15")}
STATUS_LABEL = {"holds": "holds", "differs": "differs", "inconclusive": "inconclusive"}


def report_card(run_dir: Path) -> dict[str, Any]:
    """The run's report card (``report.json``; made from the records when the run has none yet)."""
    path = run_dir / "report.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            pass
    from smolbook.report import collect

    try:
        return collect(run_dir)
    except SmolbookError:
        return {}


def _badge(verdict: dict[str, Any], href: str | None) -> str:
    """A verdict's status as a coloured badge; its rule (when the record states one) shows on hover."""
    status = str(verdict.get("status", ""))
    label = html.escape(STATUS_LABEL.get(status, status))
    cls = f'badge {html.escape(status)}'
    rule = html.escape(f'{verdict["rule"]}. ' if verdict.get("rule") else "")
    if href:
        return f'<a class="{cls}" href="{html.escape(href)}" title="{rule}Go to the cell that decided it">{label}</a>'
    return f'<span class="{cls}" title="{rule}">{label}</span>'


def _verdict_table(verdicts: list[dict[str, Any]], chapters: dict[str, dict[str, str]],
                   anchors: dict[str, dict[str, str]]) -> str:
    """Claims as a table, a heading row per chapter: claim, measured, and a verdict badge linking to the cell
    that decided it."""
    rows, shown = [], None
    for v in verdicts:
        name = v.get("chapter", "")
        ch = chapters.get(name, {})
        if name != shown:
            shown = name
            label = f'<a href="{ch["href"]}">{html.escape(ch["title"])}</a>' if ch else html.escape(name)
            rows.append(f'<tr class="chapter-row"><th colspan="3">{label}</th></tr>')
        anchor = anchors.get(name, {}).get(v.get("claim", ""))
        href = (f'{ch["href"]}#{anchor}' if anchor else ch["href"]) if ch else None
        rows.append(f'<tr><td>{html.escape(str(v.get("claim", "")))}</td>'
                    f'<td>{html.escape(str(v.get("measured", "")))}</td><td>{_badge(v, href)}</td></tr>')
    return ('<table class="verdicts"><thead><tr><th>claim</th><th>measured</th><th>verdict</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _split_kinds(verdicts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(empirical claims, implementation checks); records without ``kind`` are empirical claims."""
    checks = [v for v in verdicts if v.get("kind") == "implementation"]
    return [v for v in verdicts if v.get("kind") != "implementation"], checks


def _counts(verdicts: list[dict[str, Any]]) -> str:
    counts = {s: sum(v.get("status") == s for v in verdicts) for s in STATUS_LABEL}
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "none recorded"


def _duration(seconds: float | None) -> str:
    if not seconds:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _scale(card: dict[str, Any]) -> str:
    """The run's scale; a run made by hand (papermill, no manifest) still says it through its verdicts."""
    return card.get("scale") or next((v["scale"] for v in card.get("verdicts", []) if v.get("scale")), "—")


def _run_facts(card: dict[str, Any]) -> str:
    when = (card.get("finished") or card.get("started") or "")[:16].replace("T", " ")
    revision = str(card.get("git_revision") or "unknown")
    short = revision[:10] + ("+dirty" if revision.endswith("+dirty") else "")
    facts = [("scale", _scale(card)), ("date", f"{when} UTC" if when else "—"),
             ("git revision", short), ("notebook time", _duration(card.get("total_seconds"))),
             ("chapters", str(len(card.get("chapters", []))))]
    return '<dl class="run-facts">' + "".join(
        f"<div><dt>{k}</dt><dd>{f'<code>{html.escape(v)}</code>' if k == 'git revision' else html.escape(v)}</dd></div>"
        for k, v in facts) + "</dl>"


def headline_figure(chapters: list[str], part: str, records: dict[str, dict[str, Any]],
                    figures_dir: Path) -> tuple[str, Path, str] | None:
    """(chapter, figure file, caption) standing for a part of the recipe: a figure its chapters mark as
    headline, else the first figure of the part's key chapter, else of its first chapter with figures."""
    def figures_of(chapter: str) -> list[tuple[Path, str]]:
        listed = [(figures_dir / f["file"], _caption(f["name"], {f["name"]: f}))
                  for f in records.get(chapter, {}).get("figures", []) if "file" in f and "name" in f]
        found = [f for f in listed if f[0].is_file()]
        if not found:  # a record from before figures were listed: the files, in the order they were drawn
            found = [(p, "") for p in sorted(figures_dir.glob(f"{chapter}_*.png"), key=lambda p: p.stat().st_mtime)]
        return found

    for chapter in chapters:
        for f in records.get(chapter, {}).get("figures", []):
            if f.get("headline") and "name" in f and (figures_dir / f.get("file", "")).is_file():
                return chapter, figures_dir / f["file"], _caption(f["name"], {f["name"]: f})
    keys = HEADLINE_CHAPTERS.get(part, ())
    ordered = sorted(chapters, key=lambda c: (keys.index(c[:2]) if c[:2] in keys else len(keys), c))
    for chapter in ordered:
        found = figures_of(chapter)
        if found:
            return chapter, *found[0]
    return None


def _landing_html(card: dict[str, Any], chapters: dict[str, dict[str, str]], anchors: dict[str, dict[str, str]],
                  headlines: list[tuple[str, str, str, str]]) -> str:
    """The landing page's verdicts, run facts and headline figures (after the book's own introduction)."""
    claims, checks = _split_kinds(card.get("verdicts", []))
    out = [_run_facts(card), '<section class="verdict-summary"><h2 id="verdicts">Verdicts</h2>',
           f'<p>The recipe\'s claims, checked at <strong>{html.escape(_scale(card))}</strong> '
           f'scale: {_counts(claims)}. Each badge links to the cell where the run decided it.</p>']
    out.append(_verdict_table(claims, chapters, anchors) if claims
               else "<p>This run recorded no verdicts yet.</p>")
    if checks:
        out += ['<h3 id="implementation-checks">Implementation checks</h3>',
                f"<p>Checks that the book's code does what the recipe says ({_counts(checks)}); "
                "they are not claims about training.</p>",
                _verdict_table(checks, chapters, anchors)]
    out.append("</section>")
    if headlines:
        out.append('<section class="headlines"><h2 id="the-recipe-in-figures">The recipe in figures</h2>'
                   '<div class="thumbs">')
        for part, href, src, caption in headlines:
            out.append(f'<a class="thumb" href="{html.escape(href)}">'
                       f'<img src="{html.escape(src)}" alt="{html.escape(caption)}">'
                       f'<span class="part">{html.escape(part)}</span>'
                       f'<span class="caption">{html.escape(caption)}</span></a>')
        out.append("</div></section>")
    return "\n".join(out)


def _chapter_box(chapter: str, card: dict[str, Any], chapters: dict[str, dict[str, str]],
                 anchors: dict[str, dict[str, str]]) -> str:
    """The claims a chapter checks, with this run's verdicts (each badge linking to its deciding cell), in a
    short box above the chapter."""
    verdicts = [v for v in card.get("verdicts", []) if v.get("chapter") == chapter]
    if not verdicts:
        return ""
    href = chapters.get(chapter, {}).get("href", "")
    claims, checks = _split_kinds(verdicts)
    parts = ['<aside class="chapter-verdicts">']
    for title, group in (("This chapter checks", claims), ("Implementation checks", checks)):
        if not group:
            continue
        parts.append(f'<p class="box-title">{title} <span class="count">{_counts(group)}</span></p><ul>')
        for v in group:
            anchor = anchors.get(chapter, {}).get(v.get("claim", ""))
            parts.append(f'<li>{_badge(v, f"{href}#{anchor}" if anchor else None)} '
                         f'<span class="claim">{html.escape(str(v.get("claim", "")))}</span> '
                         f'<span class="measured">{html.escape(str(v.get("measured", "")))}</span></li>')
        parts.append("</ul>")
    return "".join(parts) + "</aside>"


# -- search ------------------------------------------------------------------------------------------
SEARCH_TEXT_CHARS = 20000
TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.S)


def _search_index(pages: list[tuple[str, str, str]]) -> str:
    """A script defining the search index (title, address, text of every page): a script rather than JSON
    because pages opened from disk may not fetch files."""
    docs = [{"t": title, "u": href, "x": " ".join(html.unescape(TAGS.sub(" ", body)).split())[:SEARCH_TEXT_CHARS]}
            for title, href, body in pages]
    return "window.SMOLBOOK_SEARCH = " + json.dumps(docs, ensure_ascii=False) + ";\n"


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{head_title}</title>
<link rel="stylesheet" href="_static/katex/katex.min.css">
<link rel="stylesheet" href="_static/smolbook.css">
<script src="_static/search.js" defer></script>
</head>
<body class="{kind}">
<header class="topbar"><a class="book-title" href="index.html">{book_title}</a>
<form class="search" role="search" onsubmit="return false">
<input type="search" id="search" placeholder="Search the book" aria-label="Search the book" autocomplete="off">
<ol class="search-results" hidden></ol></form>
<nav class="links">{links}</nav></header>
<div class="layout">
<nav class="toc" aria-label="Table of contents"><ul>
{sidebar}
</ul></nav>
<main>
<article>
<h1 class="page-title">{page_title}</h1>
{download}
{header}
{content}
{landing}
</article>
<footer class="pager">{prev}{next}</footer>
</main>
</div>
</body>
</html>
"""


def _write_pages(build: Path, out: Path, rendered: dict[str, Any], config: dict[str, Any], run_dir: Path,
                 anchors: dict[str, dict[str, str]]) -> Path:
    site_config = json.loads((build / "config.json").read_text())
    index = site_config["projects"][0].get("index", "index")
    entries = _nav_entries(site_config, rendered)
    tree = _nest(entries)
    ordered = [e for e in entries if e["slug"] and e["slug"] in rendered]
    project = config["project"]
    card = report_card(run_dir)
    records = _records(run_dir)
    # chapter name ("03_gqa") -> its page, from the executed notebook each notebook page downloads
    chapters = {Path(p["download"]["filename"]).stem: {"slug": slug, "href": _href(slug, index), "title": p["title"]}
                for slug, p in rendered.items() if p.get("kind") == "Notebook" and p.get("download")}
    by_slug = {c["slug"]: name for name, c in chapters.items()}
    headlines = []
    for group in tree:
        if "members" not in group:
            continue
        part_chapters = [by_slug[s] for s in _pages_in(group) if s in by_slug]
        found = headline_figure(part_chapters, group["title"], records, run_dir / "figures") if part_chapters else None
        if found:
            chapter, fig, caption = found
            (out / "figures").mkdir(exist_ok=True)
            shutil.copy2(fig, out / "figures" / fig.name)
            headlines.append((group["title"], chapters[chapter]["href"], f"figures/{fig.name}",
                              caption or chapters[chapter]["title"]))
    search = []
    for i, e in enumerate(ordered):
        page = rendered[e["slug"]]
        prev = ordered[i - 1] if i > 0 else None
        nxt = ordered[i + 1] if i + 1 < len(ordered) else None
        dl = page.get("download")
        chapter = by_slug.get(e["slug"])
        text = PAGE.format(
            page_title=html.escape(page["title"]),
            head_title=html.escape(project["title"] if e["slug"] == index
                                   else f'{page["title"]} · {project.get("short_title", project["title"])}'),
            kind="landing" if e["slug"] == index else "chapter" if chapter else "page",
            book_title=html.escape(project["title"]),
            links=_links_html(config.get("site", {}).get("nav", [])),
            sidebar=_sidebar_html(tree, e["slug"], index),
            download=(f'<p class="download">'
                      f'<a href="{html.escape(dl["url"])}" download="{html.escape(dl["filename"])}">'
                      f'Download the executed notebook ({html.escape(dl["filename"])})</a></p>') if dl else "",
            header=_chapter_box(chapter, card, chapters, anchors) if chapter else "",
            content=page["html"],
            landing=_landing_html(card, chapters, anchors, headlines) if e["slug"] == index else "",
            prev=(f'<a class="prev" href="{_href(prev["slug"], index)}">← {html.escape(prev["title"])}</a>'
                  if prev else "<span></span>"),
            next=(f'<a class="next" href="{_href(nxt["slug"], index)}">{html.escape(nxt["title"])} →</a>'
                  if nxt else ""),
        )
        (out / _href(e["slug"], index)).write_text(text)
        search.append((page["title"], _href(e["slug"], index), page["html"]))
    (out / "_static" / "search-index.js").write_text(_search_index(search))
    return out / "index.html"


def _copy_static(build: Path, out: Path) -> None:
    if (build / "public").is_dir():
        shutil.copytree(build / "public", out / "public")
    static = out / "_static"
    static.mkdir(parents=True)
    shutil.copy2(SITE_DIR / "style.css", static / "smolbook.css")
    shutil.copy2(SITE_DIR / "search.js", static / "search.js")
    katex = _node_tool("katex") / "dist"
    (static / "katex" / "fonts").mkdir(parents=True)
    shutil.copy2(katex / "katex.min.css", static / "katex" / "katex.min.css")
    for font in (katex / "fonts").glob("*.woff2"):  # every browser that runs this site reads woff2
        shutil.copy2(font, static / "katex" / "fonts" / font.name)


def build_site(run_dir: str | os.PathLike | None = None, quiet: bool = False) -> Path:
    """Build ``run_dir/site/`` from the run's executed notebooks, the data cards and the report card,
    offline; returns the path of ``index.html``. The build is staged in ``run_dir/site_src/``."""
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
    _check_run(run_dir)
    run_dir = run_dir.resolve()
    if not (MYST_CONFIG.is_file() and (SITE_DIR / "render.mjs").is_file()):
        raise SmolbookError(f"the site is built from a smolbook checkout (myst.yml, site/), not found at {REPO_DIR}: "
                            "run `smolbook site` from a clone of the repository")
    _node()
    myst = _node_tool("mystmd") / "dist" / "myst.cjs"
    _node_tool("myst-to-html")
    _node_tool("katex")
    t0 = time.perf_counter()
    src, out = run_dir / "site_src", run_dir / "site"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    config, missing = stage(run_dir, src)
    anchors = prepare_notebooks(src, _records(run_dir))
    # A part of the book whose chapters this run has not made is left out without a word; anything else missing
    # is worth a line.
    missing = [m for m in missing if not m.startswith(DEFAULT_RUN_PREFIX + "notebooks/")]
    if missing and not quiet:
        print(f"site: nothing found for {', '.join(missing)}; left out of the table of contents", flush=True)
    proc = _run_node([str(myst), "build", "--site"], src, "`myst build --site`")
    (src / "myst.log").write_text(proc.stdout + proc.stderr)
    build = src / "_build" / "site"
    pages_json = src / "pages.json"
    _run_node([str(SITE_DIR / "render.mjs"), str(build), str(pages_json), str(FOLD_CODE_LINES)], REPO_DIR,
              "rendering the pages (site/render.mjs)")
    rendered = json.loads(pages_json.read_text())["pages"]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    _copy_static(build, out)
    index = _write_pages(build, out, rendered, config, run_dir, anchors)
    if not quiet:
        print(f"site: {len(rendered)} pages in {time.perf_counter() - t0:.1f}s (MyST's log: {src / 'myst.log'})",
              flush=True)
    return index


# -- the browser check -------------------------------------------------------------------------------
def chromium_path() -> str | None:
    """Debian's chromium, if installed (``apt-get install -y chromium``)."""
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


SEARCH_QUERY = "attention"


def _chapter_pages(run_dir: Path) -> list[Path]:
    """The chapter pages of a built site, in book order (notebook pages, by their notebook's name)."""
    rendered = json.loads((run_dir / "site_src" / "pages.json").read_text())["pages"]
    notebooks = [slug for slug, p in rendered.items() if p.get("kind") == "Notebook" and p.get("download")]
    if not notebooks:
        raise SmolbookError(f"the site in {run_dir / 'site'} has no notebook page: rebuild it with `smolbook site`")
    ordered = sorted(notebooks, key=lambda s: rendered[s]["download"]["filename"])
    return [run_dir / "site" / f"{slug}.html" for slug in ordered]


def check_site(run_dir: str | os.PathLike | None = None, page: str | None = None,
               query: str = SEARCH_QUERY) -> dict[str, Any]:
    """Open the built site in headless Chromium as a reader would and report what it saw (site/check.mjs):
    the landing page and every chapter page, each with its ``problems`` (object reprs, library warnings,
    progress bars at 0%, images that did not load, internal links or anchors that lead nowhere, console
    errors); the sidebar, verdict badges and headline figures of the landing page; a search for ``query``;
    one chapter page (``page``, default the first with verdicts and a figure). Screenshots of the landing page
    and that chapter are saved in the run folder (``site_index.png``, ``site_chapter.png``)."""
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
    if not run_dir.is_dir():
        raise SmolbookError(f"no run folder at {run_dir}: make one with `{MAKE_RUN}`")
    run_dir = run_dir.resolve()
    index = run_dir / "site" / "index.html"
    if not index.exists():
        raise SmolbookError(f"no site in {run_dir / 'site'}: build it with `smolbook site --run {run_dir}`")
    browser = chromium_path()
    if browser is None:
        raise SmolbookError("the browser check needs Chromium: `apt-get install -y chromium`")
    _node_tool("playwright-core")
    chapters = _chapter_pages(run_dir)
    if page is None:
        shown = [c for c in chapters if all(k in c.read_text() for k in ("chapter-verdicts", "output-figure"))]
        chapter = (shown or chapters)[0]
    else:
        chapter = run_dir / "site" / page
    if not chapter.exists():
        raise SmolbookError(f"no page {page} in {run_dir / 'site'}")
    spec = {"index": index.as_uri(), "chapter": chapter.as_uri(), "pages": [p.as_uri() for p in [index, *chapters]],
            "shots": [str(run_dir / "site_index.png"), str(run_dir / "site_chapter.png")], "query": query}
    spec_file = run_dir / "site_src" / "check.json"
    spec_file.write_text(json.dumps(spec))
    proc = _run_node([str(SITE_DIR / "check.mjs"), browser, str(spec_file)], REPO_DIR,
                     "the browser check (site/check.mjs)", timeout=300)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def site_problems(seen: dict[str, Any]) -> list[str]:
    """Every problem the browser check found, one line each, naming its page."""
    problems = [f"{Path(p['url']).name}: {problem}" for p in seen["pages"] for problem in p["problems"]]
    problems += [f"the site requested {url}" for url in seen["offsite"]]
    if not seen["search"]["hits"]:
        problems.append(f"searching for '{seen['search']['query']}' found no page")
    return problems


# -- the command -------------------------------------------------------------------------------------
def _cmd_site(args: argparse.Namespace) -> int:
    index = build_site(args.run)
    print(f"open {index.as_uri()}")
    if args.check:
        seen = check_site(args.run)
        problems = site_problems(seen)
        print(f"browser: '{seen['index']['title']}': {len(seen['index']['nav'])} navigation entries, "
              f"{seen['index']['badges']} verdict badges, {seen['index']['thumbnails']} headline figures; "
              f"{len(seen['pages'])} pages checked, {len(problems)} problem(s); search '{seen['search']['query']}': "
              f"{len(seen['search']['hits'])} hit(s); screenshots {seen['screenshots'][0]} {seen['screenshots'][1]}")
        if problems:
            raise SmolbookError("the site in the browser:\n  " + "\n  ".join(problems))
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("site", help="build the book's static website from a run (offline)",
                       description="Build DIR/site/ (index.html + one page per chapter) from a run's executed "
                                   "notebooks, the data cards and the report card, following myst.yml.")
    p.add_argument("--run", metavar="DIR", default=None, help=f"run folder (default runs/{DEFAULT_SCALE})")
    p.add_argument("--check", action="store_true",
                   help="then open it in headless Chromium, check it and save screenshots in the run folder")
    p.set_defaults(func=_cmd_site)
