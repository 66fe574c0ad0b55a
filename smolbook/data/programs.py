"""The ``code`` domain: small runnable Python programs followed by the output they print.

Each generator returns the program and the output it *should* print (computed independently in
Python); the program is then run in-process (``exec`` in a namespace with a few safe builtins,
stdout captured) and the two must agree, so every document's output is verified by running it.
Running in-process keeps generation fast (no interpreter start-up per program).
"""
from __future__ import annotations

import builtins
import contextlib
import io
import random
from typing import Callable

from smolbook.errors import SmolbookError

_SAFE_BUILTINS = {name: getattr(builtins, name) for name in ("print", "range", "len", "sum", "max", "min", "sorted", "str", "int", "abs",
                               "enumerate", "zip", "list", "dict", "reversed")}
_VARS = ("x", "y", "n", "total", "count", "value", "size", "score")
_WORDS = ("kessa", "varo", "lindel", "moral", "tenri", "sado", "elna", "bruno", "clara", "delta", "river", "market")
_FUNCS = ("area", "scale", "combine", "step", "mix", "grow")
# Set by code_docs: the held-out arithmetic triples (problems.Arithmetic.is_heldout) stay out of programs too.
_AVOID: Callable[[int, str, int], bool] | None = None


def run_program(code: str) -> str:
    """Execute ``code`` with a restricted set of builtins and return what it printed."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, "<corpus>", "exec"), {"__builtins__": _SAFE_BUILTINS})  # noqa: S102 - generated code only
    return buf.getvalue()


def _binop(rng: random.Random) -> tuple[str, str]:
    while True:
        a, b, op = rng.randint(0, 30), rng.randint(1, 30), rng.choice("+-*")
        if not (_AVOID and _AVOID(a, op, b)):
            break
    va, vb = rng.sample(_VARS, 2)
    r = {"+": a + b, "-": a - b, "*": a * b}[op]
    return f"{va} = {a}\n{vb} = {b}\nprint({va} {op} {vb})\n", f"{r}\n"


def _loop_sum(rng: random.Random) -> tuple[str, str]:
    n, k = rng.randint(2, 15), rng.randint(1, 5)
    v = rng.choice(_VARS)
    return (f"{v} = 0\nfor i in range({n}):\n    {v} += i * {k}\nprint({v})\n", f"{sum(i * k for i in range(n))}\n")


def _string(rng: random.Random) -> tuple[str, str]:
    w = rng.choice(_WORDS)
    kind = rng.randrange(5)
    expr, out = [("word.upper()", w.upper()), ("word[::-1]", w[::-1]), ("len(word)", str(len(w))),
                 ("word * 2", w * 2), ("'-'.join(word)", "-".join(w))][kind]
    return f"word = \"{w}\"\nprint({expr})\n", f"{out}\n"


def _list_ops(rng: random.Random) -> tuple[str, str]:
    xs = [rng.randint(0, 20) for _ in range(rng.randint(3, 6))]
    expr, out = rng.choice([("sorted(xs)", sorted(xs)), ("max(xs)", max(xs)), ("min(xs)", min(xs)),
                            ("sum(xs)", sum(xs)), ("len(xs)", len(xs)), ("xs[::-1]", xs[::-1])])
    return f"xs = {xs}\nprint({expr})\n", f"{out}\n"


def _function(rng: random.Random) -> tuple[str, str]:
    f, k = rng.choice(_FUNCS), rng.randint(0, 9)
    calls = [(rng.randint(0, 9), rng.randint(0, 9)) for _ in range(rng.randint(1, 3))]
    code = f"def {f}(a, b):\n    return a * b + {k}\n\n" + "".join(f"print({f}({a}, {b}))\n" for a, b in calls)
    return code, "".join(f"{a * b + k}\n" for a, b in calls)


def _parity(rng: random.Random) -> tuple[str, str]:
    x = rng.randint(0, 99)
    return (f"x = {x}\nif x % 2 == 0:\n    print(\"even\")\nelse:\n    print(\"odd\")\n",
            "even\n" if x % 2 == 0 else "odd\n")


def _table(rng: random.Random) -> tuple[str, str]:
    # Many output lines: the long tail of the code domain.
    n, k = int(min(80, rng.lognormvariate(1.8, 0.8))) + 2, rng.randint(2, 9)
    return f"for i in range({n}):\n    print(i, i * {k})\n", "".join(f"{i} {i * k}\n" for i in range(n))


def _counts(rng: random.Random) -> tuple[str, str]:
    w = rng.choice(_WORDS)
    d: dict[str, int] = {}
    for ch in w:
        d[ch] = d.get(ch, 0) + 1
    return (f"counts = {{}}\nfor ch in \"{w}\":\n    counts[ch] = counts.get(ch, 0) + 1\nprint(counts)\n", f"{d}\n")


FAMILIES: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "binop": _binop, "loop_sum": _loop_sum, "string": _string, "list": _list_ops, "function": _function,
    "parity": _parity, "table": _table, "counts": _counts,
}
SHORT_OUTPUT = ("binop", "loop_sum", "string", "list", "function", "parity", "counts")


def program(rng: random.Random, families: tuple[str, ...] = tuple(FAMILIES)) -> tuple[str, str, str]:
    """(family, code, output) with the output verified by running the code."""
    fam = rng.choice(families)
    code, expected = FAMILIES[fam](rng)
    got = run_program(code)
    if got != expected:
        raise SmolbookError(f"code corpus generator bug in family '{fam}': program printed {got!r}, expected {expected!r}")
    return fam, code, got


def render(code: str, output: str) -> str:
    return f"```python\n{code}```\nOutput:\n{output}"


def code_docs(rng: random.Random, n: int, avoid: Callable[[int, str, int], bool] | None = None) -> list[dict]:
    """``n`` documents; most hold one program, some a tutorial of several (long tail).
    ``avoid(a, op, b)`` marks arithmetic triples that must not appear (the held-out evaluation)."""
    global _AVOID
    _AVOID, out = avoid, []
    for _ in range(n):
        k = 1 if rng.random() < 0.6 else max(1, min(40, int(rng.lognormvariate(1.0, 0.9))))
        parts, fams = [], []
        while len(parts) < k:
            fam, code, output = program(rng)
            parts.append(render(code, output))
            fams.append(fam)
        text = parts[0] if k == 1 else "\n\n".join(f"Example {i + 1}:\n{p}" for i, p in enumerate(parts))
        out.append({"text": text, "kind": fams[0] if k == 1 else "tutorial", "lang": "python"})
    return out


def code_output_eval(rng: random.Random, n: int, seen: set[str]) -> list[dict]:
    """Predict a program's output. Programs never seen in training (``seen`` holds the training programs)."""
    out, tries = [], 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n:
            raise SmolbookError("could not draw enough unseen programs for the code_output evaluation")
        fam, code, output = program(rng, SHORT_OUTPUT)
        if code in seen:
            continue
        seen.add(code)
        out.append({"prompt": f"```python\n{code}```\nOutput:\n", "answer": output.rstrip("\n"), "family": fam})
    return out


def training_programs(docs: list[dict]) -> set[str]:
    """The program texts inside code documents (to keep evaluations unseen)."""
    seen = set()
    for d in docs:
        for chunk in d["text"].split("```python\n")[1:]:
            seen.add(chunk.split("```\n", 1)[0])
    return seen
