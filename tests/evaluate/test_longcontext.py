"""Long documents in the corpus, and the long-context report: prompts, controls and the report's summaries."""
from __future__ import annotations

import math

import pytest

from smolbook.data import longdocs
from smolbook.data.corpus import generate_corpus
from smolbook.errors import SmolbookError
from smolbook.evaluate.longcontext import ClozeItems, long_context_report


def test_long_documents_restate_and_quote_what_came_far_earlier():
    c = generate_corpus(40, 8, seed=0)
    for domain in longdocs.LONG_DOMAINS:
        long = [d for d in c.train[domain] if d["kind"] == "long"]
        assert len(long) == longdocs.n_long(40) == 1
        text = long[0]["text"]
        assert len(text) >= longdocs.LONG_DOC_CHARS[0]
        sections = text.split("\n\n## ")
        assert len(sections) > 10
    web = next(d for d in c.train["web"] if d["kind"] == "long")["text"]
    recalls = [line for line in web.split("\n\n") if line.startswith(("As noted in section", "Section ", "Recall from"))]
    assert recalls
    # every call back names a section at least three sections earlier, and what it restates is in that section
    for line in recalls:
        i = int(line.split("section ", 1)[1].split(",")[0].split(" ")[0].rstrip(":")) if "section " in line \
            else int(line.split(" ")[1])
        said = line.split(": ", 1)[1].strip('"') if ": " in line else line.split(", ", 1)[1]
        head, rest = web.split(f"## {i}\n\n", 1)
        assert said in rest.split("\n\n## ", 1)[0], (i, said)
        assert web.index(line) > web.index(f"## {i + 3}\n\n")
    # the ordinary documents are what they were: long ones are drawn from their own random stream
    before = generate_corpus(40, 8, seed=0)
    assert [d["text"] for d in before.train["web"] if d["kind"] != "long"] == \
        [d["text"] for d in c.train["web"] if d["kind"] != "long"]


def test_cloze_prompts_put_the_question_at_the_same_place_with_and_without_the_fact(smoke_data):
    items = ClozeItems(smoke_data, n=8)
    assert items.prompts(32) is None  # too short for a biography and its question
    prompts, controls, dist = items.prompts(300, seed=1)
    for i, (p, c) in enumerate(zip(prompts, controls)):
        assert len(p) == len(c) == 300
        q = items.queries[i]
        assert p[-len(q):] == q and c[-len(q):] == q
        assert p[:len(items.docs[i])] == items.docs[i] and c[:len(items.docs[i])] != items.docs[i]
        assert dist[i] == 300 - len(q) - len(items.docs[i])
        slot = max(len(d) for d in items.docs)
        assert p[slot:] == c[slot:]  # the same filler after the biography slot
    # the filler never names the person asked about
    text = smoke_data.tokenizer.decode(prompts[0][len(items.docs[0]):-len(items.queries[0])])
    assert items.names[0] not in text
    assert items.prompts(300, seed=1) == (prompts, controls, dist)


def test_report_has_every_probe_with_its_control(smoke_data):
    from smolbook.model import build_model, smollm3_config

    model = build_model(smollm3_config("smoke", tokenizer=smoke_data.tokenizer), 0)
    rep = long_context_report(model, smoke_data, "smoke", lengths=[64, 256], n=8)
    assert [r["length"] for r in rep["cloze"]] == [256]  # 64 cannot hold a biography: left out
    row = rep["cloze"][0]
    assert row["n"] == 8 and {"accuracy", "control_accuracy", "gain", "distance"} <= set(row)
    assert rep["cloze_beyond"] == row["accuracy"] and math.isnan(rep["cloze_within"])
    assert len(rep["loss_by_position"]["loss"]) == 32 and rep["loss_beyond"] > 0
    assert {"copy_beyond", "ruler_beyond", "ruler_control_beyond", "ruler_moved"} <= set(rep)
    assert model.training  # the mode it came in with


def test_plot_report_draws_the_panels_asked_for_over_the_lengths_reports_share():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from smolbook.evaluate.longcontext import plot_report

    def rep(lengths, control):
        nan = float("nan")
        return {"train_length": 64, "loss_by_position": {"position": [8.0, 24.0], "loss": [3.0, 2.0]},
                "cloze": [{"length": n, "accuracy": n / 1000, "control_accuracy": 0.25 if control else nan,
                           "gain": 0.1} for n in lengths]}

    # a full report beside verdict probes at fewer lengths, without their control: the shared lengths, averaged
    fig, axes = plt.subplots(1, 2)
    plot_report({"a": [rep([64, 128, 256], False), rep([128, 256], False)]}, axes, panels=("cloze", "loss"))
    lines = axes[0].get_lines()
    drawn = [ln for ln in lines if ln.get_label() == "a"]
    assert len(drawn) == 1 and list(drawn[0].get_xdata()) == [2.0, 4.0]
    assert list(drawn[0].get_ydata()) == pytest.approx([0.128, 0.256])
    assert not any(ln.get_linestyle() == ":" for ln in lines)  # no control line where none was run
    assert list(axes[1].get_lines()[0].get_ydata()) == [3.0, 2.0]
    plt.close(fig)
    fig, axes = plt.subplots(1, 3)
    plot_report({"b": [rep([64, 128], True)]}, axes)
    assert any(ln.get_linestyle() == ":" for ln in axes[0].get_lines())
    plt.close(fig)
    with pytest.raises(SmolbookError, match="unknown panel"):
        plot_report({"b": [rep([64], True)]}, panels=("cloze", "ruler"))


def test_copying_tells_a_model_that_copies_from_one_that_does_not(smoke_data):
    from smolbook.evaluate.longcontext import copying
    from smolbook.model import build_model, smollm3_config
    from tests.evaluate.test_ruler import InductionOracle

    untrained = build_model(smollm3_config("smoke", tokenizer=smoke_data.tokenizer), 0)
    cold = copying(untrained, smoke_data, "smoke", n=4)
    hot = copying(InductionOracle(len(smoke_data.tokenizer)), smoke_data, "smoke", n=4)
    assert cold["items"] == hot["items"] == 4 and cold["passage"] == 8   # an eighth of smoke's 64, at least 8
    assert hot["repeat_accuracy"] > 0.8 > hot["first_accuracy"]
    assert cold["repeat_accuracy"] < 0.5 and untrained.training
