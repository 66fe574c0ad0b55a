"""Scoring one chat completion against its held-out row, and summarising a list of scores: pure functions, no model
(the teacher's correctness filter and the chat evaluations both read them).

* ``answer_em`` — exact match of the final answer ("The answer is X." in the prompt's language);
* IFEval's strict accuracies (:mod:`.ifeval`); ``tool_call_match`` (BFCL's AST match, either style) and
  ``tool_call_validity``; ``language_match``; ``format_ok`` per mode.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any, Sequence

from smolbook.chat import CallError, ToolCall, parse_completion
from smolbook.data.conversations import ANSWER_PHRASES, MODES
from smolbook.errors import SmolbookError
from smolbook.evaluate.ifeval import ifeval_check
from smolbook.evaluate.language import detect_language

TOOL_KINDS = ("tools_xml", "tools_python")
_FINAL = re.compile(r"(?:" + "|".join(re.escape(p) for p in ANSWER_PHRASES.values()) + r")\s+(.+)")


def extract_answer(text: str) -> str | None:
    """The X of the last "The answer is X." (in any of the six languages) in ``text``; None when absent."""
    found = None
    for line in text.splitlines():
        for m in _FINAL.finditer(line):
            found = m.group(1).strip()
    if found is None:
        return None
    return found[:-1].rstrip() if found.endswith(".") else found


def _normalise(value: Any) -> str:
    return " ".join(str(value).split())


def answer_matches(expected: str, completion: str) -> bool:
    """Exact match of ``completion``'s final answer (its "The answer is X.") with ``expected``."""
    got = extract_answer(parse_completion(completion).answer)
    return got is not None and _normalise(got) == _normalise(expected)


def _same(a: Any, b: Any) -> bool:
    # JSON equality, but an int and the equal float match (1 == 1.0), a bool never matches an int.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b and type(a) in (int, float, str, type(None)) and type(b) in (int, float, str, type(None))


def tool_call_matches(expected: dict, completion: str) -> bool:
    """Whether ``completion`` holds a call, in either style, whose name and parsed arguments equal ``expected``
    (``{"name": ..., "arguments": {...}}``, as the model card writes a call). Calls inside the think
    block do not count; a malformed call never matches."""
    if not isinstance(expected, dict) or not isinstance(expected.get("name"), str) \
            or not isinstance(expected.get("arguments", {}), dict):
        raise SmolbookError(f"expected call {expected!r} must be {{\"name\": str, \"arguments\": dict}}")
    calls = parse_completion(completion).tool_calls
    want = ToolCall(expected["name"], expected.get("arguments", {}))
    return any(isinstance(c, ToolCall) and c.name == want.name and _same(c.arguments, want.arguments) for c in calls)


def tool_call_valid(completion: str) -> bool:
    """Whether ``completion``'s answer holds at least one call and every call in it parses."""
    calls = parse_completion(completion).tool_calls
    return bool(calls) and not any(isinstance(c, CallError) for c in calls)


def format_ok(completion: str, mode: str) -> bool:
    """think: a closed, non-empty think block followed by an answer; no_think: an answer and no reasoning."""
    c = parse_completion(completion)
    if c.error or not c.answer:
        return False
    if mode == "think":
        return bool(c.reasoning)
    if mode == "no_think":
        return not c.reasoning
    raise SmolbookError(f"mode {mode!r} is not one of {', '.join(MODES)}")


def score_completion(row: dict, completion: str, mode: str) -> dict[str, Any]:
    """Every score that applies to one held-out row and a model's completion of its prompt.

    ``correct`` is the row's main score (exact match, all IFEval instructions, or the tool call);
    ``error`` says why a completion could not be read (an unclosed think block), or is None.
    """
    parsed = parse_completion(completion)
    kind = row["kind"]
    out: dict[str, Any] = {"kind": kind, "format_ok": format_ok(completion, mode), "error": parsed.error,
                           "language_match": None, "tool_call_valid": None, "ifeval": None}
    if kind in TOOL_KINDS:
        out["correct"] = tool_call_matches(json.loads(row["expected_call"]), completion)
        out["tool_call_valid"] = tool_call_valid(completion)
    elif row.get("instructions"):
        spec = json.loads(row["instructions"])
        out["ifeval"] = [ifeval_check(i, k, parsed.answer) for i, k in zip(spec["instruction_id_list"], spec["kwargs"])]
        out["correct"] = all(out["ifeval"])
    else:
        out["correct"] = answer_matches(row["answer"], completion)
    # Language is scored where the reference answer itself reads as the row's language (not tool calls, JSON).
    if kind not in TOOL_KINDS and detect_language(row["solution_answer"]) == row["lang"]:
        out["language_match"] = detect_language(parsed.answer) == row["lang"]
    return out


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def summarise(scores: Sequence[dict], mode: str, checkpoint: str) -> dict[str, Any]:
    """One flat record of ``scores`` (from :func:`score_completion`): a line of a comparison table."""
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for s in scores:
        by_kind[s["kind"]].append(s)
    answer_rows = [s for s in scores if s["kind"] not in TOOL_KINDS and s["ifeval"] is None]
    ifeval_rows = [s["ifeval"] for s in scores if s["ifeval"] is not None]
    tool_rows = [s for s in scores if s["kind"] in TOOL_KINDS]
    record: dict[str, Any] = {
        "checkpoint": checkpoint, "mode": mode, "n": len(scores),
        "answer_em": _mean([s["correct"] for s in answer_rows]),
        "ifeval_prompt_strict": _mean([all(r) for r in ifeval_rows]),
        "ifeval_inst_strict": _mean([x for r in ifeval_rows for x in r]),
        "tool_call_match": _mean([s["correct"] for s in tool_rows]),
        "tool_call_validity": _mean([s["tool_call_valid"] for s in tool_rows]),
        "language_match": _mean([s["language_match"] for s in scores]),
        "format_ok": _mean([s["format_ok"] for s in scores]),
        "unparsable": sum(s["error"] is not None for s in scores),
    }
    for kind, rows in sorted(by_kind.items()):
        record[f"correct/{kind}"] = _mean([s["correct"] for s in rows])
    return record
