"""``smolbook site``: the book as a static website, built offline from a run's executed notebooks.

MyST does the reading: ``myst build --site`` (npm ``mystmd``) turns the notebooks, data cards and report
card named in ``myst.yml`` into page ASTs, with a local stand-in template (``site/template``) so that it
downloads no web theme. ``site/render.mjs`` renders those ASTs with MyST's ``myst-to-html``. This module
stages the build, then writes each page into a small HTML shell with the navigation of ``myst.yml``'s
table of contents: ``DIR/site/index.html`` and one page per chapter, openable from disk (``file://``).

``check_site`` opens the built site in headless Chromium (Debian's ``chromium``, driven by npm's
``playwright-core``) and checks what a reader would see; ``smolbook site --check`` and the browser test
use it.
"""
from __future__ import annotations

import argparse
import html
import json
import os
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


def stage(run_dir: Path, src: Path) -> tuple[dict[str, Any], list[str]]:
    """Copy what myst.yml's toc names (from the repo, or from ``run_dir`` for the run's files) into ``src``
    and write ``src/myst.yml``. A ``pattern`` entry brings its whole folder: myst itself matches the pattern.
    Returns the staged config and the toc paths that found no file (left out of the staged toc)."""
    config = yaml.safe_load(MYST_CONFIG.read_text())
    toc = config["project"]["toc"]
    missing = []
    for entry, key in _toc_paths(toc):
        root, rel = _source_of(entry[key], run_dir)
        staged = STAGED_RUN + rel if root == run_dir else rel
        if key == "pattern":
            files = sorted(p for p in (root / rel).parent.glob("*") if p.is_file())
        else:
            files = [root / rel] if (root / rel).is_file() else []
        dest_dir = src / Path(staged).parent
        if not files:
            missing.append(entry[key])
            entry["_empty"] = True
        dest_dir.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy2(f, dest_dir / f.name)
        entry[key] = staged
    config["project"]["toc"] = _prune(toc)
    if (run_dir / "figures").is_dir():  # the report card may show the run's figures
        shutil.copytree(run_dir / "figures", src / STAGED_RUN / "figures", dirs_exist_ok=True)
    config.setdefault("site", {})["template"] = str(SITE_DIR / "template")
    (src / "myst.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return config, missing


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
    entries += [{"slug": p.get("slug"), "title": label(p.get("slug"), p["title"]), "level": p.get("level", 1)}
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


def _sidebar_html(entries: list[dict[str, Any]], current: str, index: str) -> str:
    def item(e: dict[str, Any]) -> str:
        here = ' aria-current="page"' if e["slug"] == current else ""
        return (f'<li class="level-{e["level"]}"><a href="{_href(e["slug"], index)}"{here}>'
                f'{html.escape(e["title"])}</a></li>')

    out, i = [], 0
    while i < len(entries):
        e = entries[i]
        i += 1
        if e["slug"]:
            out.append(item(e))
            continue
        members = []
        while i < len(entries) and entries[i]["level"] > e["level"]:
            members.append(entries[i])
            i += 1
        is_open = len(members) <= FOLD_GROUPS_OVER or any(m["slug"] == current for m in members)
        out.append(f'<li class="group"><details{" open" if is_open else ""}><summary>{html.escape(e["title"])}'
                   f' <span class="count">{len(members)}</span></summary><ul>'
                   + "".join(item(m) for m in members if m["slug"]) + "</ul></details></li>")
    return "\n".join(out)


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{head_title}</title>
<link rel="stylesheet" href="_static/katex/katex.min.css">
<link rel="stylesheet" href="_static/smolbook.css">
</head>
<body>
<header class="topbar"><a class="book-title" href="index.html">{book_title}</a><nav class="links">{links}</nav></header>
<div class="layout">
<nav class="toc" aria-label="Table of contents"><ul>
{sidebar}
</ul></nav>
<main>
<article>
<h1 class="page-title">{page_title}</h1>
{download}
{content}
</article>
<footer class="pager">{prev}{next}</footer>
</main>
</div>
</body>
</html>
"""


def _write_pages(build: Path, out: Path, rendered: dict[str, Any], config: dict[str, Any]) -> Path:
    site_config = json.loads((build / "config.json").read_text())
    index = site_config["projects"][0].get("index", "index")
    entries = _nav_entries(site_config, rendered)
    ordered = [e for e in entries if e["slug"] and e["slug"] in rendered]
    project = config["project"]
    for i, e in enumerate(ordered):
        page = rendered[e["slug"]]
        prev = ordered[i - 1] if i > 0 else None
        nxt = ordered[i + 1] if i + 1 < len(ordered) else None
        dl = page.get("download")
        text = PAGE.format(
            page_title=html.escape(page["title"]),
            head_title=html.escape(project["title"] if e["slug"] == index
                                   else f'{page["title"]} · {project.get("short_title", project["title"])}'),
            book_title=html.escape(project["title"]),
            links=_links_html(config.get("site", {}).get("nav", [])),
            sidebar=_sidebar_html(entries, e["slug"], index),
            download=(f'<p class="download"><a href="{html.escape(dl["url"])}" download="{html.escape(dl["filename"])}">'
                      f'Download the executed notebook ({html.escape(dl["filename"])})</a></p>') if dl else "",
            content=page["html"],
            prev=(f'<a class="prev" href="{_href(prev["slug"], index)}">← {html.escape(prev["title"])}</a>'
                  if prev else "<span></span>"),
            next=(f'<a class="next" href="{_href(nxt["slug"], index)}">{html.escape(nxt["title"])} →</a>'
                  if nxt else ""),
        )
        (out / _href(e["slug"], index)).write_text(text)
    return out / "index.html"


def _copy_static(build: Path, out: Path) -> None:
    if (build / "public").is_dir():
        shutil.copytree(build / "public", out / "public")
    static = out / "_static"
    static.mkdir(parents=True)
    shutil.copy2(SITE_DIR / "style.css", static / "smolbook.css")
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
    if missing and not quiet:
        print(f"site: nothing found for {', '.join(missing)}; left out of the table of contents", flush=True)
    proc = _run_node([str(myst), "build", "--site"], src, "`myst build --site`")
    (src / "myst.log").write_text(proc.stdout + proc.stderr)
    build = src / "_build" / "site"
    pages_json = src / "pages.json"
    _run_node([str(SITE_DIR / "render.mjs"), str(build), str(pages_json)], REPO_DIR, "rendering the pages (site/render.mjs)")
    rendered = json.loads(pages_json.read_text())["pages"]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    _copy_static(build, out)
    index = _write_pages(build, out, rendered, config)
    if not quiet:
        print(f"site: {len(rendered)} pages in {time.perf_counter() - t0:.1f}s (MyST's log: {src / 'myst.log'})",
              flush=True)
    return index


# -- the browser check -------------------------------------------------------------------------------
def chromium_path() -> str | None:
    """Debian's chromium, if installed (``apt-get install -y chromium``)."""
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


def check_site(run_dir: str | os.PathLike | None = None, page: str | None = None) -> dict[str, Any]:
    """Open the built site in headless Chromium and report what a reader sees: the index page's title and
    navigation, and on a chapter page (``page``, default the first notebook) each image's natural width.
    Screenshots of both pages are saved in the run folder (``site_index.png``, ``site_chapter.png``)."""
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
    if page is None:
        rendered = json.loads((run_dir / "site_src" / "pages.json").read_text())["pages"]
        notebooks = [slug for slug, p in rendered.items() if p.get("kind") == "Notebook"]
        if not notebooks:
            raise SmolbookError(f"the site in {run_dir / 'site'} has no notebook page: rebuild it with `smolbook site`")
        page = f"{sorted(notebooks, key=lambda s: rendered[s]['download']['filename'])[0]}.html"
    chapter = run_dir / "site" / page
    if not chapter.exists():
        raise SmolbookError(f"no page {page} in {run_dir / 'site'}")
    proc = _run_node([str(SITE_DIR / "check.mjs"), browser, index.as_uri(), chapter.as_uri(),
                      str(run_dir / "site_index.png"), str(run_dir / "site_chapter.png")],
                     REPO_DIR, "the browser check (site/check.mjs)", timeout=120)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the command -------------------------------------------------------------------------------------
def _cmd_site(args: argparse.Namespace) -> int:
    index = build_site(args.run)
    print(f"open {index.as_uri()}")
    if args.check:
        seen = check_site(args.run)
        broken = [i["src"] for i in seen["chapter"]["images"] if not i["naturalWidth"]]
        print(f"browser: '{seen['index']['title']}', {len(seen['index']['nav'])} navigation entries; "
              f"{seen['chapter']['url']}: {len(seen['chapter']['images'])} image(s), {len(broken)} broken; "
              f"screenshots {seen['screenshots'][0]} {seen['screenshots'][1]}")
        if broken:
            raise SmolbookError(f"images that did not load: {', '.join(broken)}")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("site", help="build the book's static website from a run (offline)",
                       description="Build DIR/site/ (index.html + one page per chapter) from a run's executed "
                                   "notebooks, the data cards and the report card, following myst.yml.")
    p.add_argument("--run", metavar="DIR", default=None, help=f"run folder (default runs/{DEFAULT_SCALE})")
    p.add_argument("--check", action="store_true",
                   help="then open it in headless Chromium, check it and save screenshots in the run folder")
    p.set_defaults(func=_cmd_site)
