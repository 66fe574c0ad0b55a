"""The built site in a real browser: headless Chromium (Debian's `chromium`) opens the landing page and
every chapter page from disk, with every non-file request blocked, and checks what a reader sees: no IPython
display reprs, no library warnings, no progress bar at 0%, every image loaded, every internal link and
anchor resolved, no console errors; the verdict badges, headline figures, captions, pager and search work;
screenshots go into the run folder. Skipped only where Chromium is not installed and this is not CI; in CI
(CI=true) it must run."""
from __future__ import annotations

import os
import re
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
    seen = site.check_site(run_dir, query="fixture")
    assert site.site_problems(seen) == []
    assert [Path(p["url"]).name for p in seen["pages"]][0] == "index.html"
    assert len(seen["pages"]) == 3  # the landing page and both chapters
    title = yaml.safe_load((site.REPO_DIR / "myst.yml").read_text())["project"]["title"]
    index = seen["index"]
    assert index["title"] == title
    for entry in ("Introduction", "Pretraining", "01 · Site fixture", "02 · Second fixture chapter"):
        assert entry in index["nav"]
    assert index["nav"][-1].startswith("smolbook report card")
    assert index["badges"] == 2 and index["thumbnails"] == 1  # the probe and the fixture's figure claim
    chapter = seen["chapter"]
    assert chapter["heading"] == "01 · Site fixture"
    assert chapter["current"] == ["01 · Site fixture"]
    assert chapter["images"] and all(i["naturalWidth"] > 0 for i in chapter["images"]), chapter["images"]
    assert chapter["captions"] == ["Figure 1. A measured curve."]
    assert chapter["verdicts"] == 2 and chapter["prev"] == 1 and chapter["next"] == 1
    assert chapter["outputs"] >= 3
    assert seen["search"]["hits"][:2] == ["01 · Site fixture", "02 · Second fixture chapter"]  # title hits first
    assert seen["offsite"] == [], "the site must load nothing but its own files"
    for shot in seen["screenshots"]:
        assert Path(shot).parent == run_dir.resolve()
        assert Path(shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_finds_what_a_reader_must_not_see(run_dir: Path, tmp_path: Path):
    """The check is not blind: a repr, a frozen bar, a trainer's log table and log line, code wider than the page,
    a missing image, a dead anchor, a chapter without its summary on top and a landing page without the chart are
    each reported."""
    import shutil

    copy = tmp_path / "run"  # the built site and its page list, figures left behind
    shutil.copytree(run_dir / "site", copy / "site", ignore=shutil.ignore_patterns("*.png"))
    (copy / "site_src").mkdir()
    shutil.copy2(run_dir / "site_src" / "pages.json", copy / "site_src" / "pages.json")
    chapter = next(p for p in (copy / "site").glob("*.html") if "<title>01 · Site fixture ·" in p.read_text())
    text = chapter.read_text().replace(
        "</article>", '<pre>&lt;IPython.core.display.Markdown object&gt;</pre><pre>train:   0%|   | 0/73</pre>'
                      '<img src="public/missing.png"><a href="index.html#no-such-anchor">x</a>'
                      '<table><tr><th>Step</th><th>Training Loss</th></tr><tr><td>1</td><td>6.9</td></tr></table>'
                      "<pre>{'loss': 6.93, 'grad_norm': 1.2, 'learning_rate': 0.003, 'epoch': 0.1}</pre>"
                      f'<pre style="white-space: pre">wide = {"x" * 400}</pre></article>')
    text = re.sub(r'<aside class="chapter-verdicts"[^>]*>.*?</aside>', "", text, flags=re.S)
    chapter.write_text(text)
    index = copy / "site" / "index.html"
    index.write_text(re.sub(r'<img class="verdict-chart"[^>]*>', "", index.read_text()))
    problems = site.site_problems(site.check_site(copy))
    mine = [p for p in problems if p.startswith(chapter.name)]
    for what in ("IPython display object", "frozen at 0%", "image did not load: public/missing.png",
                 "link leads nowhere: file://", "1 table(s) from a trainer's progress callback",
                 "a line from a trainer's progress callback", "code wider than the page: wide = xxx",
                 "the chapter does not open with its verdict summary"):
        assert any(what in p for p in mine), (what, mine)
    assert "index.html: the landing page has no verdict chart" in problems


def test_check_without_run_folder_names_the_command(tmp_path: Path):
    with pytest.raises(SmolbookError, match="smolbook run --scale tiny"):
        site.check_site(tmp_path / "nope")
