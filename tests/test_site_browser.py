"""The built site in a real browser: headless Chromium (Debian's `chromium`) opens the index page and a
chapter page from disk, with every non-file request blocked, and saves screenshots into the run folder.
Skipped only where Chromium is not installed and this is not CI; in CI (CI=true) it must run."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from smolbook import site
from smolbook.errors import SmolbookError

try:
    from test_site import make_run
except ImportError:  # tests/ imported as a package
    from tests.test_site import make_run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(site.chromium_path() is None and os.environ.get("CI") != "true",
                       reason="Chromium is not installed (apt-get install -y chromium); CI runs this test"),
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = make_run(tmp_path_factory.getbasetemp())
    if not (run / "site" / "index.html").exists():  # test_site.py built it already in a full run
        site.build_site(run, quiet=True)
    return run


def test_site_in_chromium(run_dir: Path):
    seen = site.check_site(run_dir)
    title = yaml.safe_load((site.REPO_DIR / "myst.yml").read_text())["project"]["title"]
    assert seen["index"]["title"] == title
    nav = seen["index"]["nav"]
    for entry in ("Introduction", "Chapters", "01 · Site fixture", "02 · Second fixture chapter"):
        assert entry in nav
    assert nav[-1].startswith("smolbook report card")
    chapter = seen["chapter"]
    assert chapter["heading"] == "01 · Site fixture"
    assert chapter["current"] == ["01 · Site fixture"]
    assert chapter["images"] and all(i["naturalWidth"] > 0 for i in chapter["images"]), chapter["images"]
    assert chapter["outputs"] >= 3
    assert seen["offsite"] == [], "the site must load nothing but its own files"
    for shot in seen["screenshots"]:
        assert Path(shot).parent == run_dir.resolve()
        assert Path(shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_without_run_folder_names_the_command(tmp_path: Path):
    with pytest.raises(SmolbookError, match="smolbook run --scale tiny"):
        site.check_site(tmp_path / "nope")
