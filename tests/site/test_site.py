"""`smolbook site`: a static site from a run's executed notebooks, built offline with MyST's tools.

The fixture is a real run folder: two small notebooks executed with papermill (prose, math, printed
output, a matplotlib figure, a verdict through ``Chapter``) and the report card written from their records.
"""
from __future__ import annotations

import base64
import json
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import jupytext
import nbformat
import papermill
import pytest
import yaml

from smolbook import site
from smolbook.site import tools as site_tools
from smolbook.errors import SmolbookError
from smolbook.report import write_report

pytestmark = pytest.mark.slow

CHAPTER_1 = '''# %% [markdown]
# # 01 · Site fixture
# A chapter with prose, a formula $\\eta_{\\max} = 3 \\times 10^{-3}$, a printed line and a figure.

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"

# %%
import logging
import sys

import matplotlib.pyplot as plt
from IPython.display import Markdown, display
from tqdm.auto import tqdm

from smolbook import Chapter

book = Chapter("01_site_fixture", scale, seed, output_dir)
print(f"fixture chapter at scale {book.scale.name}")

# %%
fig, ax = plt.subplots(figsize=(4, 3))
ax.plot(range(10), [x * x for x in range(10)])
ax.set_title("a measured curve")
book.savefig(fig, "curve", caption="A measured curve.")
plt.show()

# %%
# What libraries print around a chapter's work: a progress bar, a warning the book silences at its source,
# a note on stderr; and a Markdown table.
for _ in tqdm(range(3), desc="fixture bar"):
    pass
logging.getLogger("accelerate.utils.other").warning("Removed shared " + "tensor {'lm_head.weight'} while saving.")
print("a library note on stderr", file=sys.stderr)
display(Markdown("| arm | loss |\\n|---|---|\\n| fixture arm | 1.5 |"))

# %%
from smolbook.claims import Claim

probe = Claim("the fixture probe beats its baseline", "fixture", "accuracy", "better", 0.05, higher_is_better=True,
              chance=0.25, accuracy=True)
book.judge(probe, [0.50, 0.55, 0.52], [0.70, 0.72, 0.69], items=64)

# %%
claim = "the fixture chapter draws a figure"
book.verdict(claim, "one figure drawn", "holds")
print(f"{claim}: holds")
6 * 7
''' + "\n# %%\nvalues = [\n" + "".join(f"    {i},\n" for i in range(34)) + "]\nprint('long cell sum', sum(values))\n"

CHAPTER_2 = '''# %% [markdown]
# # 02 · Second fixture chapter
# Prose only, and one printed line.

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"

# %%
print("second chapter ran")
'''


def _execute(source: str, name: str, run_dir: Path) -> Path:
    nb = jupytext.reads(source, fmt="py:percent")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = run_dir / "sources" / f"{name}.ipynb"
    src.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, src)
    out = run_dir / "notebooks" / f"{name}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(src), str(out), parameters={"scale": "smoke", "output_dir": str(run_dir)},
                               kernel_name="python3", progress_bar=False, log_output=False)
    return out


def make_run(root: Path) -> Path:
    """A run folder as ``smolbook run`` leaves it (executed notebooks, records, report card), made once per
    test session and shared by the site tests and the browser test."""
    run_dir = root / "site_fixture_run"
    if (run_dir / "report.md").exists():
        return run_dir
    _execute(CHAPTER_1, "01_site_fixture", run_dir)
    _execute(CHAPTER_2, "02_site_second", run_dir)
    write_report(run_dir)
    return run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def built(run_dir: Path) -> tuple[Path, float]:
    t0 = time.perf_counter()
    index = site.build_site(run_dir, quiet=True)
    return index, time.perf_counter() - t0


class _Page(HTMLParser):
    """What a test needs from a page: its <title>, sidebar entries (links and group headings) and every
    href/src."""

    def __init__(self, text: str):
        super().__init__()
        self.title, self.nav, self.refs, self._open = "", [], [], []
        self.feed(text)

    def _in(self, tag: str, cls: str = "") -> bool:
        return any(t == tag and cls in c for t, c in self._open)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("href", "src"):
            if a.get(key):
                self.refs.append((tag, a[key]))
        if tag in ("a", "summary") and self._in("nav", "toc"):
            self.nav.append({"text": "", "href": a.get("href")})
        self._open.append((tag, a.get("class") or ""))

    def handle_endtag(self, tag):
        while self._open and self._open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if self._in("title"):
            self.title += data
        elif self._in("nav", "toc") and (self._in("a") or self._in("summary")) and not self._in("span", "count"):
            self.nav[-1]["text"] += data.strip()


def _page(path: Path) -> _Page:
    return _Page(path.read_text())


PARTS = ["Pretraining", "Long context", "Post-training", "Evaluation and inference"]


def test_myst_yml_is_the_book():
    config = yaml.safe_load((site.REPO_DIR / "myst.yml").read_text())
    project = config["project"]
    assert project["title"] and project["authors"] and project["description"]
    toc = project["toc"]
    titles = [e.get("title") or e.get("file") for e in toc]
    assert titles == ["site/index.md", *PARTS, "Data cards", "runs/tiny/report.md"], \
        "toc must run intro, the recipe's parts, data cards, report card"
    chapters = [c["pattern"] for e in toc if e.get("title") in PARTS for c in e["children"]]
    assert all(c.startswith("runs/tiny/notebooks/") for c in chapters)
    links = json.dumps(config["site"]["nav"])
    for url in ("https://huggingface.co/blog/smollm3", "https://huggingface.co/HuggingFaceTB/SmolLM3-3B",
                "https://huggingface.co/HuggingFaceTB/SmolLM3-3B-Base",
                "https://huggingface.co/datasets/HuggingFaceTB/smollm3-configs"):
        assert f'"{url}"' in links
    assert "template" not in config.get("site", {}), "the repo's myst.yml keeps the online book theme"


def test_stage_points_toc_at_the_run(run_dir: Path, tmp_path: Path):
    config, missing = site.stage(run_dir, tmp_path)
    staged = yaml.safe_load((tmp_path / "myst.yml").read_text())
    assert staged == config
    assert Path(staged["site"]["template"], "template.yml").is_file()
    toc = json.dumps(staged["project"]["toc"])
    assert "runs/tiny" not in toc and "run/notebooks/0[0-7]_*.ipynb" in toc and "run/report.md" in toc
    assert "08_" not in toc, "a part whose chapters the run lacks is left out"
    assert sorted(p.name for p in (tmp_path / "run" / "notebooks").iterdir()) == \
        ["01_site_fixture.ipynb", "02_site_second.ipynb"]
    cards = sorted(p.name for p in (site.REPO_DIR / "data_cards").glob("*.md"))
    assert sorted(p.name for p in (tmp_path / "data_cards").glob("*.md")) == cards
    if "README.md" not in cards:
        assert "data_cards/README.md" in missing


def test_pages_follow_the_toc(run_dir: Path, built):
    index, seconds = built
    assert index == run_dir.resolve() / "site" / "index.html"
    page = _page(index)
    assert page.title == yaml.safe_load((site.REPO_DIR / "myst.yml").read_text())["project"]["title"]
    texts = [e["text"] for e in page.nav]
    expected = ["Introduction", "Pretraining", "01 · Site fixture", "02 · Second fixture chapter"]
    assert texts[:len(expected)] == expected
    cards = list((site.REPO_DIR / "data_cards").glob("*.md"))
    if cards:  # the data cards follow the chapters, each one page, grouped by the stage where they enter
        assert texts[len(expected):len(expected) + 2] == ["Data cards", "Overview"]
        stages = {site.card_stage(c) for c in cards if c.name != "README.md"}
        groups = [t for t in texts if t.startswith("Enters at ")]
        assert sorted(groups) == sorted(f"Enters at {st}" for st in stages if st)
        assert len(texts) == len(expected) + 1 + len(groups) + len(cards) + 1
    assert texts[-1].startswith("smolbook report card")
    for entry in page.nav:
        if entry["href"]:
            assert (index.parent / entry["href"]).is_file(), entry
    assert seconds < 60


def _chapter(index: Path, title: str) -> Path:
    return next(p for p in index.parent.glob("*.html") if f"<title>{title} ·" in p.read_text())


def test_chapter_page_shows_executed_outputs(run_dir: Path, built):
    index, _ = built
    nb = json.loads((run_dir / "notebooks" / "01_site_fixture.ipynb").read_text())
    png = next(o["data"]["image/png"] for c in nb["cells"] for o in c.get("outputs", [])
               if "image/png" in o.get("data", {}))
    chapter = _chapter(index, "01 · Site fixture")
    text = chapter.read_text()
    assert "fixture chapter at scale smoke" in text  # a printed line, with the injected parameter
    assert re.search(r'<pre class="output-text">42</pre>', text)  # the execute_result of 6 * 7
    assert 'class="katex"' in text  # math typeset at build time, no script needed
    imgs = [src for tag, src in _page(chapter).refs if tag == "img"]
    outputs = [src for src in imgs if src.startswith("public/")]
    assert len(outputs) == 1
    assert (chapter.parent / outputs[0]).read_bytes() == base64.b64decode(png)  # the run's own figure
    # the page opens with what the chapter found: its claims' chart and its headline figure, then the story
    assert imgs[:2] == ["figures/verdicts_01_site_fixture.png", "figures/01_site_fixture_curve.png"]
    assert text.index('class="chapter-verdicts"') < text.index('class="block')
    assert "<figcaption>Figure 1. A measured curve.</figcaption>" in text  # captioned from the record
    assert "Download the executed notebook" in text


def test_chapter_page_reads_as_the_notebook_shows(built):
    """Rich outputs as Jupyter shows them; no injected cell, no library noise, no frozen progress bar."""
    text = _chapter(built[0], "01 · Site fixture").read_text()
    assert "<td>fixture arm</td>" in text and "IPython.core.display" not in text  # Markdown: a table
    assert "injected-parameters" not in text and text.count("# Parameters") == 0
    assert 'scale = <span' in text or 'scale = "smoke"' in text
    assert 'notebook default: &quot;tiny&quot;' in text or 'notebook default: "tiny"' in text
    assert "Removed shared tensor" not in text  # silenced at its source (smolbook.quiet)
    assert "0/3 [" not in text and "0%|" not in text  # a widget bar has no state to show
    stderr = re.search(r'<details class="output-stderr"><summary>stderr · 1 line</summary>'
                       r'<pre[^>]*>([^<]*)</pre>', text)
    assert stderr and stderr.group(1) == "a library note on stderr"
    assert re.search(r'<details class="code-fold"><summary><code>values = \[</code> … \(37 lines of code\)', text)


def test_verdicts_link_to_the_cell_that_decided_them(run_dir: Path, built):
    index, _ = built
    chapter = _chapter(index, "01 · Site fixture")
    cells = json.loads((run_dir / "site_src" / "run" / "notebooks" / "01_site_fixture.ipynb").read_text())["cells"]
    decided = site.decided_in(cells, "the fixture chapter draws a figure")
    assert "book.verdict(claim" in "".join(cells[decided]["source"])
    badge = f'<a class="badge holds" href="{chapter.name}#cell-{decided}"'
    assert badge in chapter.read_text()  # the chapter's header box
    assert f'id="cell-{decided}"' in chapter.read_text()
    landing = index.read_text()
    assert badge in landing and "the fixture chapter draws a figure" in landing
    assert '<dt>scale</dt><dd>smoke</dd>' in landing and "<dt>git revision</dt>" in landing
    thumbs = re.findall(r'<a class="thumb" href="([^"]+)"><img src="([^"]+)"', landing)
    assert thumbs == [(chapter.name, "figures/01_site_fixture_curve.png")]  # Pretraining's headline figure
    assert (index.parent / thumbs[0][1]).is_file()


def test_verdicts_are_a_chart_and_terse_rows(built):
    """The landing page, the chapter and the report card show the verdict chart; a verdict row is the claim, its
    effect [interval] vs margin with seeds and items, and the badge, the full measured sentence folded."""
    index, _ = built
    landing = index.read_text()
    assert '<img class="verdict-chart" src="figures/verdicts.png"' in landing
    assert (index.parent / "figures" / "verdicts.png").read_bytes()[:4] == b"\x89PNG"
    row = re.search(r"<td>the fixture probe beats its baseline<details class=\"measured\"><summary>measured</summary>"
                    r"<p>([^<]+)</p></details></td><td><span class=\"effect\">([^<]+)</span> "
                    r"<span class=\"on\">([^<]+)</span></td>", landing)
    assert row, "a terse row with the measured sentence folded"
    assert row.group(1).startswith("accuracy: recipe 0.7033, seed spread 0.0300 vs baseline 0.5233")
    assert row.group(2) == "+0.18 [+0.151, +0.209] vs margin 0.05" and row.group(3) == "3 seeds · 64 items"
    report = next(p for p in index.parent.glob("*.html") if "<title>smolbook report card" in p.read_text())
    text = report.read_text()
    for part in ("Verdicts by part of the recipe", 'src="figures/verdicts.png"', "The blog against the released configs",
                 "Implementation checks", "the fixture probe beats its baseline"):
        assert part in text, part
    assert "| chapter | claim |" not in text  # the page, not report.md's Markdown tables


def test_search_index_lists_every_page(built):
    index, _ = built
    js = (index.parent / "_static" / "search-index.js").read_text()
    docs = json.loads(js[js.index("=") + 1:].strip().rstrip(";"))
    assert len(docs) == len(list(index.parent.glob("*.html")))
    fixture = next(d for d in docs if d["t"] == "01 · Site fixture")
    assert "fixture chapter at scale smoke" in fixture["x"] and "<" not in fixture["x"]


def test_merge_parameters_shows_the_values_used():
    merged = site.merge_parameters('scale = "tiny"\nseed = 0\n# a note\noutput_dir = "runs/tiny"',
                                   '# Parameters\nscale = "smoke"\nseed = 0\noutput_dir = "/tmp/run"\nextra = 1\n')
    assert merged.splitlines() == ['scale = "smoke"  # notebook default: "tiny"', "seed = 0", "# a note",
                                   'output_dir = "/tmp/run"  # notebook default: "runs/tiny"', "extra = 1"]


def test_card_stage_reads_the_stage_table(tmp_path: Path):
    card = tmp_path / "x.md"
    card.write_text("# x\n\n## Stages and weights\n\n| stage | weight | share |\n|---|---|---|\n"
                    "| decay | 0.3 | 30% |\n")
    assert site.card_stage(card) == "decay"
    card.write_text("# x\n\nno stages\n")
    assert site.card_stage(card) is None


def test_site_opens_offline(built):
    index, _ = built
    for page in index.parent.glob("*.html"):
        for tag, ref in _page(page).refs:
            if tag == "a" and ref.startswith("https://"):
                continue  # outbound links to the sources; nothing the page loads
            assert not re.match(r"^[a-z]+://", ref), f"{page.name} loads {ref}"
            assert (page.parent / ref.split("#")[0]).exists(), f"{page.name}: {ref} is missing"
    css = (index.parent / "_static" / "katex" / "katex.min.css").read_text()
    fonts = set(re.findall(r"fonts/(KaTeX_[A-Za-z0-9-]+\.woff2)", css))
    assert fonts and all((index.parent / "_static" / "katex" / "fonts" / f).exists() for f in fonts)


def test_missing_run_folder_is_one_line_error(tmp_path: Path):
    with pytest.raises(SmolbookError, match="smolbook run --scale tiny"):
        site.build_site(tmp_path / "nope")
    (tmp_path / "empty" / "notebooks").mkdir(parents=True)
    with pytest.raises(SmolbookError, match="no executed notebooks.*smolbook run --scale tiny"):
        site.build_site(tmp_path / "empty")

def test_cli_error_is_one_line_exit_2(tmp_path: Path, capsys):
    from smolbook.cli import main

    assert main(["site", "--run", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "smolbook run --scale tiny" in err


def test_missing_npm_packages_name_the_install_command(run_dir: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(site_tools, "NODE_MODULES", tmp_path / "node_modules")
    with pytest.raises(SmolbookError, match=r"mystmd.*npm ci"):
        site.build_site(run_dir)


def test_missing_node_names_the_install_command(run_dir: Path, monkeypatch):
    monkeypatch.setattr(site_tools.shutil, "which", lambda name: None)
    with pytest.raises(SmolbookError, match=r"Node\.js.*apt-get install -y nodejs npm"):
        site.build_site(run_dir)
