"""The verdict chart draws what the rule decided: effects and intervals in margins, the threshold of each claim's
direction, probes at chance marked; the report card shows it and the time per chapter."""
from __future__ import annotations

import dataclasses

import pytest

from smolbook import Chapter
from smolbook.claims import Check, Claim, check_record, decide
from smolbook.report import effect_summary, verdict_chart, verdict_chart_rows, write_report

LOSS = Claim("B keeps the loss", "src", "validation loss (nats/token)", "no_worse", margin=0.02)
CLOZE = Claim("B retrieves better", "src", "cloze accuracy", "better", margin=0.05, higher_is_better=True, chance=0.25,
              accuracy=True)


def _records() -> list[dict]:
    keeps = decide(LOSS, [3.00, 3.10, 3.20], [3.01, 3.10, 3.22]).record("tiny")
    better = decide(CLOZE, [0.50, 0.55, 0.52], [0.70, 0.72, 0.69], items=64).record("tiny")
    chance = decide(CLOZE, [0.25, 0.26, 0.24], [0.27, 0.25, 0.26], items=64).record("tiny")
    check = check_record(Check("the layer pattern"), "matches", True, "tiny")
    return [dict(r, chapter=c) for r, c in ((keeps, "03_a"), (better, "03_a"), (chance, "08_b"), (check, "03_a"))]


def test_rows_are_in_margins_with_each_directions_threshold():
    keeps, better, chance = verdict_chart_rows(_records())  # the implementation check is not charted
    assert keeps["threshold"] == -1.0 and better["threshold"] == 1.0
    assert keeps["x"] == pytest.approx(-0.01 / 0.02)  # 0.01 nats worse on average, half a margin
    assert better["x"] == pytest.approx(0.18 / 0.05) and better["lo"] == pytest.approx(better["x"] - 0.0292 / 0.05, abs=0.01)
    assert better["status"] == "holds" and (better["seeds"], better["items"]) == (3, 64)
    # a probe at chance: marked, and drawn without an interval (the rule stopped before one)
    assert chance["at_chance"] and chance["lo"] is None and chance["status"] == "inconclusive"
    assert not better["at_chance"]


def test_effect_summary_reads_effect_interval_and_margin():
    keeps, better, chance = [r for r in _records() if r["kind"] == "empirical"]
    assert effect_summary(better) == "+0.18 [+0.151, +0.209] vs margin 0.05"
    assert effect_summary(chance).endswith("(no interval) vs margin 0.05")


def test_chart_is_drawn_or_nothing(tmp_path):
    png = verdict_chart(_records(), tmp_path / "v.png", title="claims")
    assert png is not None and png.read_bytes()[:4] == b"\x89PNG"
    assert verdict_chart([r for r in _records() if r["kind"] == "implementation"], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_report_card_shows_the_chart_and_time_per_chapter(tmp_path):
    book = Chapter("04_test", "smoke", 0, tmp_path)
    book.judge(CLOZE, [0.50, 0.55, 0.52], [0.70, 0.72, 0.69], baseline_name="A", recipe_name="B", items=64)
    book.judge(dataclasses.replace(CLOZE, claim="B stays at chance"), [0.25, 0.26, 0.24],
               [0.27, 0.25, 0.26], items=64)
    (tmp_path / "manifest.json").write_text('{"scale": "smoke", "notebooks": {"04_test": {"status": "ok", '
                                            '"seconds": 12.5}}}')
    md, _ = write_report(tmp_path)
    text = md.read_text()
    assert "![Every claim's effect and 90% interval against its margin](figures/report_verdicts.png)" in text
    assert "![Seconds of notebook time per chapter](figures/report_seconds.png)" in text
    assert (tmp_path / "figures" / "report_verdicts.png").is_file() and (tmp_path / "figures" / "report_seconds.png").is_file()
    assert "| +0.18 [+0.151, +0.209] vs margin 0.05 | 3 | 64 | 0.25 | holds |" in text
    assert "inconclusive (at chance) |" in text
