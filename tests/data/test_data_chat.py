"""The offline conversations: every kind renders through the template, held-out splits share nothing with
training, and malformed conversations get clear errors."""
from __future__ import annotations

import json
import re

import pytest

from smolbook.chat import ToolCall, parse_completion
from smolbook.data.chat import KINDS, ChatSizes, build_chat_data, chat_dataset, chat_sizes, check_conversation, render_row
from smolbook.data.chat_tools import run_tool
from smolbook.data.corpus import generate_corpus
from smolbook.data.problems import Arithmetic
from smolbook.data.programs import run_program, training_programs
from smolbook.errors import SmolbookError
from smolbook.evaluate.ifeval import ifeval_check
from smolbook.evaluate.language import detect_language


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(40, 8, seed=0)


def test_sizes_per_scale():
    assert chat_sizes("smoke").train_per_kind == 20 and chat_sizes("smoke").heldout_per_kind == 8
    assert chat_sizes("tiny").train_per_kind == 750 and chat_sizes("tiny").heldout_per_kind == 100


def test_every_kind_in_both_modes_and_both_splits(chat):
    assert set(chat.train) == set(chat.heldout) == set(KINDS)
    for split, n in ((chat.train, chat.sizes.train_per_kind), (chat.heldout, chat.sizes.heldout_per_kind)):
        for kind in KINDS:
            assert len(split[kind]) == n
            assert set(split[kind]["mode"]) == {"think", "no_think"}, kind


def test_rows_render_with_the_template_and_modes_hold(chat):
    for kind in KINDS:
        for row in chat.train[kind].select(range(4)):
            text = render_row(row)
            think = row["mode"] == "think"
            assert f"Reasoning Mode: /{'think' if think else 'no_think'}" in text or "/system_override" in \
                row["messages"][0]["content"]
            for m in row["messages"]:
                if m["role"] == "assistant":
                    c = parse_completion(m["content"])
                    assert c.error is None and c.answer
                    assert bool(c.reasoning) == think, (kind, m["content"])
            if kind.startswith("tools"):
                assert ("<tool_call>" in text) == (kind == "tools_xml") and ("<code>" in text) == (kind == "tools_python")


def test_answers_are_right(chat, corpus):
    world = corpus.world
    for row in chat.train["code"]:
        code = row["messages"][0]["content"].split("```python\n")[1].split("```")[0]
        assert run_program(code).rstrip("\n") == row["answer"]
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
    for row in chat.train["math"]:
        steps = re.findall(r"(\d+) ([-+*]) (\d+) = (\d+)", row["solution_reasoning"])
        assert steps and all(ops[op](int(a), int(b)) == int(r) for a, op, b, r in steps)
        assert steps[-1][3] == row["answer"] and row["solution_answer"] == f"The answer is {row['answer']}."
    people = {p.name: p for p in world.people + world.heldout_people}
    for row in chat.train["facts"]:
        person = people[row["entities"][0].split(":", 1)[1]]
        assert person.name in row["messages"][0]["content"]
    for row in chat.train["tools_xml"]:
        call = json.loads(row["expected_call"])
        assert row["messages"][2]["content"] == run_tool(world, ToolCall(call["name"], call["arguments"]))
        assert row["answer"] in row["messages"][3]["content"]


def test_multiturn_refers_back(chat):
    row = next(r for r in chat.train["multiturn"] if len(r["messages"]) >= 4)
    assert row["messages"][2]["content"] in ("When was that city founded?", "And which country is it in?",
                                             "What did they work as?")
    assert row["answer"] not in row["messages"][2]["content"]


def test_multilingual_rows_are_in_their_language(chat):
    langs = set()
    for row in chat.train["multilingual"]:
        langs.add(row["lang"])
        assert detect_language(row["messages"][0]["content"]) == row["lang"]
        assert detect_language(row["solution_answer"]) == row["lang"]
    assert langs <= {"fr", "es", "de", "it", "pt"} and len(langs) >= 3


def test_ifeval_responses_follow_their_instructions(chat):
    seen = set()
    for split in (chat.train, chat.heldout):
        for row in split["ifeval"]:
            spec = json.loads(row["instructions"])
            for iid, kw in zip(spec["instruction_id_list"], spec["kwargs"]):
                seen.add(iid)
                assert ifeval_check(iid, kw, row["solution_answer"]), (iid, kw, row["solution_answer"])
    assert len(seen) >= 6


def test_system_flags_decide_the_mode(chat):
    for row in chat.train["system"]:
        system = row["messages"][0]["content"]
        if "/no_think" in system:
            assert row["mode"] == "no_think" and row["chat_template_kwargs"]["enable_thinking"] is True
        elif "/think" in system:
            assert row["mode"] == "think" and row["chat_template_kwargs"]["enable_thinking"] is False
        else:
            assert "/system_override" in system


def test_heldout_shares_no_entity_with_training(chat, corpus):
    for kind in KINDS:
        train = {e for es in chat.train[kind]["entities"] for e in es}
        held = {e for es in chat.heldout[kind]["entities"] for e in es}
        assert held and not train & held, kind
    heldout_people = {p.name for p in corpus.world.heldout_people}
    assert {e.split(":", 1)[1] for e in chat.heldout["facts"]["entities"][0]} <= heldout_people
    ar = Arithmetic(0)
    for kind, want in (("math", True), ("tools_xml", True)):
        for split, heldout in ((chat.train, False), (chat.heldout, True)):
            for es in split[kind]["entities"]:
                for e in es:
                    if e.startswith("triple:"):
                        a, op, b = re.match(r"triple:(\d+)([-+*])(\d+)", e).groups()
                        assert ar.is_heldout(int(a), op, int(b)) == heldout
    corpus_programs = training_programs(corpus.train["code"] + corpus.valid["code"])
    assert not {e[len("program:"):] for es in chat.heldout["code"]["entities"] for e in es} & corpus_programs


def test_heldout_stays_disjoint_at_larger_sizes(corpus):
    # Small pools (a dozen words for string programs, a few cities) collide quickly if a split leaks.
    big = build_chat_data("smoke", seed=0, corpus=corpus, sizes=ChatSizes(300, 100))
    for kind in KINDS:
        train = {e for es in big.train[kind]["entities"] for e in es}
        held = {e for es in big.heldout[kind]["entities"] for e in es}
        assert not train & held, (kind, sorted(train & held)[:3])


def test_unknown_kind_is_a_clear_error(corpus):
    import random

    from smolbook.data.chat import generate_rows, split_sides

    with pytest.raises(SmolbookError, match="unknown conversation kind 'poetry'"):
        generate_rows("poetry", 2, split_sides(corpus, 0)["train"], corpus, random.Random(0))


def test_same_seed_same_data_other_seed_other_data(corpus):
    a = build_chat_data("smoke", seed=0, corpus=corpus)
    b = build_chat_data("smoke", seed=0, corpus=corpus)
    c = build_chat_data("smoke", seed=1, corpus=corpus)
    assert a.train["facts"]["messages"] == b.train["facts"]["messages"] != c.train["facts"]["messages"]


@pytest.mark.parametrize("messages, match", [
    ([{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}], "role 'bot'"),
    ([{"role": "user", "content": "hi"}, {"role": "tool", "content": "{}"}, {"role": "assistant", "content": "ok"}],
     "tool result without a tool call"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}], "empty assistant turn"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "<think>\n\n</think>\n"}], "empty assistant"),
    ([{"role": "user", "content": "hi"}], "ends with the assistant"),
    ([], "non-empty"),
])
def test_malformed_conversations_get_clear_errors(messages, match):
    with pytest.raises(SmolbookError, match=match):
        check_conversation(messages)


def test_a_bad_row_is_named_not_dropped():
    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]},
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]}]
    with pytest.raises(SmolbookError, match="row 1"):
        chat_dataset(rows)
    assert len(chat_dataset(rows[:1])) == 1


def test_unknown_tool_gets_an_error_value(corpus):
    out = json.loads(run_tool(corpus.world, ToolCall("get_weather", {"city": "x"})))
    assert "unknown tool 'get_weather'" in out["error"]
    assert "error" in json.loads(run_tool(corpus.world, ToolCall("get_birthplace", {"name": "x"})))
    assert "error" in json.loads(run_tool(corpus.world, ToolCall("get_birthplace", {"person": "Nobody Here"})))
    assert json.loads(run_tool(corpus.world, ToolCall("calculate", {"a": 3, "op": "*", "b": 4}))) == {"result": 12}


def test_chat_cards_are_up_to_date(chat):
    from pathlib import Path

    from smolbook.data.cards import CHAT_DIR, CHAT_KIND_INFO, render_chat_card, render_chat_overview

    folder = Path(__file__).resolve().parents[2] / "data_cards" / CHAT_DIR
    assert set(CHAT_KIND_INFO) == set(KINDS)
    assert (folder / "README.md").read_text() == render_chat_overview()
    for kind in KINDS:
        text = (folder / f"{kind}.md").read_text()
        assert text == render_chat_card(kind, chat.train[kind][0]), f"run `smolbook data cards` ({kind})"
        assert f"| tiny | {chat_sizes('tiny').train_per_kind} | {chat_sizes('tiny').heldout_per_kind} |" in text
