"""``smolbook site [--run DIR] [--check]``."""
from __future__ import annotations

import argparse

from smolbook.errors import SmolbookError
from smolbook.scales import DEFAULT_SCALE
from smolbook.site.build import build_site
from smolbook.site.checks import check_site, site_problems


def _cmd_site(args: argparse.Namespace) -> int:
    index = build_site(args.run)
    print(f"open {index.as_uri()}")
    if args.check:
        seen = check_site(args.run)
        problems = site_problems(seen)
        print(f"browser: '{seen['index']['title']}': {len(seen['index']['nav'])} navigation entries, "
              f"{seen['index']['badges']} verdict badges, {seen['index']['thumbnails']} headline figures; "
              f"{len(seen['pages'])} pages checked, {len(problems)} problem(s); search '{seen['search']['query']}': "
              f"{len(seen['search']['hits'])} hit(s); screenshots {' '.join(seen['screenshots'])}")
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
