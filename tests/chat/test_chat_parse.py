"""Reading completions: reasoning vs answer, tool calls in both styles, clear error values, round trips."""
from __future__ import annotations

import json
import keyword

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smolbook.chat import (
    CallError,
    ToolCall,
    parse_completion,
    parse_tool_calls,
    render_python_call,
    render_xml_call,
)
from smolbook.errors import SmolbookError

WEATHER = ToolCall("get_weather", {"city": "Paris", "days": 3})


# ── reasoning and answer ──────────────────────────────────────────────────────────────────────

def test_think_block_splits_reasoning_from_answer():
    c = parse_completion("<think>\nAdd them: 2+2=4.\n</think>\nThe answer is 4.<|im_end|>")
    assert (c.reasoning, c.answer, c.tool_calls, c.error) == ("Add them: 2+2=4.", "The answer is 4.", [], None)


def test_no_think_completion_has_no_reasoning():
    c = parse_completion("Paris is the capital.")
    assert (c.reasoning, c.answer) == (None, "Paris is the capital.")


def test_empty_think_block_from_no_think_mode():
    c = parse_completion("<think>\n\n</think>\nParis.")
    assert (c.reasoning, c.answer) == ("", "Paris.")


def test_closing_tag_only_when_think_was_in_the_prompt():
    c = parse_completion("Let me see... 6*7=42.\n</think>\n42")
    assert (c.reasoning, c.answer) == ("Let me see... 6*7=42.", "42")


def test_unclosed_think_block_is_an_error_value():
    c = parse_completion("<think>\nI keep thinking and never")
    assert c.answer == "" and c.reasoning == "I keep thinking and never"
    assert "unclosed <think>" in c.error


def test_calls_inside_reasoning_are_not_calls():
    text = f"<think>\nMaybe {render_xml_call(ToolCall('search', {}))}? No.\n</think>\n{render_python_call(WEATHER)}"
    assert parse_completion(text).tool_calls == [WEATHER]


# ── tool calls ────────────────────────────────────────────────────────────────────────────────

def test_xml_call_as_the_template_instructs():
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}\n</tool_call>'
    assert parse_tool_calls(text) == [WEATHER]


def test_python_call_and_dotted_names():
    assert parse_tool_calls("<code>get_weather(city='Paris', days=3)</code>") == [WEATHER]
    assert parse_tool_calls("<code>web.search(q=\"x\", k=-2, opts={'a': (1, 2.5)})</code>") == [
        ToolCall("web.search", {"q": "x", "k": -2, "opts": {"a": [1, 2.5]}})]


def test_several_calls_in_order_both_styles():
    text = (f"First {render_xml_call(ToolCall('a', {'x': 1}))} then <code>b(y=None)\nc(z=True)</code> and "
            f"{render_xml_call(ToolCall('d', {}))}")
    assert parse_tool_calls(text) == [ToolCall("a", {"x": 1}), ToolCall("b", {"y": None}),
                                      ToolCall("c", {"z": True}), ToolCall("d", {})]


@pytest.mark.parametrize("text, style, says", [
    ("<tool_call>{'name': 'f'}</tool_call>", "xml", "bad JSON"),
    ("<tool_call>[1, 2]</tool_call>", "xml", "JSON list"),
    ('<tool_call>{"arguments": {}}</tool_call>', "xml", "no \"name\""),
    ('<tool_call>{"name": "f"}</tool_call>', "xml", "no \"arguments\""),
    ('<tool_call>{"name": "f", "arguments": [1]}</tool_call>', "xml", "not an object"),
    ('<tool_call>{"name": "f", "arguments": {}}', "xml", "unclosed <tool_call>"),
    ("</tool_call>", "xml", "without an opening"),
    ("<code>f(x=</code>", "python", "syntax error"),
    ("<code>x = f(a=1)</code>", "python", "Assign"),
    ("<code>1 + 1</code>", "python", "an expression"),
    ("<code>f(1)</code>", "python", "positional"),
    ("<code>f(**kw)</code>", "python", "unpacks"),
    ("<code>f(x=y)</code>", "python", "not a literal"),
    ("<code>f(x=__import__('os').system('echo pwned'))</code>", "python", "not a literal"),
    ("<code>f(x={1, 2})</code>", "python", "set is not a JSON value"),
    ("<code>f(x={1: 2})</code>", "python", "keys must be strings"),
    ("<code>f(x=1)()</code>", "python", "not a function name"),
    ("<code>   </code>", "python", "empty <code>"),
    ("<code>f(x=1)", "python", "unclosed <code>"),
])
def test_malformed_calls_come_back_as_error_values(text, style, says):
    (result,) = parse_tool_calls(text)
    assert isinstance(result, CallError) and result.style == style
    assert says in result.message, result.message


def test_good_calls_survive_beside_bad_ones():
    text = f"<tool_call>oops</tool_call>{render_xml_call(WEATHER)}<code>g(1)</code>{render_python_call(WEATHER)}"
    kinds = [type(r).__name__ for r in parse_tool_calls(text)]
    assert kinds == ["CallError", "ToolCall", "CallError", "ToolCall"]


junk = st.lists(st.sampled_from(["<tool_call>", "</tool_call>", "<code>", "</code>", "<think>", "</think>",
                                 "<|im_end|>", "{", "}", '"name"', ":", "f(", ")", "x=", "1", "'a'", "\n", " ",
                                 "**", "[", "]", "lambda", "=", "\x00", "(" * 50]), max_size=30).map("".join)


@settings(max_examples=200, deadline=None)
@given(text=junk | st.text(max_size=200))
def test_parsing_never_raises(text):
    completion = parse_completion(text)
    assert all(isinstance(c, (ToolCall, CallError)) for c in completion.tool_calls)
    assert all(isinstance(c, (ToolCall, CallError)) for c in parse_tool_calls(text))


# ── round trips ───────────────────────────────────────────────────────────────────────────────

identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(lambda s: not keyword.iskeyword(s))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
calls = st.builds(ToolCall, name=st.lists(identifiers, min_size=1, max_size=2).map(".".join),
                  arguments=st.dictionaries(identifiers, json_values, max_size=4))


def same(a: ToolCall, b) -> bool:
    # json.dumps tells True from 1 and 1.0 from 1, which dict equality does not
    return isinstance(b, ToolCall) and a.name == b.name and json.dumps(a.arguments) == json.dumps(b.arguments)


@settings(max_examples=150, deadline=None)
@given(call=calls)
def test_render_then_parse_gives_back_the_call(call):
    for render in (render_xml_call, render_python_call):
        try:
            text = render(call)
        except SmolbookError as e:  # only an argument that holds the block's own closing tag is refused
            assert "would end" in str(e)
            continue
        (parsed,) = parse_tool_calls(text)
        assert same(call, parsed), (text, parsed)
        (in_answer,) = parse_completion(f"<think>\nplan\n</think>\n{text}<|im_end|>").tool_calls
        assert same(call, in_answer)


@pytest.mark.parametrize("render, call, says", [
    (render_python_call, ToolCall("not a name", {}), "not a Python function name"),
    (render_python_call, ToolCall("f", {"class": 1}), "keyword-argument name"),
    (render_python_call, ToolCall("f", {"x": "</code>"}), "would end"),
    (render_xml_call, ToolCall("f", {"x": "</tool_call>"}), "would end"),
    (render_xml_call, ToolCall("f", {"x": float("nan")}), "finite"),
    (render_xml_call, ToolCall("f", {"x": {1, 2}}), "JSON values"),
])
def test_render_refuses_what_cannot_round_trip(render, call, says):
    with pytest.raises(SmolbookError, match=says):
        render(call)
