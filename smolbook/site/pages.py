"""The pages: each page MyST rendered, in the book's HTML shell (``templates/page.html.jinja``: the sidebar of
``myst.yml``'s table of contents, previous/next links, a search box). The landing page adds the run's findings
(``templates/landing.html.jinja``: the run's facts, the verdict chart, one terse row per verdict, a headline figure
per part of the recipe); each chapter opens with what it found (its own verdict chart, verdict rows and headline
figure); the report card's page is rendered from the card itself (``templates/report.html.jinja``: counts by part of
the recipe, the chart, the ledger, the checks, the time per chapter). The charts are drawn at build time from the
run's records (:mod:`smolbook.report.charts`). Jinja2 escapes every value it is given; only MyST's own HTML of a page
goes in as it is."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jinja2

from smolbook.errors import SmolbookError
from smolbook.recipe import ledger
from smolbook.report import chapter_seconds_chart, collect, effect_summary, format_value, verdict_chart
from smolbook.site.notebooks import caption, read_records
from smolbook.site.search import search_index
from smolbook.site.tools import SITE_DIR, node_tool

TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                               autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                               undefined=jinja2.StrictUndefined)
# A group this long starts folded, unless the page shown is in it (e.g. the data cards).
FOLD_GROUPS_OVER = 30
# Code cells longer than this are folded on the page behind their first line (passed to site/render.mjs).
FOLD_CODE_LINES = 15
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


def _row(v: dict[str, Any], href: str | None) -> dict[str, Any]:
    """One terse verdict row: the claim, ``effect [interval] vs margin`` with seeds and items, the badge linking
    to the deciding cell, and the full measured sentence (shown folded)."""
    empirical = v.get("kind") != "implementation"
    on = [f'{v["n_seeds"]} seeds'] if empirical and v.get("n_seeds") else []
    if v.get("items") is not None:
        on.append(f'{v["items"]:,} items')
    return {"claim": str(v.get("claim", "")), "summary": effect_summary(v) if empirical else "",
            "on": " · ".join(on), "at_chance": bool(v.get("at_chance")), "measured": str(v.get("measured", "")),
            "badge": _badge(v, href)}


def _deciding_href(v: dict[str, Any], chapters: dict[str, dict[str, str]],
                   anchors: dict[str, dict[str, str]]) -> str | None:
    ch = chapters.get(v.get("chapter", ""), {})
    anchor = anchors.get(v.get("chapter", ""), {}).get(v.get("claim", ""))
    return (f'{ch["href"]}#{anchor}' if anchor else ch["href"]) if ch else None


def _verdict_groups(verdicts: list[dict[str, Any]], chapters: dict[str, dict[str, str]],
                    anchors: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """Claims grouped under a heading row per chapter, each a terse row (:func:`_row`)."""
    groups: list[dict[str, Any]] = []
    for v in verdicts:
        name = v.get("chapter", "")
        ch = chapters.get(name, {})
        if not groups or groups[-1]["chapter"] != name:
            groups.append({"chapter": name, "title": ch.get("title", name), "href": ch.get("href"), "rows": []})
        groups[-1]["rows"].append(_row(v, _deciding_href(v, chapters, anchors)))
    return groups


def _split_kinds(verdicts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(empirical claims, implementation checks); records without ``kind`` are empirical claims."""
    checks = [v for v in verdicts if v.get("kind") == "implementation"]
    return [v for v in verdicts if v.get("kind") != "implementation"], checks


def _tally(verdicts: list[dict[str, Any]]) -> dict[str, int]:
    return {s: sum(v.get("status") == s for v in verdicts) for s in STATUS_LABEL}


def _counts(verdicts: list[dict[str, Any]]) -> str:
    return ", ".join(f"{n} {s}" for s, n in _tally(verdicts).items() if n) or "none recorded"


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


def _figures_of(chapter: str, records: dict[str, dict[str, Any]], figures_dir: Path) -> list[tuple[Path, str]]:
    """A chapter's figures that exist, in the order it drew them, with their captions."""
    listed = [(figures_dir / f["file"], caption(f["name"], {f["name"]: f}))
              for f in records.get(chapter, {}).get("figures", []) if "file" in f and "name" in f]
    found = [f for f in listed if f[0].is_file()]
    if not found:  # a record from before figures were listed: the files, in the order they were drawn
        found = [(p, "") for p in sorted(figures_dir.glob(f"{chapter}_*.png"), key=lambda p: p.stat().st_mtime)]
    return found


def _marked_headline(chapter: str, records: dict[str, dict[str, Any]], figures_dir: Path) -> tuple[Path, str] | None:
    for f in records.get(chapter, {}).get("figures", []):
        if f.get("headline") and "name" in f and (figures_dir / f.get("file", "")).is_file():
            return figures_dir / f["file"], caption(f["name"], {f["name"]: f})
    return None


def chapter_headline(chapter: str, records: dict[str, dict[str, Any]], figures_dir: Path) -> tuple[Path, str] | None:
    """(figure file, caption) that heads a chapter's page: the figure it marks as headline, else its first."""
    found = _figures_of(chapter, records, figures_dir)
    return _marked_headline(chapter, records, figures_dir) or (found[0] if found else None)


def headline_figure(chapters: list[str], part: str, records: dict[str, dict[str, Any]],
                    figures_dir: Path) -> tuple[str, Path, str] | None:
    """(chapter, figure file, caption) standing for a part of the recipe: a figure its chapters mark as
    headline, else the first figure of the part's key chapter, else of its first chapter with figures."""
    for chapter in chapters:
        marked = _marked_headline(chapter, records, figures_dir)
        if marked:
            return chapter, *marked
    keys = HEADLINE_CHAPTERS.get(part, ())
    ordered = sorted(chapters, key=lambda c: (keys.index(c[:2]) if c[:2] in keys else len(keys), c))
    for chapter in ordered:
        found = _figures_of(chapter, records, figures_dir)
        if found:
            return chapter, *found[0]
    return None


def _landing(card: dict[str, Any], chapters: dict[str, dict[str, str]], anchors: dict[str, dict[str, str]],
             headlines: list[dict[str, str]], chart: str | None) -> dict[str, Any]:
    """What the landing page shows after the book's own introduction: the run's facts, the verdict chart, its
    verdicts (terse rows) and implementation checks (folded), and the headline figures."""
    claims, checks = _split_kinds(card.get("verdicts", []))
    return {"facts": _run_facts(card), "scale": _scale(card), "claim_counts": _counts(claims),
            "check_counts": _counts(checks), "claims": _verdict_groups(claims, chapters, anchors),
            "checks": _verdict_groups(checks, chapters, anchors), "headlines": headlines, "chart": chart}


def _chapter_box(chapter: str, card: dict[str, Any], chapters: dict[str, dict[str, str]],
                 anchors: dict[str, dict[str, str]], chart: str | None,
                 headline: dict[str, str] | None) -> dict[str, Any]:
    """What a chapter found, for the top of its page: its verdict chart, terse verdict rows (each badge linking
    to its deciding cell), its implementation checks and its headline figure."""
    verdicts = [v for v in card.get("verdicts", []) if v.get("chapter") == chapter]
    parts = []
    for title, group in zip(("Claims", "Implementation checks"), _split_kinds(verdicts)):
        if group:
            parts.append({"title": title, "counts": _counts(group),
                          "rows": [_row(v, _deciding_href(v, chapters, anchors)) for v in group]})
    return {"parts": parts, "chart": chart, "headline": headline}


def _report(card: dict[str, Any], tree: list[dict[str, Any]], by_slug: dict[str, str],
            chapters: dict[str, dict[str, str]], anchors: dict[str, dict[str, str]],
            charts: dict[str, str | None]) -> dict[str, Any]:
    """The report card page: verdict counts by part of the recipe, the chart, the claims, the blog-vs-config
    ledger, the implementation checks and the run's facts with its time per chapter."""
    verdicts = card.get("verdicts", [])
    parts = []
    for group in tree:
        if "members" not in group:
            continue
        names = {by_slug[s] for s in group["pages"] if s in by_slug}
        claims, checks = _split_kinds([v for v in verdicts if v.get("chapter") in names])
        if claims or checks:
            parts.append({"part": group["title"], **_tally(claims), "checks": len(checks),
                          "checks_failed": sum(v.get("status") != "holds" for v in checks)})
    claims, checks = _split_kinds(verdicts)
    rows = ledger()
    compared = [r for r in rows if r.agrees is not None]
    return {"facts": _run_facts(card), "parts": parts, "claim_counts": _counts(claims),
            "claims": _verdict_groups(claims, chapters, anchors), "checks": _verdict_groups(checks, chapters, anchors),
            "check_counts": _counts(checks), "charts": charts,
            "ledger": {"rows": rows, "compared": len(compared), "agree": sum(bool(r.agrees) for r in compared)},
            "numbers": [(c["name"], [(k, format_value(n.get("value")), n.get("unit", "")) for k, n in c["numbers"].items()])
                        for c in card.get("chapters", []) if c.get("numbers")],
            "versions": sorted(card.get("versions", {}).items())}


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
    charts = _draw_charts(card, out / "figures", chapters)
    heads = {}
    for name in chapters:
        found = chapter_headline(name, records, run_dir / "figures")
        if found:
            (out / "figures").mkdir(exist_ok=True)
            shutil.copy2(found[0], out / "figures" / found[0].name)
            heads[name] = {"src": f"figures/{found[0].name}", "caption": found[1] or chapters[name]["title"]}
    report_slug = _report_slug(config)
    page_template = TEMPLATES.get_template("page.html.jinja")
    links = _links(config.get("site", {}).get("nav", []))
    search = []
    for i, e in enumerate(ordered):
        page = rendered[e["slug"]]
        prev = ordered[i - 1] if i > 0 else None
        nxt = ordered[i + 1] if i + 1 < len(ordered) else None
        chapter = by_slug.get(e["slug"])
        landing = e["slug"] == index
        content = page["html"]
        if e["slug"] == report_slug and card:
            # The report card as a page to read (chart, folds, links), in place of report.md's long tables.
            content = TEMPLATES.get_template("report.html.jinja").render(
                report=_report(card, tree, by_slug, chapters, anchors, charts), title=page["title"])
        text = page_template.render(
            page_title=page["title"],
            head_title=project["title"] if landing else f'{page["title"]} · {project.get("short_title", project["title"])}',
            kind="landing" if landing else "chapter" if chapter else "page", book_title=project["title"],
            links=links, tree=tree, current=e["slug"], fold_over=FOLD_GROUPS_OVER, download=page.get("download"),
            box=_chapter_box(chapter, card, chapters, anchors, charts.get(chapter), heads.get(chapter))
            if chapter else None, content=content,
            landing=_landing(card, chapters, anchors, headlines, charts.get("verdicts")) if landing else None,
            prev={"href": _href(prev["slug"], index), "title": prev["title"]} if prev else None,
            next={"href": _href(nxt["slug"], index), "title": nxt["title"]} if nxt else None)
        (out / _href(e["slug"], index)).write_text(text)
        search.append((page["title"], _href(e["slug"], index), page["html"]))
    (out / "_static" / "search-index.js").write_text(search_index(search))
    return out / "index.html"


def _report_slug(config: dict[str, Any]) -> str | None:
    """The report card's page: the toc's ``report.md``, whose slug MyST makes from the file name."""
    def files(entries: list[dict[str, Any]]) -> list[str]:
        return [f for e in entries for f in ([e["file"]] if "file" in e else []) + files(e.get("children", []))]
    found = [f for f in files(config["project"]["toc"]) if Path(f).name == "report.md"]
    return Path(found[0]).stem if found else None


def _draw_charts(card: dict[str, Any], figures: Path, chapters: dict[str, dict[str, str]]) -> dict[str, str | None]:
    """The verdict chart of the whole run (``verdicts``) and of each chapter with claims (by chapter name), and the
    run's seconds per chapter (``seconds``), drawn into ``figures``; the paths as the pages link them."""
    verdicts = card.get("verdicts", [])
    out: dict[str, str | None] = {}
    drawn = verdict_chart(verdicts, figures / "verdicts.png")
    out["verdicts"] = f"figures/{drawn.name}" if drawn else None
    for name in chapters:
        mine = [v for v in verdicts if v.get("chapter") == name]
        drawn = verdict_chart(mine, figures / f"verdicts_{name}.png", group_by_chapter=False)
        out[name] = f"figures/{drawn.name}" if drawn else None
    drawn = chapter_seconds_chart(card.get("chapters", []), figures / "seconds.png")
    out["seconds"] = f"figures/{drawn.name}" if drawn else None
    return out


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
