"""Config files validated by pydantic, with errors a person can act on.

The book's configs (``scales.yaml``, run specs) are checked by pydantic models; this module turns a
``ValidationError`` into one line naming the file, each bad field by its dotted path, what is allowed and what was
given, raised as the config's own error type (a one-line CLI error, never a traceback).
"""
from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
# pydantic puts the member of a union it tried into the error's location ('int', "literal['recipe']", 'ModelEntry'):
# a type, not a field of the file, so it is left out of the path shown.
_UNION_MEMBER = re.compile(r"^(int|float|str|bool|none|list\[.*\]|dict\[.*\]|literal\[.*\]|function-.*|constrained-.*"
                           r"|\[key\]|[A-Z]\w*)$")
SHOWN_INPUT_CHARS = 60


def validate(model: type[M], raw: Any, where: str, error: type[Exception]) -> M:
    """``model`` validated from ``raw`` (plain data read from ``where``); ``error`` with every problem otherwise."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise error(f"{where}: " + "; ".join(problems(e))) from None


def problems(e: ValidationError) -> list[str]:
    """One phrase per bad field: ``budgets.sft.tokens: should be a valid integer ... (got 'many')``; unknown and
    missing fields are named as such under their parent."""
    grouped: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for err in e.errors():
        path = tuple(str(p) for p in err["loc"] if not _UNION_MEMBER.match(str(p)))
        grouped.setdefault(path, []).append(err)
    # A field that failed inside one member of a union (``model.rope_theta``) says more than the union's other
    # members failing on the whole value (``model: should be 'recipe'``): the latter is left out.
    grouped = {p: errs for p, errs in grouped.items() if not any(q[:len(p)] == p and len(q) > len(p) for q in grouped)}
    out = []
    for path, errs in grouped.items():
        kinds = {x["type"] for x in errs}
        parent, name = ".".join(path[:-1]), path[-1] if path else ""
        prefix = f"{parent}: " if parent else ""
        if kinds & {"missing", "missing_argument"}:
            out.append(f"{prefix}missing field {name}")
        elif kinds & {"extra_forbidden", "unexpected_keyword_argument"}:
            out.append(f"{prefix}unknown field {name}")
        else:
            said = " or ".join(dict.fromkeys(_phrase(x["msg"]) for x in errs))
            shown = "" if kinds == {"value_error"} else f" (got {_short(errs[0].get('input'))})"
            out.append(f"{'.'.join(path) or 'the file'}: {said}{shown}")
    return out


def _phrase(msg: str) -> str:
    msg = re.sub(r"a valid dictionary or instance of \w+", "a mapping of fields", msg.removeprefix("Value error, "))
    return msg[len("Input "):] if msg.startswith("Input should") else msg


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_INPUT_CHARS else text[:SHOWN_INPUT_CHARS - 3] + "..."
