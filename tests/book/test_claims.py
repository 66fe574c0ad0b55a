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
                   chance=0.25, accuracy=True)


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
    v = decide(ACC_BETTER, [0.25, 0.26, 0.24], [0.27, 0.27, 0.26], items=100)  # both arms within chance + margin
    assert v.status == "inconclusive" and "chance" in v.reason
    v = decide(ACC_BETTER, [0.25, 0.26, 0.24], [0.60, 0.62, 0.58], items=100)
    assert v.status == "holds"
    assert decide(ACC_BETTER, [0.5, 0.6, 0.55], [0.5, 0.6, 0.55], at_chance=True, items=100).status == "inconclusive"
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


# -- a probe at chance, a probe that did not vary, and the items a probe is judged on --------------------------------

def test_a_probe_at_chance_in_both_arms_cannot_decide_and_just_above_it_can():
    # chance 0.25 + margin 0.03 = 0.28: both arms' means at or below it
    v = decide(ACC_BETTER, [0.25, 0.26, 0.27], [0.27, 0.28, 0.29], baseline_name="A", recipe_name="B", items=64)
    assert v.status == "inconclusive" and v.interval is None
    assert "stays at chance" in v.reason and "chance 0.25" in v.reason
    assert "A mean 0.2600" in v.reason and "B mean 0.2800" in v.reason
    # the recipe arm just above chance + margin, better by more than the margin on every seed: it decides
    v = decide(ACC_BETTER, [0.24, 0.25, 0.26], [0.33, 0.35, 0.34], baseline_name="A", recipe_name="B", items=64)
    assert v.status == "holds" and v.interval is not None
    # and the same values can refute it: just above chance, no better than the baseline
    v = decide(ACC_BETTER, [0.30, 0.31, 0.32], [0.31, 0.30, 0.32], items=64)
    assert v.status == "differs" and "did not help" in v.reason


def test_a_probe_that_did_not_vary_is_inconclusive_before_any_interval():
    # the bug this rule fixes: 1/3 in every seed of both arms made a zero-width interval and "differs"
    v = decide(ACC_BETTER, [1 / 3] * 3, [1 / 3] * 3, baseline_name="A", recipe_name="B", items=12)
    assert v.status == "inconclusive" and v.interval is None
    assert "the probe did not vary" in v.reason and "A 0.3333 and B 0.3333 in all 3 seeds" in v.reason
    # no variance in the recipe arm only
    v = decide(ACC_BETTER, [0.30, 0.35, 0.40], [0.50] * 3, baseline_name="A", recipe_name="B", items=12)
    assert v.status == "inconclusive" and v.interval is None
    assert v.reason == "the probe did not vary: B 0.5000 in all 3 seeds"
    # no variance in the baseline arm only (e.g. one reference model repeated per seed)
    v = decide(ACC_BETTER, [0.40] * 3, [0.55, 0.60, 0.65], baseline_name="A", recipe_name="B", items=12)
    assert v.status == "inconclusive" and v.reason == "the probe did not vary: A 0.4000 in all 3 seeds"
    # near-exact: a float round-off apart is still "did not vary"
    v = decide(ACC_BETTER, [0.30, 0.35, 0.40], [0.5, 0.5 + 1e-15, 0.5], items=12)
    assert v.status == "inconclusive" and "did not vary" in v.reason
    # the same means, with seeds that vary in both arms: it decides
    v = decide(ACC_BETTER, [0.39, 0.40, 0.41], [0.54, 0.56, 0.55], items=12)
    assert v.status == "holds" and v.effect == pytest.approx(0.15)
    v = decide(ACC_BETTER, [0.39, 0.40, 0.41], [0.40, 0.39, 0.41], items=12)
    assert v.status == "differs"
    # chance is tested first, and a loss (no chance level) is not a probe: one fixed reference arm still decides,
    # but a loss that did not vary in either arm does not
    assert "stays at chance" in decide(ACC_BETTER, [0.25] * 3, [0.25] * 3, items=12).reason
    assert decide(LOSS_BETTER, [3.0] * 3, [2.9, 2.91, 2.89]).status == "holds"
    v = decide(LOSS_BETTER, [3.0] * 3, [2.9] * 3, baseline_name="A", recipe_name="B")
    assert v.status == "inconclusive" and v.reason == "the measurement did not vary: A 3.0000 and B 2.9000 in all 3 seeds"


def test_an_accuracy_claim_declares_its_chance_level():
    with pytest.raises(SmolbookError, match=r"needs its chance level: add chance="):
        Claim("B retrieves better", "src", "cloze accuracy", "better", 0.03, higher_is_better=True, accuracy=True)
    with pytest.raises(SmolbookError, match=r"\[0, 1\]"):
        Claim("x", "src", "cloze accuracy", "better", 0.03, higher_is_better=True, chance=4.0, accuracy=True)
    with pytest.raises(SmolbookError, match="higher_is_better=True"):
        Claim("x", "src", "cloze accuracy", "better", 0.03, chance=0.25, accuracy=True)
    ok = Claim("x", "src", "exact match", "better", 0.02, higher_is_better=True, chance=0.0, accuracy=True)
    assert ok.probe and ok.chance == 0.0
    assert not LOSS_BETTER.probe and not LOSS_BETTER.accuracy  # a loss has no chance level
    # positional construction of the fields before ``accuracy`` is unchanged (chapter 12 rebuilds claims this way)
    again = Claim(ACC_BETTER.claim, ACC_BETTER.source, ACC_BETTER.metric, ACC_BETTER.direction, ACC_BETTER.margin,
                  ACC_BETTER.higher_is_better, ACC_BETTER.chance)
    assert again.chance == 0.25 and again.kind == "empirical"
    with pytest.raises(SmolbookError, match=r"in \[0, 1\], got 1.5"):
        decide(ACC_BETTER, [0.3, 0.4, 0.5], [1.5, 0.6, 0.7], items=10)


def test_a_probe_is_judged_on_a_stated_number_of_items(tmp_path, capsys):
    with pytest.raises(SmolbookError, match=r"'B retrieves better'.*pass items="):
        decide(ACC_BETTER, [0.3, 0.4, 0.5], [0.6, 0.7, 0.8])
    book = Chapter("04_test", "smoke", 0, tmp_path)
    with pytest.raises(SmolbookError, match=r"'B retrieves better'.*pass items=.*held-out items"):
        book.judge(ACC_BETTER, [0.3, 0.4, 0.5], [0.6, 0.7, 0.8], baseline_name="A", recipe_name="B")
    with pytest.raises(SmolbookError, match="items must be a whole number"):
        decide(ACC_BETTER, [0.3, 0.4, 0.5], [0.6, 0.7, 0.8], items=-1)
    v = book.judge(ACC_BETTER, [0.30, 0.31, 0.32], [0.60, 0.62, 0.61], baseline_name="A", recipe_name="B",
                   items=128)
    assert v.status == "holds" and "on 128 items" in v.measured() and "chance 0.25" in v.measured()
    book.judge(LOSS_BETTER, [3.0, 3.1, 3.2], [2.9, 3.0, 3.1], baseline_name="A", recipe_name="B")  # items optional
    rec = {r["claim"]: r for r in json.loads((tmp_path / "records" / "04_test.json").read_text())["verdicts"]}
    assert rec["B retrieves better"]["items"] == 128 and rec["B retrieves better"]["chance"] == 0.25
    assert rec["B lowers the loss"]["items"] is None and rec["B lowers the loss"]["chance"] is None
    assert "on 128 items" in rec["B retrieves better"]["measured"]
    assert "the probe did not vary" in RULE and "within the margin of chance in both arms" in RULE
    # a probe that scored nothing, or a value that is not a number, cannot decide
    assert decide(ACC_BETTER, [0.3, 0.4, 0.5], [0.6, 0.7, 0.8], items=0).status == "inconclusive"
    v = decide(ACC_BETTER, [0.3, 0.4, float("nan")], [0.6, 0.7, 0.8], items=10)
    assert v.status == "inconclusive" and "not a finite number" in v.reason and v.effect is None


def test_report_card_rows_show_items_and_chance(tmp_path, capsys):
    book = Chapter("04_test", "smoke", 0, tmp_path)
    book.judge(ACC_BETTER, [0.30, 0.31, 0.32], [0.60, 0.62, 0.61], baseline_name="A", recipe_name="B", items=1024)
    book.judge(LOSS_BETTER, [3.0, 3.1, 3.2], [2.9, 3.0, 3.1], baseline_name="A", recipe_name="B")
    md = render_markdown(collect(tmp_path))
    header = next(line for line in md.splitlines() if line.startswith("| chapter | claim |"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert "items" in cols and "chance" in cols
    rows = {r.split("|")[2].strip(): [c.strip() for c in r.strip("|").split("|")]
            for r in md.splitlines() if r.startswith("| 04_test |")}
    probe, loss = rows["B retrieves better"], rows["B lowers the loss"]
    assert probe[cols.index("items")] == "1,024" and probe[cols.index("chance")] == "0.25"
    assert probe[cols.index("seeds")] == "3" and probe[cols.index("verdict")] == "holds"
    assert loss[cols.index("items")] == "" and loss[cols.index("chance")] == ""


def test_a_single_reference_checkpoint_is_compared_with_every_seed_of_the_recipe_arm():
    # The model before SFT is one checkpoint: its one value stands against each seed of the recipe arm, and only the
    # recipe arm's seeds must vary.
    v = decide(ACC_BETTER, 0.30, [0.55, 0.60, 0.58], items=64, baseline_name="before", recipe_name="after")
    assert v.status == "holds" and v.values["before"] == [0.30] * 3 and v.record("tiny")["reference"] == "before"
    assert "one reference checkpoint" in v.measured()
    flat = decide(ACC_BETTER, 0.30, [0.5, 0.5, 0.5], items=64)
    assert flat.status == "inconclusive" and "did not vary" in flat.reason and "recipe 0.5000" in flat.reason
    # the same numbers as a per-seed list: the baseline arm did not vary, so the probe cannot decide
    listed = decide(ACC_BETTER, [0.30] * 3, [0.55, 0.60, 0.58], items=64)
    assert listed.status == "inconclusive" and "baseline 0.3000" in listed.reason
    # a loss against one reference model decides on the recipe arm's spread, and not without it
    assert decide(LOSS_BETTER, 3.0, [2.5, 2.6, 2.55]).status == "holds"
    assert "did not vary" in decide(LOSS_BETTER, 3.0, [2.5, 2.5, 2.5]).reason
    # either arm may be the reference (09's drop claim: the model before mid-training is the one checkpoint)
    before = decide(LOSS_BETTER, [3.0, 3.1, 2.9], 2.5, baseline_name="after", recipe_name="before")
    assert before.status == "holds" and before.reference == "before"
    with pytest.raises(SmolbookError, match="both arms are single values"):
        decide(LOSS_BETTER, 3.0, 2.5)


def test_a_probe_whose_arms_differ_by_the_same_amount_on_every_seed_cannot_decide():
    # Chapter 12 at tiny: APO and DPO changed no greedy answer, so both arms scored 0.056 / 0.056 / 0.083.
    em = Claim("APO is no worse than DPO", "src", "task score", "no_worse", margin=0.03, higher_is_better=True,
               chance=0.0, accuracy=True)
    tie = decide(em, [0.056, 0.056, 0.083], [0.056, 0.056, 0.083], items=72)
    assert tie.status == "inconclusive" and "differ by +0.0000 on every one" in tie.reason
    assert decide(em, [0.05, 0.06, 0.08], [0.06, 0.05, 0.09], items=72).status == "holds"
    # a loss (no chance level) with the same paired difference still follows the interval rule
    assert decide(LOSS_BETTER, [3.0, 3.1, 3.2], [2.9, 3.0, 3.1]).status == "holds"
