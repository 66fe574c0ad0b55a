"""The report card of a run: every chapter's headline numbers and claim verdicts (:mod:`~smolbook.report.card`:
``report.md`` + ``report.json``) and the figures that show them (:mod:`~smolbook.report.charts`: the verdict
chart, time per chapter)."""
from __future__ import annotations

from smolbook.report.card import STATUS_MARK, collect, format_value, register_cli, render_markdown, write_report
from smolbook.report.charts import (chapter_seconds_chart, effect_summary, empirical_verdicts, verdict_chart,
                                    verdict_chart_rows)

__all__ = ["STATUS_MARK", "chapter_seconds_chart", "collect", "effect_summary", "empirical_verdicts",
           "format_value", "register_cli", "render_markdown", "verdict_chart", "verdict_chart_rows", "write_report"]
