"""The pages: each page MyST rendered, in the book's HTML shell (``templates/page.html.jinja``: the sidebar of
``myst.yml``'s table of contents, previous/next links, a search box), with the report card on the landing page
(``templates/landing.html.jinja``: the run's facts, the verdicts, a headline figure per part of the recipe) and
each chapter's verdicts in a box above the chapter. Jinja2 escapes every value it is given; only MyST's own HTML
of a page goes in as it is."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jinja2

from smolbook.errors import SmolbookError
from smolbook.report import collect
from smolbook.site.notebooks import caption, read_records
from smolbook.site.search import search_index
from smolbook.site.tools import SITE_DIR, node_tool

TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                               autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                               undefined=jinja2.StrictUndefined)
# A group this long starts folded, unless the page shown is in it (e.g. the data cards).
FOLD_GROUPS_OVER = 30
# Code cells longer than this are folded on the page (passed to site/render.mjs).
FOLD_CODE_LINES = 30
# The part of the recipe each sidebar group stands for, and the chapters whose first figure stands for it
# on the landing page (in order of preference) unless a chapter marks a headline figure itself.
HEADLINE_CHAPTERS = {"Pretraining": ("07",), "Long context": ("08",), "Post-training": ("11", "09", "12", "13", "10"),
                     "Evaluation and inference": ("14", "15")}
STATUS_LABEL = {"holds": "holds", "differs": "differs", "inconclusive": "inconclusive"}


# -- navigation --------------------------------------------------------------------------------------
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


def _links(nav: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The top bar's links (``site.nav`` of myst.yml; a menu's links named after it)."""
    out = []
    for item in nav:
        for link in item.get("children", [item]):
            if link.get("url"):
                out.append({"url": link["url"],
                            "label": link["title"] if link is item else f"{item['title']}: {link['title']}"})
    return out


def _nest(entries: list[dict[str, Any]], index: str) -> list[dict[str, Any]]:
    """myst's flat page list (levels; groups have no slug) as a tree: a group's ``members`` are the entries
    below it at deeper levels, and its ``pages`` every page slug in it; a page has its ``href``."""
    out, i = [], 0
    while i < len(entries):
        e = dict(entries[i])
        i += 1
        if not e["slug"]:
            j = i
            while j < len(entries) and entries[j]["level"] > e["level"]:
                j += 1
            e["members"] = _nest(entries[i:j], index)
            e["pages"] = _pages_in(e)
            i = j
        else:
            e["href"] = _href(e["slug"], index)
        out.append(e)
    return out


def _pages_in(group: dict[str, Any]) -> list[str]:
    """Every page slug in a group, nested groups included."""
    return [s for m in group["members"] for s in (_pages_in(m) if "members" in m else [m["slug"]])]


# -- the report card on the pages --------------------------------------------------------------------
def report_card(run_dir: Path) -> dict[str, Any]:
    """The run's report card (``report.json``; made from the records when the run has none yet)."""
    path = run_dir / "report.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            pass
    try:
        return collect(run_dir)
    except SmolbookError:
        return {}


def _badge(verdict: dict[str, Any], href: str | None) -> dict[str, Any]:
    """A verdict's status as a coloured badge; its rule (when the record states one) shows on hover."""
    status = str(verdict.get("status", ""))
    return {"status": status, "label": STATUS_LABEL.get(status, status), "href": href,
            "rule": f'{verdict["rule"]}. ' if verdict.get("rule") else ""}


def _verdict_groups(verdicts: list[dict[str, Any]], chapters: dict[str, dict[str, str]],
                    anchors: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Claims grouped under a heading row per chapter: claim, measured, and a verdict badge linking to the cell
    that decided it."""
    groups: list[dict[str, Any]] = []
    for v in verdicts:
        name = v.get("chapter", "")
        ch = chapters.get(name, {})
        if not groups or groups[-1]["chapter"] != name:
            groups.append({"chapter": name, "title": ch.get("title", name), "href": ch.get("href"), "rows": []})
        anchor = anchors.get(name, {}).get(v.get("claim", ""))
        href = (f'{ch["href"]}#{anchor}' if anchor else ch["href"]) if ch else None
        groups[-1]["rows"].append({"claim": str(v.get("claim", "")), "measured": str(v.get("measured", "")),
                                   "badge": _badge(v, href)})
    return groups


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


def _run_facts(card: dict[str, Any]) -> list[tuple[str, str]]:
    when = (card.get("finished") or card.get("started") or "")[:16].replace("T", " ")
    revision = str(card.get("git_revision") or "unknown")
    short = revision[:10] + ("+dirty" if revision.endswith("+dirty") else "")
    return [("scale", _scale(card)), ("date", f"{when} UTC" if when else "—"), ("git revision", short),
            ("notebook time", _duration(card.get("total_seconds"))), ("chapters", str(len(card.get("chapters", []))))]


def headline_figure(chapters: list[str], part: str, records: dict[str, dict[str, Any]],
                    figures_dir: Path) -> tuple[str, Path, str] | None:
    """(chapter, figure file, caption) standing for a part of the recipe: a figure its chapters mark as
    headline, else the first figure of the part's key chapter, else of its first chapter with figures."""
    def figures_of(chapter: str) -> list[tuple[Path, str]]:
        listed = [(figures_dir / f["file"], caption(f["name"], {f["name"]: f}))
                  for f in records.get(chapter, {}).get("figures", []) if "file" in f and "name" in f]
        found = [f for f in listed if f[0].is_file()]
        if not found:  # a record from before figures were listed: the files, in the order they were drawn
            found = [(p, "") for p in sorted(figures_dir.glob(f"{chapter}_*.png"), key=lambda p: p.stat().st_mtime)]
        return found

    for chapter in chapters:
        for f in records.get(chapter, {}).get("figures", []):
            if f.get("headline") and "name" in f and (figures_dir / f.get("file", "")).is_file():
                return chapter, figures_dir / f["file"], caption(f["name"], {f["name"]: f})
    keys = HEADLINE_CHAPTERS.get(part, ())
    ordered = sorted(chapters, key=lambda c: (keys.index(c[:2]) if c[:2] in keys else len(keys), c))
    for chapter in ordered:
        found = figures_of(chapter)
        if found:
            return chapter, *found[0]
    return None


def _landing(card: dict[str, Any], chapters: dict[str, dict[str, str]], anchors: dict[str, dict[str, str]],
             headlines: list[dict[str, str]]) -> dict[str, Any]:
    """What the landing page shows after the book's own introduction: the run's facts, its verdicts and
    implementation checks, and the headline figures."""
    claims, checks = _split_kinds(card.get("verdicts", []))
    return {"facts": _run_facts(card), "scale": _scale(card), "claim_counts": _counts(claims),
            "check_counts": _counts(checks), "claims": _verdict_groups(claims, chapters, anchors),
            "checks": _verdict_groups(checks, chapters, anchors), "headlines": headlines}


def _chapter_box(chapter: str, card: dict[str, Any], chapters: dict[str, dict[str, str]],
                 anchors: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """The claims a chapter checks, with this run's verdicts (each badge linking to its deciding cell), for a
    short box above the chapter: one part for the claims, one for the implementation checks."""
    verdicts = [v for v in card.get("verdicts", []) if v.get("chapter") == chapter]
    href = chapters.get(chapter, {}).get("href", "")
    box = []
    for title, group in zip(("This chapter checks", "Implementation checks"), _split_kinds(verdicts)):
        if group:
            rows = [{"claim": str(v.get("claim", "")), "measured": str(v.get("measured", "")),
                     "badge": _badge(v, f"{href}#{a}" if (a := anchors.get(chapter, {}).get(v.get("claim", "")))
                                     else None)} for v in group]
            box.append({"title": title, "counts": _counts(group), "rows": rows})
    return box


# -- writing the site --------------------------------------------------------------------------------
def write_pages(build: Path, out: Path, rendered: dict[str, Any], config: dict[str, Any], run_dir: Path,
                anchors: dict[str, dict[str, str]]) -> Path:
    """Every page MyST rendered, in the book's shell, into ``out``; the search index beside them. Returns the
    landing page."""
    site_config = json.loads((build / "config.json").read_text())
    index = site_config["projects"][0].get("index", "index")
    entries = _nav_entries(site_config, rendered)
    tree = _nest(entries, index)
    ordered = [e for e in entries if e["slug"] and e["slug"] in rendered]
    project = config["project"]
    card = report_card(run_dir)
    records = read_records(run_dir)
    # chapter name ("03_gqa") -> its page, from the executed notebook each notebook page downloads
    chapters = {Path(p["download"]["filename"]).stem: {"slug": slug, "href": _href(slug, index), "title": p["title"]}
                for slug, p in rendered.items() if p.get("kind") == "Notebook" and p.get("download")}
    by_slug = {c["slug"]: name for name, c in chapters.items()}
    headlines = []
    for group in tree:
        if "members" not in group:
            continue
        part_chapters = [by_slug[s] for s in group["pages"] if s in by_slug]
        found = headline_figure(part_chapters, group["title"], records, run_dir / "figures") if part_chapters else None
        if found:
            chapter, fig, text = found
            (out / "figures").mkdir(exist_ok=True)
            shutil.copy2(fig, out / "figures" / fig.name)
            headlines.append({"part": group["title"], "href": chapters[chapter]["href"], "src": f"figures/{fig.name}",
                              "caption": text or chapters[chapter]["title"]})
    page_template = TEMPLATES.get_template("page.html.jinja")
    links = _links(config.get("site", {}).get("nav", []))
    search = []
    for i, e in enumerate(ordered):
        page = rendered[e["slug"]]
        prev = ordered[i - 1] if i > 0 else None
        nxt = ordered[i + 1] if i + 1 < len(ordered) else None
        chapter = by_slug.get(e["slug"])
        landing = e["slug"] == index
        text = page_template.render(
            page_title=page["title"],
            head_title=project["title"] if landing else f'{page["title"]} · {project.get("short_title", project["title"])}',
            kind="landing" if landing else "chapter" if chapter else "page", book_title=project["title"],
            links=links, tree=tree, current=e["slug"], fold_over=FOLD_GROUPS_OVER, download=page.get("download"),
            box=_chapter_box(chapter, card, chapters, anchors) if chapter else None, content=page["html"],
            landing=_landing(card, chapters, anchors, headlines) if landing else None,
            prev={"href": _href(prev["slug"], index), "title": prev["title"]} if prev else None,
            next={"href": _href(nxt["slug"], index), "title": nxt["title"]} if nxt else None)
        (out / _href(e["slug"], index)).write_text(text)
        search.append((page["title"], _href(e["slug"], index), page["html"]))
    (out / "_static" / "search-index.js").write_text(search_index(search))
    return out / "index.html"


def copy_static(build: Path, out: Path) -> None:
    """The site's stylesheet, search script and KaTeX's CSS and fonts (woff2), so pages open from disk."""
    if (build / "public").is_dir():
        shutil.copytree(build / "public", out / "public")
    static = out / "_static"
    static.mkdir(parents=True)
    shutil.copy2(SITE_DIR / "style.css", static / "smolbook.css")
    shutil.copy2(SITE_DIR / "search.js", static / "search.js")
    katex = node_tool("katex") / "dist"
    (static / "katex" / "fonts").mkdir(parents=True)
    shutil.copy2(katex / "katex.min.css", static / "katex" / "katex.min.css")
    for font in (katex / "fonts").glob("*.woff2"):  # every browser that runs this site reads woff2
        shutil.copy2(font, static / "katex" / "fonts" / font.name)
