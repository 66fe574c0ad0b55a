"""The browser check: the built site opened in headless Chromium as a reader would (``site/check.mjs``, driven by
npm's ``playwright-core``), what it saw on the landing page and every chapter page, and the problems it found."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from smolbook.errors import SmolbookError
from smolbook.site.tools import MAKE_RUN, REPO_DIR, SITE_DIR, chromium_path, default_run_dir, node_tool, run_node

SEARCH_QUERY = "attention"
# Chapters screenshotted besides the landing page and the chapter checked closely: SFT, the book's busiest page.
SCREENSHOT_CHAPTERS = ("11",)


def _notebooks_of(run_dir: Path) -> dict[str, str]:
    """Each chapter page's file name -> the executed notebook it shows ("11_sft.ipynb")."""
    rendered = json.loads((run_dir / "site_src" / "pages.json").read_text())["pages"]
    return {f"{slug}.html": p["download"]["filename"] for slug, p in rendered.items() if p.get("download")}


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
    errors, a trainer's log tables or lines, code wider than the page, a chapter that does not open with its
    verdict summary, a landing page without the verdict chart); the sidebar, verdict badges and headline figures
    of the landing page; a search for ``query``; one chapter page (``page``, default the first ablation chapter:
    claims charted and a figure). Screenshots of the top of the landing page, that chapter and chapter 11 are saved
    in the run folder (``site_index.png``, ``site_chapter.png``, ``site_chapter_11.png``)."""
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
    node_tool("playwright-core")
    chapters = _chapter_pages(run_dir)
    if page is None:
        # an ablation chapter: the first whose claims have a chart and whose page shows a figure of its own
        shown = [c for c in chapters if all(k in c.read_text() for k in ('img class="verdict-chart"', "output-figure"))]
        chapter = (shown or chapters)[0]
    else:
        chapter = run_dir / "site" / page
    if not chapter.exists():
        raise SmolbookError(f"no page {page} in {run_dir / 'site'}")
    shots = [(index, run_dir / "site_index.png"), (chapter, run_dir / "site_chapter.png")]
    notebooks = _notebooks_of(run_dir)
    shots += [(c, run_dir / f"site_chapter_{n}.png") for n in SCREENSHOT_CHAPTERS for c in chapters
              if notebooks.get(c.name, "").startswith(f"{n}_") and c != chapter]
    spec = {"index": index.as_uri(), "chapter": chapter.as_uri(), "pages": [p.as_uri() for p in [index, *chapters]],
            "chapters": [c.as_uri() for c in chapters],
            "shots": [{"url": p.as_uri(), "path": str(png)} for p, png in shots], "query": query}
    spec_file = run_dir / "site_src" / "check.json"
    spec_file.write_text(json.dumps(spec))
    proc = run_node([str(SITE_DIR / "check.mjs"), browser, str(spec_file)], REPO_DIR,
                     "the browser check (site/check.mjs)", timeout=300)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def site_problems(seen: dict[str, Any]) -> list[str]:
    """Every problem the browser check found, one line each, naming its page."""
    problems = [f"{Path(p['url']).name}: {problem}" for p in seen["pages"] for problem in p["problems"]]
    problems += [f"the site requested {url}" for url in seen["offsite"]]
    if not seen["search"]["hits"]:
        problems.append(f"searching for '{seen['search']['query']}' found no page")
    return problems
