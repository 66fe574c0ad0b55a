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
anchored, figures captioned); the landing page adds the verdict chart and the report card's verdicts (terse rows,
badges linking to the cell that decided each), the run's facts and a headline figure per part of the recipe; each
chapter page opens with what it found (its verdict chart, verdicts and headline figure); the report card is a page.

The package, by concern: :mod:`~smolbook.site.tools` (Node.js, npm packages, Chromium), :mod:`~smolbook.site.staging`
(what myst.yml names, copied into the build), :mod:`~smolbook.site.notebooks` (the executed notebooks rewritten for
reading), :mod:`~smolbook.site.pages` (the pages from Jinja2 templates in ``templates/``),
:mod:`~smolbook.site.search`, :mod:`~smolbook.site.build` (the build), :mod:`~smolbook.site.checks` (the browser
check) and :mod:`~smolbook.site.cli`.

``check_site`` opens the built site in headless Chromium (Debian's ``chromium``, driven by npm's
``playwright-core``) and checks what a reader would see on the landing page and every chapter page;
``smolbook site --check`` and the browser test use it.
"""
from __future__ import annotations

from smolbook.site.build import build_site
from smolbook.site.checks import check_site, site_problems
from smolbook.site.cli import register_cli
from smolbook.site.notebooks import decided_in, merge_parameters, prepare_notebook
from smolbook.site.pages import headline_figure, report_card
from smolbook.site.staging import card_stage, stage
from smolbook.site.tools import REPO_DIR, chromium_path

__all__ = ["REPO_DIR", "build_site", "card_stage", "check_site", "chromium_path", "decided_in", "headline_figure",
           "merge_parameters", "prepare_notebook", "register_cli", "report_card", "site_problems", "stage"]
