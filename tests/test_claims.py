"""The verdict rule on known numbers, its behaviour under a simulated null, and the report card's two tables."""
from __future__ import annotations

import json
import random

import pytest

from smolbook import Chapter
from smolbook.claims import RULE, Check, Claim, decide, t_quantile_95
from smolbook.errors import SmolbookError
from smolbook.report import collect, render_markdown

LOSS_NO_WORSE = Claim("B keeps the loss", "src", "validation loss (nats/token)", "no_worse", margin=0.02)
LOSS_BETTER = Claim("B lowers the loss", "src", "validation loss (nats/token)", "better", margin=0.02)
ACC_BETTER = Claim("B retrieves better", "src", "cloze accuracy", "better", margin=0.03, higher_is_better=True,
                   chance=0.25)


def test_t_quantiles_match_scipy_where_available():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 5, 10, 30):
        assert t_quantile_95(df) == pytest.approx(stats.t.ppf(0.95, df), abs=1e-3)
    with pytest.raises(SmolbookError):
        t_quantile_95(0)


def test_no_worse_is_symmetric_around_the_margin():
    # losses (lower is better): per-seed differences +0.001, -0.001, 0.000 -> interval well inside +-0.02
    v = decide(LOSS_NO_WORSE, [3.00, 3.10, 3.20], [2.999, 3.101, 3.20])
    assert v.status == "holds" and v.interval[0] > -0.02 and v.effect == pytest.approx(0.0, abs=1e-9)
    # the recipe arm is worse by 0.05 +- 0.001 on every seed: the interval lies below -margin
    v = decide(LOSS_NO_WORSE, [3.00, 3.10, 3.20], [3.05, 3.151, 3.249])
    assert v.status == "differs" and v.interval[1] < -0.02
    # worse by about the margin, noisy: inconclusive
    v = decide(LOSS_NO_WORSE, [3.00, 3.10, 3.20], [3.00, 3.14, 3.21])
    assert v.status == "inconclusive" and v.interval[0] < -0.02 < v.interval[1]


def test_better_can_hold_differ_or_be_inconclusive():
    assert decide(LOSS_BETTER, [3.0, 3.1, 3.2], [2.9, 3.0, 3.1]).status == "holds"  # better by 0.1 on every seed
    v = decide(LOSS_BETTER, [3.0, 3.1, 3.2], [3.0, 3.1, 3.2])  # identical: it did not help by the margin
    assert v.status == "differs" and "did not help" in v.reason
    assert decide(LOSS_BETTER, [3.0, 3.1, 3.2], [2.95, 3.12, 3.11]).status == "inconclusive"


def test_pairing_cancels_what_seeds_share():
    # seed 2 is worse for both arms by 0.3: paired differences are all exactly 0.1
    v = decide(LOSS_BETTER, [3.0, 3.0, 3.3], [2.9, 2.9, 3.2])
    assert v.status == "holds" and v.interval == pytest.approx((0.1, 0.1))


def null_statuses(rng: random.Random, noise: float, n: int = 2000) -> list[str]:
    """Verdicts of 'better' when both arms come from the same distribution (3 seeds)."""
    return [decide(LOSS_BETTER, [rng.gauss(3.0, noise) for _ in range(3)],
                   [rng.gauss(3.0, noise) for _ in range(3)]).status for _ in range(n)]


def test_under_a_true_null_better_rarely_holds_and_can_be_refuted():
    rng = random.Random(0)
    noisy = null_statuses(rng, noise=0.02)  # seed noise as large as the margin
    assert noisy.count("holds") / len(noisy) <= 0.05
    quiet = null_statuses(rng, noise=0.004)  # seeds that agree: the null is refuted ("did not help")
    assert quiet.count("holds") == 0 and quiet.count("differs") / len(quiet) > 0.8
    # with a margin of 0 the one-sided error rate is 5% by construction
    zero = Claim("B lowers the loss", "src", "loss", "better", margin=0.0)
    held0 = sum(decide(zero, [rng.gauss(0, 1) for _ in range(3)], [rng.gauss(0, 1) for _ in range(3)]).status == "holds"
                for _ in range(4000)) / 4000
    assert 0.03 < held0 < 0.07, held0


def test_inconclusive_cases():
    v = decide(LOSS_BETTER, [3.0, 3.1], [2.0, 2.1])
    assert v.status == "inconclusive" and "under-powered" in v.reason and v.interval is None
    v = decide(ACC_BETTER, [0.25, 0.26, 0.24], [0.27, 0.27, 0.26])  # both arms within chance + margin
    assert v.status == "inconclusive" and "chance" in v.reason
    v = decide(ACC_BETTER, [0.25, 0.26, 0.24], [0.60, 0.62, 0.58])
    assert v.status == "holds"
    assert decide(ACC_BETTER, [0.5, 0.6, 0.55], [0.5, 0.6, 0.55], at_chance=True).status == "inconclusive"
    with pytest.raises(SmolbookError, match="seed by seed"):
        decide(LOSS_BETTER, [3.0, 3.1, 3.2], [3.0])
    with pytest.raises(SmolbookError, match="direction"):
        Claim("x", "s", "m", "maybe", 0.1)
    with pytest.raises(SmolbookError, match="margin"):
        Claim("x", "s", "m", "better", -0.1)


def test_measured_line_names_arms_interval_and_margin():
    v = decide(LOSS_NO_WORSE, [3.00, 3.10, 3.20], [2.999, 3.101, 3.20], baseline_name="MHA", recipe_name="GQA")
    line = v.measured()
    assert line.startswith("validation loss (nats/token): GQA 3.1000") and "MHA 3.1000" in line
    assert "90% CI [" in line and "margin 0.02" in line and "3 seeds" in line


def test_report_card_keeps_checks_apart_from_evidence(tmp_path, capsys):
    book = Chapter("03_test", "smoke", 0, tmp_path)
    book.judge(LOSS_NO_WORSE, [3.00, 3.10, 3.20], [2.999, 3.101, 3.20], baseline_name="A", recipe_name="B")
    book.judge(LOSS_BETTER, [3.0, 3.1, 3.2], [3.0, 3.1, 3.2], baseline_name="A", recipe_name="B")
    book.check(Check("the layer pattern is 3 RoPE : 1 NoPE", "config"), "[1, 1, 1, 0]", True)
    book.verdict("an old-style verdict", "something", "inconclusive")
    out = capsys.readouterr().out
    assert out.count("The rule, fixed before the runs") == 1 and "[holds] B keeps the loss" in out
    rec = json.loads((tmp_path / "records" / "03_test.json").read_text())["verdicts"]
    assert [v["kind"] for v in rec] == ["empirical", "empirical", "implementation", "empirical"]
    first = rec[0]
    assert first["direction"] == "no_worse" and first["margin"] == 0.02 and first["n_seeds"] == 3
    assert len(first["interval"]) == 2 and first["values"] == {"A": [3.0, 3.1, 3.2], "B": [2.999, 3.101, 3.2]}
    assert first["rule"] == RULE
    card = collect(tmp_path)
    assert card["verdict_counts"] == {"holds": 1, "differs": 1, "inconclusive": 1}
    assert card["implementation_counts"] == {"holds": 1, "differs": 0}
    md = render_markdown(card)
    claims_part, checks_part = md.split("## Implementation checks")
    assert "B keeps the loss" in claims_part and "layer pattern" not in claims_part
    assert "layer pattern" in checks_part.split("## Chapters")[0] and "| pass |" in checks_part


def test_a_run_that_cannot_show_the_margin_is_under_powered():
    v = decide(LOSS_BETTER, [3.0, 3.1, 3.2], [2.9, 3.0, 3.1], max_effect=0.01)
    assert v.status == "inconclusive" and "under-powered" in v.reason and "0.01" in v.reason
    assert decide(LOSS_BETTER, [3.0, 3.1, 3.2], [2.9, 3.0, 3.1], max_effect=0.5).status == "holds"
