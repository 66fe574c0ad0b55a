"""The report card: every chapter's headline numbers and claim verdicts in one ``report.md`` + ``report.json``, with
the verdict chart and the time per chapter (:mod:`smolbook.report.charts`) in ``figures/``.

Chapters record through :class:`smolbook.Chapter` into ``DIR/records/<chapter>.json``; the runner's
``manifest.json`` adds status and run time per notebook, the git revision and library versions.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from smolbook.claims import CONFIDENCE
from smolbook.errors import SmolbookError
from smolbook.report.charts import chapter_seconds_chart, effect_summary, verdict_chart

VERDICT_CHART = "figures/report_verdicts.png"
SECONDS_CHART = "figures/report_seconds.png"

STATUS_MARK = {"holds": "holds", "differs": "DIFFERS", "inconclusive": "inconclusive"}


def collect(run_dir: str | Path) -> dict[str, Any]:
    """Everything the report card shows, as one JSON-able dict."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SmolbookError(f"no run folder at {run_dir}: make one with `smolbook run --scale tiny`")
    manifest: dict[str, Any] = {}
    if (run_dir / "manifest.json").exists():
        manifest = json.loads((run_dir / "manifest.json").read_text())
    records = {}
    for p in sorted((run_dir / "records").glob("*.json")):
        try:
            records[p.stem] = json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise SmolbookError(f"record {p} is not valid JSON ({e}); rerun its notebook with --force") from None
    if not manifest and not records:
        raise SmolbookError(f"{run_dir} holds no manifest.json and no records: make a run with `smolbook run`")
    names = sorted(set(manifest.get("notebooks", {})) | set(records))
    chapters = []
    for name in names:
        m = manifest.get("notebooks", {}).get(name, {})
        r = records.get(name, {})
        chapters.append({"name": name, "status": m.get("status", "recorded"), "seconds": m.get("seconds"),
                         "numbers": r.get("numbers", {}), "verdicts": r.get("verdicts", [])})
    verdicts = [dict(v, chapter=c["name"], kind=v.get("kind") or "empirical") for c in chapters for v in c["verdicts"]]
    # Only experiments count as evidence; implementation checks (counts, patterns, shapes) are tallied apart.
    counts = {s: sum(v["status"] == s for v in verdicts if v["kind"] == "empirical") for s in STATUS_MARK}
    impl = {s: sum(v["status"] == s for v in verdicts if v["kind"] == "implementation") for s in ("holds", "differs")}
    return {"run_dir": str(run_dir.resolve()), "scale": manifest.get("scale"), "seed": manifest.get("seed"),
            "git_revision": manifest.get("git_revision"), "versions": manifest.get("versions", {}),
            "started": manifest.get("started"), "finished": manifest.get("finished"),
            "total_seconds": round(sum(c["seconds"] or 0 for c in chapters), 1),
            "chapters": chapters, "verdicts": verdicts, "verdict_counts": counts, "implementation_counts": impl}


def format_value(value: Any) -> str:
    """A recorded number as the report card writes it: floats to 4 significant digits, whole numbers with
    thousands separators."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(card: dict[str, Any], charts: dict[str, str] | None = None) -> str:
    """The report card as Markdown; ``charts`` names the figures it shows (``verdicts``, ``seconds``: paths
    relative to the run folder, as :func:`write_report` draws them)."""
    charts = charts or {}
    c = card["verdict_counts"]
    lines = [
        f"# smolbook report card: {card['scale'] or 'run'} scale", "",
        f"Run folder `{card['run_dir']}`, seed {card['seed']}, git {card['git_revision']}, "
        f"{card['total_seconds']:.0f}s of notebook time.", "",
        f"**Verdicts on the recipe's claims:** {c['holds']} hold, {c['differs']} differ, {c['inconclusive']} "
        f"inconclusive. **Implementation checks:** {card['implementation_counts']['holds']} pass, "
        f"{card['implementation_counts']['differs']} fail (not evidence).", "",
        "## Claims checked", "",
    ]
    empirical = [v for v in card["verdicts"] if v["kind"] == "empirical"]
    if empirical:
        if charts.get("verdicts"):
            lines += [f"![Every claim's effect and {CONFIDENCE:.0%} interval against its margin]({charts['verdicts']})",
                      ""]
        lines += [f"| chapter | claim | effect [{CONFIDENCE:.0%} CI] vs margin | seeds | items | chance | verdict |",
                  "|---|---|---|---:|---:|---:|---|"]
        for v in empirical:
            items = "" if v.get("items") is None else f"{v['items']:,}"
            chance = "" if v.get("chance") is None else f"{v['chance']:g}"
            verdict = STATUS_MARK[v["status"]] + (" (at chance)" if v.get("at_chance") else "")
            lines.append(f"| {v['chapter']} | {_cell(v['claim'])} | {effect_summary(v)} | {v.get('n_seeds') or ''} "
                         f"| {items} | {chance} | {verdict} |")
        lines += ["", "### What each verdict rests on", ""]
        lines += [f"- **{_cell(v['claim'])}** ({v['chapter']}): {_cell(v['measured'])}" for v in empirical]
        rules = list(dict.fromkeys(v["rule"] for v in empirical if v.get("rule")))
        lines += [""] + [f"Rule: {r}" for r in rules]
    else:
        lines.append("No verdicts were recorded.")
    checks = [v for v in card["verdicts"] if v["kind"] == "implementation"]
    if checks:
        lines += ["", "## Implementation checks", "",
                  "The code builds what the recipe describes; these are not evidence for any claim.", "",
                  "| chapter | check | measured | result |", "|---|---|---|---|"]
        lines += [f"| {v['chapter']} | {_cell(v['claim'])} | {_cell(v['measured'])} | "
                  f"{'pass' if v['status'] == 'holds' else 'FAIL'} |" for v in checks]
    lines += ["", "## Chapters", ""]
    if charts.get("seconds"):
        lines += [f"![Seconds of notebook time per chapter]({charts['seconds']})", ""]
    lines += ["| chapter | status | seconds |", "|---|---|---:|"]
    for ch in card["chapters"]:
        secs = "" if ch["seconds"] is None else f"{ch['seconds']:.1f}"
        lines.append(f"| {ch['name']} | {ch['status']} | {secs} |")
    for ch in card["chapters"]:
        if not ch["numbers"]:
            continue
        lines += ["", f"### {ch['name']}", "", "| number | value | unit | note |", "|---|---:|---|---|"]
        lines += [f"| {_cell(k)} | {format_value(n['value'])} | {_cell(n.get('unit', ''))} | {_cell(n.get('note', ''))} |"
                  for k, n in ch["numbers"].items()]
    if card["versions"]:
        lines += ["", "## Versions", "", "| package | version |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in card["versions"].items()]
    return "\n".join(lines) + "\n"


def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.json`` into the run folder, and the figures the card shows (the verdict
    chart, seconds per chapter) into its ``figures/``; returns both paths."""
    card = collect(run_dir)
    run_dir = Path(run_dir)
    charts = {}
    if verdict_chart(card["verdicts"], run_dir / VERDICT_CHART):
        charts["verdicts"] = VERDICT_CHART
    if chapter_seconds_chart(card["chapters"], run_dir / SECONDS_CHART):
        charts["seconds"] = SECONDS_CHART
    md, js = run_dir / "report.md", run_dir / "report.json"
    md.write_text(render_markdown(card, charts))
    js.write_text(json.dumps(card, indent=2, default=str))
    return md, js


def _cmd_report(args: argparse.Namespace) -> int:
    md, js = write_report(args.run_dir)
    print(md.read_text() if args.print else f"wrote {md} and {js}")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write the report card of a run folder")
    p.add_argument("run_dir", help="a run folder made by `smolbook run`")
    p.add_argument("--print", action="store_true", help="print the Markdown report card")
    p.set_defaults(func=_cmd_report)
