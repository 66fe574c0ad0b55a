"""``build_site``: stage the run, have MyST read it (``myst build --site``, with a local stand-in template so that
it downloads no web theme) and ``site/render.mjs`` render each page (MyST's ``myst-to-html``), then write the pages
in the book's shell (:mod:`smolbook.site.pages`)."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from smolbook.errors import SmolbookError
from smolbook.site.notebooks import prepare_notebooks, read_records
from smolbook.site.pages import FOLD_CODE_LINES, copy_static, write_pages
from smolbook.site.staging import DEFAULT_RUN_PREFIX, stage
from smolbook.site.tools import MYST_CONFIG, REPO_DIR, SITE_DIR, check_run, default_run_dir, node, node_tool, run_node


def build_site(run_dir: str | os.PathLike | None = None, quiet: bool = False) -> Path:
    """Build ``run_dir/site/`` from the run's executed notebooks, the data cards and the report card,
    offline; returns the path of ``index.html``. The build is staged in ``run_dir/site_src/``."""
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
    check_run(run_dir)
    run_dir = run_dir.resolve()
    if not (MYST_CONFIG.is_file() and (SITE_DIR / "render.mjs").is_file()):
        raise SmolbookError(f"the site is built from a smolbook checkout (myst.yml, site/), not found at {REPO_DIR}: "
                            "run `smolbook site` from a clone of the repository")
    node()
    myst = node_tool("mystmd") / "dist" / "myst.cjs"
    node_tool("myst-to-html")
    node_tool("katex")
    t0 = time.perf_counter()
    src, out = run_dir / "site_src", run_dir / "site"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    config, missing = stage(run_dir, src)
    anchors = prepare_notebooks(src, read_records(run_dir))
    # A part of the book whose chapters this run has not made is left out without a word; anything else missing
    # is worth a line.
    missing = [m for m in missing if not m.startswith(DEFAULT_RUN_PREFIX + "notebooks/")]
    if missing and not quiet:
        print(f"site: nothing found for {', '.join(missing)}; left out of the table of contents", flush=True)
    proc = run_node([str(myst), "build", "--site"], src, "`myst build --site`")
    (src / "myst.log").write_text(proc.stdout + proc.stderr)
    build = src / "_build" / "site"
    pages_json = src / "pages.json"
    run_node([str(SITE_DIR / "render.mjs"), str(build), str(pages_json), str(FOLD_CODE_LINES)], REPO_DIR,
              "rendering the pages (site/render.mjs)")
    rendered = json.loads(pages_json.read_text())["pages"]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    copy_static(build, out)
    index = write_pages(build, out, rendered, config, run_dir, anchors)
    if not quiet:
        print(f"site: {len(rendered)} pages in {time.perf_counter() - t0:.1f}s (MyST's log: {src / 'myst.log'})",
              flush=True)
    return index
