"""Reading what a SmolLM3 model writes: reasoning vs answer, and tool calls in both of its call styles.

A completion in /think mode looks like ``<think>...</think>answer``; tools are called either XML-style,
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``, or Python-style, ``<code>f(x=1)</code>``.
Both styles parse into one :class:`ToolCall`; a malformed call becomes a :class:`CallError` that says
what is wrong, so a parser fed model output never raises. Python calls are read with ``ast`` (never
``eval``): only keyword arguments whose values are literals are accepted.
"""
from __future__ import annotations

import ast
import json
import keyword
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from smolbook.errors import SmolbookError

Style = Literal["xml", "python"]
_TAGS = {"xml": ("<tool_call>", "</tool_call>"), "python": ("<code>", "</code>")}
_STOP = "<|im_end|>"


@dataclass(frozen=True)
class ToolCall:
    """One tool call in the form both call styles share: a function name and JSON-like arguments."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CallError:
    """A call the model tried to make but got wrong: which style, the raw text, and what is wrong."""

    style: Style
    text: str
    message: str

    def __str__(self) -> str:
        return f"{self.style} call error: {self.message}"


ParsedCall = Union[ToolCall, CallError]


@dataclass(frozen=True)
class Completion:
    """A completion split into its think block (``reasoning``, None when there is none) and its answer."""

    reasoning: str | None
    answer: str
    tool_calls: list[ParsedCall]
    error: str | None = None  # e.g. a think block that never closes


# ── rendering ──────────────────────────────────────────────────────────────────────────────

def _check_json_like(value: Any, where: str) -> None:
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SmolbookError(f"{where} is {value!r}; tool arguments must be finite numbers")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json_like(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SmolbookError(f"{where} has key {key!r}; object keys must be strings (JSON)")
            _check_json_like(item, f"{where}[{key!r}]")
        return
    raise SmolbookError(f"{where} is a {type(value).__name__}; tool arguments must be JSON values")


def _check_body(body: str, style: Style) -> str:
    closing = _TAGS[style][1]
    if closing in body:
        raise SmolbookError(f"the call contains {closing!r}, which would end the {style} block early")
    return body


def render_xml_call(call: ToolCall) -> str:
    """``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``, as the template tells the model to write."""
    _check_json_like(call.arguments, f"{call.name} arguments")
    body = json.dumps({"name": call.name, "arguments": call.arguments}, ensure_ascii=False)
    return f"<tool_call>\n{_check_body(body, 'xml')}\n</tool_call>"


def render_python_call(call: ToolCall) -> str:
    """``<code>name(key=value, ...)</code>`` with each value written as a Python literal."""
    if not all(part.isidentifier() and not keyword.iskeyword(part) for part in call.name.split(".")):
        raise SmolbookError(f"{call.name!r} is not a Python function name; Python-style calls need one")
    parts = []
    for key, value in call.arguments.items():
        if not (isinstance(key, str) and key.isidentifier() and not keyword.iskeyword(key)):
            raise SmolbookError(f"argument {key!r} of {call.name} is not a Python keyword-argument name")
        _check_json_like(value, f"{call.name} argument {key}")
        parts.append(f"{key}={value!r}")
    body = call.name + "(" + ", ".join(parts) + ")"
    return f"<code>{_check_body(body, 'python')}</code>"


# ── parsing ────────────────────────────────────────────────────────────────────────────────

def _parse_xml(body: str) -> ParsedCall:
    def error(message: str) -> CallError:
        return CallError("xml", body, message)

    try:
        data = json.loads(body)
    except json.JSONDecodeError as e:
        return error(f"bad JSON in <tool_call>: {e.msg} at line {e.lineno} column {e.colno}")
    except (ValueError, RecursionError) as e:  # e.g. an integer too long to convert, absurd nesting
        return error(f"bad JSON in <tool_call>: {e or type(e).__name__}")
    if not isinstance(data, dict):
        return error(f"<tool_call> holds a JSON {type(data).__name__}; expected an object with name and arguments")
    if not isinstance(data.get("name"), str) or not data["name"]:
        return error("<tool_call> object has no \"name\" string")
    if "arguments" not in data:
        return error(f"<tool_call> for {data['name']} has no \"arguments\" object")
    if not isinstance(data["arguments"], dict):
        return error(f"\"arguments\" of {data['name']} is a JSON {type(data['arguments']).__name__}, not an object")
    return ToolCall(data["name"], data["arguments"])


def _dotted_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted_name(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _json_like(value: Any) -> Any:
    """Literal -> JSON-like value (tuples become lists); raises ValueError for what JSON cannot hold."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return value
    if isinstance(value, (list, tuple)):
        return [_json_like(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise ValueError("dict keys must be strings")
        return {k: _json_like(v) for k, v in value.items()}
    raise ValueError(f"a {type(value).__name__} is not a JSON value")


def _parse_python(body: str) -> list[ParsedCall]:
    def error(message: str) -> list[ParsedCall]:
        return [CallError("python", body, message)]

    try:
        tree = ast.parse(body.strip())
    except SyntaxError as e:
        return error(f"Python syntax error in <code>: {e.msg} (line {e.lineno})")
    except (ValueError, RecursionError, MemoryError) as e:  # null bytes, absurd nesting
        return error(f"cannot read <code> as Python: {e or type(e).__name__}")
    if not tree.body:
        return error("empty <code> block: expected a call such as f(x=1)")
    calls: list[ParsedCall] = []
    for stmt in tree.body:
        where = f"line {stmt.lineno}"
        if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
            kind = "an expression" if isinstance(stmt, ast.Expr) else f"a statement of type {type(stmt).__name__}"
            return error(f"{where} is {kind}, not a tool call like f(x=1)")
        call = stmt.value
        name = _dotted_name(call.func)
        if name is None:
            return error(f"{where}: the called object is a {type(call.func).__name__}, not a function name")
        if call.args:
            return error(f"{where}: {name} has positional arguments; tools take keyword arguments, e.g. {name}(x=1)")
        arguments: dict[str, Any] = {}
        for kw in call.keywords:
            if kw.arg is None:
                return error(f"{where}: {name} unpacks **{ast.unparse(kw.value)}; write each argument out")
            source = ast.get_source_segment(body.strip(), kw.value) or ast.unparse(kw.value)
            try:
                value = ast.literal_eval(kw.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return error(f"{where}: argument {kw.arg}={source} of {name} is not a literal "
                             "(names, calls and arithmetic are not evaluated)")
            try:
                arguments[kw.arg] = _json_like(value)
            except ValueError as e:
                return error(f"{where}: argument {kw.arg}={source} of {name} is not a JSON value: {e}")
        calls.append(ToolCall(name, arguments))
    return calls


_ANY_TAG = re.compile("|".join(re.escape(tag) for pair in _TAGS.values() for tag in pair))


def parse_tool_calls(text: str) -> list[ParsedCall]:
    """Every tool call in ``text``, in order, XML and Python style alike; malformed ones as :class:`CallError`."""
    found: list[ParsedCall] = []
    pos = 0
    while (match := _ANY_TAG.search(text, pos)) is not None:
        tag = match.group()
        style: Style = next(s for s, pair in _TAGS.items() if tag in pair)
        opening, closing = _TAGS[style]
        if tag == closing:
            found.append(CallError(style, tag, f"{closing} without an opening {opening}"))
            pos = match.end()
            continue
        end = text.find(closing, match.end())
        if end < 0:
            rest = text[match.end():]
            found.append(CallError(style, rest, f"unclosed {opening} tag: no {closing} after it"))
            break
        body = text[match.end():end]
        if style == "xml":
            found.append(_parse_xml(body))
        else:
            found.extend(_parse_python(body))
        pos = end + len(closing)
    return found


def parse_completion(text: str) -> Completion:
    """Split a completion into reasoning (its think block) and answer, and parse the answer's tool calls.

    Accepts what the model writes after the generation prompt, with or without a final ``<|im_end|>``.
    A completion that ends its reasoning with ``</think>`` but whose ``<think>`` sat in the prompt counts
    everything before ``</think>`` as reasoning. Tool calls are read from the answer only: a call the
    model merely considers inside its reasoning is not a call.
    """
    body = text.split(_STOP, 1)[0]
    stripped = body.lstrip()
    reasoning: str | None = None
    if stripped.startswith("<think>"):
        inner = stripped[len("<think>"):]
        end = inner.find("</think>")
        if end < 0:
            return Completion(inner.strip(), "", [], "unclosed <think> block: no </think> before the answer")
        reasoning, answer = inner[:end].strip(), inner[end + len("</think>"):]
    elif "</think>" in body:
        before, answer = body.split("</think>", 1)
        reasoning = before.strip()
    else:
        answer = body
    answer = answer.strip()
    return Completion(reasoning, answer, parse_tool_calls(answer))
