"""``smolbook chat``: render a conversation with the chat template, or parse a completion."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from smolbook.chat.calls import parse_completion
from smolbook.chat.template import check_messages, render
from smolbook.errors import SmolbookError


def _read_json(path: str, what: str) -> Any:
    file = Path(path)
    if not file.is_file():
        raise SmolbookError(f"{what} file {path} does not exist")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SmolbookError(f"{what} file {path} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise SmolbookError(f"{what} file {path} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None


def _read_tools(path: str | None, flag: str) -> list | None:
    if path is None:
        return None
    tools = _read_json(path, flag)
    if not isinstance(tools, list):
        raise SmolbookError(f"{flag} file {path} must hold a JSON list of tools (objects or strings)")
    return tools


def _render(args: argparse.Namespace) -> int:
    messages = check_messages(_read_json(args.messages, "messages"), source=args.messages)
    text = render(
        messages,
        enable_thinking=False if args.no_think else None,
        xml_tools=_read_tools(args.xml_tools, "--xml-tools"),
        python_tools=_read_tools(args.python_tools, "--python-tools"),
        date=args.date,
        add_generation_prompt=args.generation_prompt,
    )
    sys.stdout.write(text)
    return 0


def _parse(args: argparse.Namespace) -> int:
    if args.completion == "-":
        text = sys.stdin.read()
    else:
        file = Path(args.completion)
        if not file.is_file():
            raise SmolbookError(f"completion file {args.completion} does not exist")
        text = file.read_text(encoding="utf-8", errors="replace")
    completion = parse_completion(text)
    calls = [{"kind": type(c).__name__, **dataclasses.asdict(c)} for c in completion.tool_calls]
    out = {"reasoning": completion.reasoning, "answer": completion.answer, "tool_calls": calls,
           "error": completion.error}
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def register_cli(subparsers: Any) -> None:
    """Add ``smolbook chat render`` and ``smolbook chat parse``."""
    chat = subparsers.add_parser("chat", help="the SmolLM3 chat template: render conversations, parse completions")
    sub = chat.add_subparsers(dest="chat_command", required=True)

    r = sub.add_parser("render", help="print a conversation rendered with the chat template")
    r.add_argument("--messages", required=True, metavar="FILE.json", help="JSON list of {role, content}")
    r.add_argument("--no-think", action="store_true", help="enable_thinking=False (a /think flag in the system prompt still wins)")
    r.add_argument("--xml-tools", metavar="FILE.json", help="JSON list of tools called as <tool_call>{json}</tool_call>")
    r.add_argument("--python-tools", metavar="FILE.json", help="JSON list of tools called as <code>f(x=1)</code>")
    r.add_argument("--date", help="today's date for the metadata, e.g. '23 November 2026' (default: today)")
    r.add_argument("--generation-prompt", action="store_true", help="end with the assistant's generation prompt")
    r.set_defaults(func=_render)

    p = sub.add_parser("parse", help="split a completion into reasoning, answer and tool calls (JSON)")
    p.add_argument("completion", metavar="FILE", help="a text file with the model's completion, or - for stdin")
    p.set_defaults(func=_parse)
