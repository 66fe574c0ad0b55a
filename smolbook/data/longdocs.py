"""Long documents: pages, source files and problem books whose later parts restate facts and quote passages from
far earlier, as real long pages and books do.

A model learns to use a long context only from documents in which something far back helps predict what comes
next. Each long document here is a run of sections drawn from its domain's own generator; past its first third,
sections are interleaved with restatements ("As noted in section 3, ...") and verbatim quotes of earlier
sections, at distances of thousands of tokens. The long-context chapters need them: the tiny corpus' ordinary
documents rarely pass the training length.
"""
from __future__ import annotations

import random
import re
from collections.abc import Callable

from smolbook.data import problems, programs, text
from smolbook.data.world import World, fact

LONG_DOMAINS = ("web", "code", "reasoning")
# Long documents per domain: one per this many ordinary documents (at least one).
LONG_DOC_EVERY = 300
# Characters per long document: past 4,096 tokens of the tiny tokenizer (about 3-4 characters a token).
LONG_DOC_CHARS = (18_000, 30_000)

_PROGRAM = re.compile(r"```python\n.*?```\nOutput:\n.*?(?=\n\n|\Z)", re.S)
Section = tuple[str, list[str]]  # (section text, sentences of it that a later section may restate or quote)


def _assemble(rng: random.Random, title: str, next_section: Callable[[], Section], callback: Callable[[int, str], str],
              target_chars: int) -> str:
    """Sections until ``target_chars``; past the first third, each new section may be preceded by a call back to
    a section at least three sections earlier (``callback(index, sentence)``)."""
    parts, recallable, size = [title], [], len(title)
    while size < target_chars:
        if len(recallable) > 3 and size > target_chars / 3 and rng.random() < 0.6:
            i = rng.randrange(len(recallable) - 3)
            line = callback(i + 1, rng.choice(recallable[i][1]))
            parts.append(line)
            size += len(line)
        body, keys = next_section()
        recallable.append((body, keys))
        parts.append(f"## {len(recallable)}\n\n{body}")
        size += len(body)
    return "\n\n".join(parts)


def long_web_doc(rng: random.Random, world: World) -> dict:
    """A long page about one city: its people's biographies as sections; later sections restate their facts."""
    city = rng.choice(world.cities)
    people = [p for p in world.people if p.city == city.name] or world.people

    def section() -> Section:
        p = rng.choice(people)
        core = [fact(world, "en", k, p=p) for k in ("born", "prof", "works")]
        return text.person_doc(rng, world, "en", p).split("\n\n", 1)[1], core

    def callback(i: int, sentence: str) -> str:
        return rng.choice((f"As noted in section {i}, {sentence}", f"Section {i} said: \"{sentence}\"",
                           f"Recall from section {i}: {sentence}"))

    body = _assemble(rng, f"# People of {city.name}", section, callback, rng.randint(*LONG_DOC_CHARS))
    return {"text": body, "kind": "long", "lang": "en"}


def long_code_doc(rng: random.Random, avoid: Callable[[int, str, int], bool] | None = None) -> dict:
    """A long tutorial file: examples with their outputs; later it quotes earlier programs and what they printed."""
    def section() -> Section:
        body = programs.code_docs(rng, 1, avoid=avoid)[0]["text"]
        return body, _PROGRAM.findall(body)[:1] or [body]

    def callback(i: int, quoted: str) -> str:
        return f"Example {i} again, unchanged:\n{quoted}"

    body = _assemble(rng, "# Python examples, with their outputs", section, callback, rng.randint(*LONG_DOC_CHARS))
    return {"text": body, "kind": "long", "lang": "python"}


def long_reasoning_doc(rng: random.Random, ar: problems.Arithmetic) -> dict:
    """A long problem book: worked problems; later it restates earlier problems with the answer found there."""
    def section() -> Section:
        d = problems.reasoning_docs(rng, 1, ar)[0]
        return d["text"], [f"{d['problem']} The answer is {d['answer']}."]

    def callback(i: int, restated: str) -> str:
        return f"Problem {i}, solved above: {restated}"

    body = _assemble(rng, "# Worked problems", section, callback, rng.randint(*LONG_DOC_CHARS))
    return {"text": body, "kind": "long", "lang": "en", "problem": "", "thinking": "", "answer": ""}


def n_long(docs_per_domain: int) -> int:
    return max(1, docs_per_domain // LONG_DOC_EVERY)
