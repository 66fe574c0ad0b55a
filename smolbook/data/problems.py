"""The ``math`` and ``reasoning`` domains and the arithmetic evaluation.

Math: arithmetic drills and word problems on 1–2 digit numbers with worked solutions ending in
"The answer is N." Reasoning: problems solved inside ``<think>…</think>`` followed by the answer
(SmolLM3's mid-training format). A keyed hash sets aside ~15% of all (a, op, b) triples: they
never occur in any training document and make up the arithmetic evaluation, so every evaluation
problem is unseen.
"""
from __future__ import annotations

import random
import zlib

_NAMES = ("Alda", "Bruno", "Clara", "Dario", "Elin", "Greta", "Hugo", "Ines", "Kira", "Luca", "Mara", "Nils")
_OBJECTS = ("apples", "books", "coins", "stamps", "shells", "pens", "cards", "eggs")
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


class Arithmetic:
    """Draws (a, op, b) triples on the training or the held-out side of a keyed split."""

    def __init__(self, seed: int, heldout_percent: int = 15):
        self.seed, self.heldout_percent = seed, heldout_percent

    def is_heldout(self, a: int, op: str, b: int) -> bool:
        return zlib.crc32(f"{self.seed}|{a}{op}{b}".encode()) % 100 < self.heldout_percent

    def draw(self, rng: random.Random, op: str | None = None, heldout: bool = False) -> tuple[int, str, int, int]:
        """(a, op, b, result): 1–2 digit operands, non-negative differences, products up to 12 x 12."""
        while True:
            o = op or rng.choice("++-*")
            if o == "*":
                a, b = rng.randint(0, 12), rng.randint(0, 12)
            else:
                hi = 9 if rng.random() < 0.5 else 99
                a, b = rng.randint(0, hi), rng.randint(0, hi)
                if o == "-" and b > a:
                    a, b = b, a
            if self.is_heldout(a, o, b) == heldout:
                return a, o, b, _OPS[o](a, b)


def _drill(rng: random.Random, ar: Arithmetic) -> str:
    a, op, b, r = ar.draw(rng)
    return f"Question: What is {a} {op} {b}?\nAnswer: {a} {op} {b} = {r}. The answer is {r}."


def _word_problem(rng: random.Random, ar: Arithmetic) -> tuple[str, str, int]:
    """(question, worked solution, answer) for a one-step word problem."""
    name, obj = rng.choice(_NAMES), rng.choice(_OBJECTS)
    a, op, b, r = ar.draw(rng)
    if op == "+":
        q = f"{name} has {a} {obj}. {name} finds {b} more {obj}. How many {obj} does {name} have now?"
        s = f"{name} starts with {a} {obj} and finds {b} more, so {a} + {b} = {r}."
    elif op == "-":
        q = f"{name} has {a} {obj}. {name} gives away {b} {obj}. How many {obj} are left?"
        s = f"{name} starts with {a} {obj} and gives away {b}, so {a} - {b} = {r}."
    else:
        q = f"{name} buys {a} boxes with {b} {obj} in each box. How many {obj} does {name} buy?"
        s = f"There are {a} boxes of {b} {obj}, so {a} * {b} = {r}."
    return q, s, r


def _two_step(rng: random.Random, ar: Arithmetic) -> tuple[str, list[str], int]:
    name, obj = rng.choice(_NAMES), rng.choice(_OBJECTS)
    a, _, b, ab = ar.draw(rng, "*")
    while True:
        c = rng.randint(0, 9)
        if not ar.is_heldout(ab, "+", c):
            break
    q = f"{name} buys {a} bags with {b} {obj} each, then finds {c} more {obj}. How many {obj} does {name} have?"
    steps = [f"First, {a} bags of {b} {obj} make {a} * {b} = {ab} {obj}.",
             f"Then {name} finds {c} more, so {ab} + {c} = {ab + c}."]
    return q, steps, ab + c


def math_docs(rng: random.Random, n: int, ar: Arithmetic) -> list[dict]:
    """Drills, word problems and worksheets (the long tail) with worked solutions."""
    out = []
    for _ in range(n):
        k = 1 if rng.random() < 0.5 else max(1, min(60, int(rng.lognormvariate(1.5, 0.9))))
        parts = []
        for i in range(k):
            r = rng.random()
            if r < 0.4:
                parts.append(_drill(rng, ar))
            elif r < 0.8:
                q, s, ans = _word_problem(rng, ar)
                parts.append(f"Question: {q}\nSolution: {s}\nThe answer is {ans}.")
            else:
                q, steps, ans = _two_step(rng, ar)
                parts.append(f"Question: {q}\nSolution: {' '.join(steps)}\nThe answer is {ans}.")
        text = parts[0] if k == 1 else "Worksheet\n\n" + "\n\n".join(f"Exercise {i + 1}. {p}" for i, p in enumerate(parts))
        out.append({"text": text, "kind": "single" if k == 1 else "worksheet", "lang": "en"})
    return out


def _reasoning_problem(rng: random.Random, ar: Arithmetic) -> tuple[str, str, str, str]:
    """(kind, problem, thinking, answer)."""
    r = rng.random()
    if r < 0.3:
        q, steps, ans = _two_step(rng, ar)
        think = [f"The question asks how many in total.", *steps,
                 f"Let me check: {ans} is the final count."]
        return "two_step", q, "\n".join(think), str(ans)
    if r < 0.55:
        # Summing a list step by step; long lists make the long tail of reasoning traces.
        k = max(2, min(60, int(rng.lognormvariate(1.4, 0.8))))
        xs = [rng.randint(0, 9) for _ in range(k)]
        total, think = xs[0], [f"I add the numbers one at a time, starting from {xs[0]}."]
        for j in range(1, k):
            while ar.is_heldout(total, "+", xs[j]):  # keep held-out sums out of training traces
                xs[j] = rng.randint(0, 9)
            x = xs[j]
            think.append(f"{total} + {x} = {total + x}.")
            total += x
        think.append(f"So the sum is {total}.")
        q = f"What is the sum of {', '.join(map(str, xs))}?"
        return "sum_list", q, "\n".join(think), str(total)
    if r < 0.7:
        a, b = rng.sample(range(100), 2)
        q = f"Which is larger, {a} or {b}?"
        big = max(a, b)
        think = f"Compare {a} and {b}. The tens digits are {a // 10} and {b // 10}.\n{big} is larger."
        return "compare", q, think, str(big)
    if r < 0.85:
        word = "".join(rng.choice("abcdeklmnorst") for _ in range(rng.randint(4, 10)))
        ch = rng.choice(word)
        think, count = [f"I go through '{word}' letter by letter, looking for '{ch}'."], 0
        for i, c in enumerate(word):
            if c == ch:
                count += 1
                think.append(f"Letter {i + 1} is '{c}': match, count = {count}.")
            else:
                think.append(f"Letter {i + 1} is '{c}': no match.")
        return "count_letter", f"How many times does the letter '{ch}' appear in '{word}'?", "\n".join(think), str(count)
    xs = rng.sample(range(50), rng.randint(3, 6))
    rest, think, done = list(xs), [], []
    while rest:
        m = min(rest)
        think.append(f"The smallest of {rest} is {m}.")
        rest.remove(m)
        done.append(m)
    return "sort", f"Sort these numbers from smallest to largest: {xs}.", "\n".join(think), str(done)


def reasoning_docs(rng: random.Random, n: int, ar: Arithmetic) -> list[dict]:
    """Problems solved inside <think>...</think>, then the answer; columns problem/thinking/answer kept."""
    out = []
    for _ in range(n):
        kind, q, think, ans = _reasoning_problem(rng, ar)
        text = f"Problem: {q}\n<think>\n{think}\n</think>\nThe answer is {ans}."
        out.append({"text": text, "kind": kind, "lang": "en", "problem": q, "thinking": think, "answer": ans})
    return out


def arithmetic_eval(rng: random.Random, n: int, ar: Arithmetic) -> list[dict]:
    """Exact-match arithmetic on held-out (a, op, b) triples in the drills' format.

    ``answer`` is the exact continuation of ``prompt`` (leading space included).
    """
    out, seen = [], set()
    while len(out) < n:
        a, op, b, r = ar.draw(rng, heldout=True)
        if (a, op, b) in seen and len(seen) < 300:
            continue
        seen.add((a, op, b))
        out.append({"prompt": f"Question: What is {a} {op} {b}?\nAnswer: {a} {op} {b} =", "answer": f" {r}", "op": op})
    return out
