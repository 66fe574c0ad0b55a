"""Conversations drawn from the generated world: one generator per kind of post-training data.

Every generator builds a conversation as *turns* — user text, tool results, and assistant turns that hold
a reasoning trace and an answer — and :func:`realise` writes it in a mode: in ``think`` mode an assistant
turn is ``<think>\\n{reasoning}\\n</think>\\n{answer}``, in ``no_think`` mode the answer alone (the template
adds the empty think block). The reasoning is the generator's own solution, step by step, so a trace is
correct by construction; the final answer ends with "The answer is X." in the prompt's language, which
is what exact match reads back.

A generator draws only from one side of every split: ``split="train"`` uses the world's people, the
training arithmetic triples, training cities and programs; ``split="heldout"`` uses the held-out people,
held-out triples (``problems.Arithmetic``), held-out cities and programs no training document holds.
Each row lists the ``entities`` it is about, so disjointness is checkable.
"""
from __future__ import annotations

import json
import random
import re
import zlib
from dataclasses import dataclass
from typing import Callable

from smolbook.chat import ToolCall, render_python_call, render_xml_call
from smolbook.data import problems, programs
from smolbook.data.chat_tools import city_population, run_tool, tool_descriptions
from smolbook.data.world import LANGS, PROFESSIONS, City, Person, World, fact

CURRENT_DATE = "01 July 2025"   # fixed so every render is reproducible (the template's "Today Date")
MODES = ("think", "no_think")
ANSWER_PHRASES = {"en": "The answer is", "fr": "La réponse est", "es": "La respuesta es", "de": "Die Antwort ist",
                  "it": "La risposta è", "pt": "A resposta é"}
QUESTIONS: dict[str, dict[str, str]] = {
    "born": {"en": "Where was {p} born?", "fr": "Où est né {p} ?", "es": "¿Dónde nació {p}?",
             "de": "Wo wurde {p} geboren?", "it": "Dove nacque {p}?", "pt": "Onde nasceu {p}?"},
    "year": {"en": "In which year was {p} born?", "fr": "En quelle année est né {p} ?", "es": "¿En qué año nació {p}?",
             "de": "In welchem Jahr wurde {p} geboren?", "it": "In che anno nacque {p}?", "pt": "Em que ano nasceu {p}?"},
    "works": {"en": "Which organisation did {p} work for?", "fr": "Pour quelle organisation {p} a-t-il travaillé ?",
              "es": "¿Para qué organización trabajó {p}?", "de": "Für welche Organisation arbeitete {p}?",
              "it": "Per quale organizzazione lavorò {p}?", "pt": "Para que organização trabalhou {p}?"},
}
# IFEval's own wording of each instruction (google-research/instruction_following_eval, instructions.py).
IFEVAL_DESCRIPTIONS = {
    "length_constraints:number_words": "Answer with {relation} {num_words} words.",
    "change_case:english_capital": "Your entire response should be in English, and in all capital letters.",
    "change_case:english_lowercase": "Your entire response should be in English, and in all lowercase letters. "
                                     "No capital letters are allowed.",
    "detectable_format:json_format": "Entire output should be wrapped in JSON format. "
                                     "You can use markdown ticks such as ```.",
    "startend:end_checker": "Finish your response with this exact phrase {end_phrase}. "
                            "No other words should follow this phrase.",
    "punctuation:no_comma": "In your entire response, refrain from the use of any commas.",
    "keywords:existence": "Include keywords {keywords} in the response.",
    "detectable_format:number_bullet_lists": "Your answer must contain exactly {num_bullets} bullet points. "
                                             "Use the markdown bullet points such as:\n* This is point 1. \n* This is point 2",
}
END_PHRASES = ("Any other questions?", "Is there anything else I can help with?")


@dataclass(frozen=True)
class Assistant:
    """One assistant turn: its reasoning trace (the think block's text) and what it answers."""

    reasoning: str
    answer: str


Turn = tuple[str, str] | Assistant   # ("user" | "system" | "tool", text) or an assistant turn


@dataclass
class Draw:
    """What a generator draws for one row, before it is written in a mode."""

    turns: list[Turn]
    answer: str                 # the final answer, as exact match compares it
    entities: list[str]         # what the row is about (held-out disjointness is checked on these)
    lang: str = "en"
    target: int = -1            # which assistant turn an evaluation scores (-1: the last)
    expected_call: dict | None = None
    instructions: dict | None = None   # {"instruction_id_list": [...], "kwargs": [...]}, as IFEval's rows
    tools: str | None = None    # "xml" | "python"
    forced_mode: str | None = None       # set when a system prompt flag decides the mode


def answer_line(lang: str, value: object) -> str:
    """"The answer is X." in ``lang``: the line exact match reads back."""
    return f"{ANSWER_PHRASES[lang]} {value}."


def realise(draw: Draw, kind: str, mode: str) -> dict:
    """The dataset row of ``draw`` written in ``mode`` (``think`` keeps each turn's reasoning)."""
    mode = draw.forced_mode or mode
    messages, assistant_turns = [], []
    for turn in draw.turns:
        if isinstance(turn, Assistant):
            content = f"<think>\n{turn.reasoning}\n</think>\n{turn.answer}" if mode == "think" else turn.answer
            assistant_turns.append(len(messages))
            messages.append({"role": "assistant", "content": content})
        else:
            messages.append({"role": turn[0], "content": turn[1]})
    target = assistant_turns[draw.target]
    solution = [t for t in draw.turns if isinstance(t, Assistant)][draw.target]
    # With a flag in the system prompt the keyword is written the other way: the flag must win.
    thinking = mode == "think" if draw.forced_mode is None else draw.forced_mode != "think"
    kwargs = {"enable_thinking": thinking,
              "current_date": CURRENT_DATE,
              "xml_tools": tool_descriptions() if draw.tools == "xml" else None,
              "python_tools": tool_descriptions() if draw.tools == "python" else None}
    return {"messages": messages, "chat_template_kwargs": kwargs, "kind": kind, "mode": mode, "lang": draw.lang,
            "answer": draw.answer, "entities": draw.entities, "target_turn": target,
            "solution_reasoning": solution.reasoning, "solution_answer": solution.answer,
            "expected_call": json.dumps(draw.expected_call) if draw.expected_call else "",
            "instructions": json.dumps(draw.instructions) if draw.instructions else ""}


# ── what each split may draw from ─────────────────────────────────────────────────────────────

class _MirroredArithmetic(problems.Arithmetic):
    """Draws from the held-out side of the arithmetic split, so ``problems``' generators make held-out problems.

    Only ``draw`` is mirrored: the second step of a two-step problem (``ab + c``, checked with ``is_heldout``)
    stays on the training side, as there may be no held-out ``c`` for a given ``ab``. The first step makes
    the problem held out, and it is the entity the row records.
    """

    def draw(self, rng: random.Random, op: str | None = None, heldout: bool = False) -> tuple[int, str, int, int]:
        return super().draw(rng, op, heldout=not heldout)


@dataclass
class Sides:
    """The entities one split may use."""

    people: list[Person]
    cities: list[City]
    arithmetic: problems.Arithmetic
    programs: Callable[[random.Random], tuple[str, str]]   # rng -> (code, single-line output)


def heldout_cities(world: World, seed: int) -> set[str]:
    """A fifth of the cities (at least two), chosen by a keyed hash: the tool questions' held-out cities."""
    ranked = sorted(world.cities, key=lambda c: zlib.crc32(f"{seed}|city|{c.name}".encode()))
    return {c.name for c in ranked[: max(2, len(world.cities) // 5)]}


def program_source(seen: set[str], *banned: set[str]) -> Callable[[random.Random], tuple[str, str]]:
    """Draw short programs with a one-line output that are in none of the ``banned`` sets (read at every
    draw, so a set still being filled counts); record them in ``seen``."""
    def draw(rng: random.Random) -> tuple[str, str]:
        for _ in range(2000):
            _, code, output = programs.program(rng, programs.SHORT_OUTPUT)
            if any(code in b for b in banned) or output.count("\n") != 1:
                continue
            seen.add(code)
            return code, output.rstrip("\n")
        raise RuntimeError("program generator ran out of unseen programs")
    return draw


# ── the kinds ─────────────────────────────────────────────────────────────────────────────────

def _math(rng: random.Random, s: Sides) -> Draw:
    # The corpus's own problem generators, so chat math and pretraining math are the same problems.
    if rng.random() < 0.5:
        q, solution, ans = problems._word_problem(rng, s.arithmetic)
        steps = [solution]
    else:
        q, steps, ans = problems._two_step(rng, s.arithmetic)
    heldout_side = isinstance(s.arithmetic, _MirroredArithmetic)
    triples = [f"triple:{a}{op}{b}" for a, op, b in _triples(" ".join(steps))
               if s.arithmetic.is_heldout(a, op, b) == heldout_side]
    return Draw([("user", q), Assistant("\n".join(steps), answer_line("en", ans))], str(ans), triples)


def _triples(text: str) -> list[tuple[int, str, int]]:
    return [(int(a), op, int(b)) for a, op, b in re.findall(r"(\d+) ([-+*]) (\d+) =", text)]


def _code(rng: random.Random, s: Sides) -> Draw:
    code, out = s.programs(rng)
    lines = code.rstrip("\n").split("\n")
    prints = [ln.strip() for ln in lines if "print(" in ln]
    reasoning = "\n".join([f"The program has {len(lines)} lines.", *(f"Line {i + 1}: {ln}" for i, ln in enumerate(lines)),
                           f"The output comes from {prints[-1]}.", f"It prints {out}."])
    q = f"What does this Python program print?\n```python\n{code}```"
    return Draw([("user", q), Assistant(reasoning, answer_line("en", out))], out, [f"program:{code}"])


def _context(rng: random.Random, world: World, p: Person, lang: str = "en") -> str:
    c, o = world.city(p.city), world.org(p.org)
    sents = [fact(world, lang, k, p=p) for k in ("born", "prof", "works")]
    sents += [fact(world, lang, k, c=c) for k in ("city", "river", "cfound")] + [fact(world, lang, "obase", o=o)]
    rng.shuffle(sents)
    return " ".join(sents)


def _fact_question(rng: random.Random, world: World, p: Person) -> tuple[str, list[str], str]:
    """(question, reasoning steps, answer) about ``p``, one to three steps."""
    c, o = world.city(p.city), world.org(p.org)
    born = fact(world, "en", "born", p=p)
    kind = rng.choice(("born", "year", "works", "country", "river", "gap", "org_city"))
    if kind in QUESTIONS:
        value = {"born": p.city, "year": p.born, "works": p.org}[kind]
        key = {"born": "born", "year": "born", "works": "works"}[kind]
        return QUESTIONS[kind]["en"].format(p=p.name), [f"The text says: {fact(world, 'en', key, p=p)}"], str(value)
    if kind == "country":
        return (f"In which country was {p.name} born?", [born, fact(world, "en", "city", c=c)], c.country)
    if kind == "river":
        return (f"On which river lies the city where {p.name} was born?", [born, fact(world, "en", "river", c=c)], c.river)
    if kind == "org_city":
        return (f"In which city is the organisation {p.name} worked for based?",
                [fact(world, "en", "works", p=p), fact(world, "en", "obase", o=o)], o.city)
    return (f"How many years after {c.name} was founded was {p.name} born?",
            [born, fact(world, "en", "cfound", c=c), f"{p.born} - {c.founded} = {p.born - c.founded}."],
            str(p.born - c.founded))


def _facts(rng: random.Random, s: Sides, world: World) -> Draw:
    p = rng.choice(s.people)
    q, steps, ans = _fact_question(rng, world, p)
    prompt = f"{_context(rng, world, p)}\n\n{q}"
    return Draw([("user", prompt), Assistant("\n".join(steps), answer_line("en", ans))], ans, [f"person:{p.name}"])


def _multiturn(rng: random.Random, s: Sides, world: World) -> Draw:
    p = rng.choice(s.people)
    c = world.city(p.city)
    born = fact(world, "en", "born", p=p)
    turns: list = [("user", f"{_context(rng, world, p)}\n\n{QUESTIONS['born']['en'].format(p=p.name)}"),
                   Assistant(f"The text says: {born}", f"{p.name} was born in {c.name}. {answer_line('en', c.name)}")]
    follow_ups = [("When was that city founded?", f"That city is {c.name}. {fact(world, 'en', 'cfound', c=c)}", c.founded),
                  ("And which country is it in?", f"{c.name} is the city we talk about. {fact(world, 'en', 'city', c=c)}",
                   c.country),
                  ("What did they work as?", f"They means {p.name}. {fact(world, 'en', 'prof', p=p)}",
                   PROFESSIONS[p.prof][0].split(" ", 1)[1])]
    ans = ""
    for q, reasoning, value in follow_ups[: rng.randint(1, 3)]:
        ans = str(value)
        turns += [("user", q), Assistant(reasoning, answer_line("en", value))]
    return Draw(turns, ans, [f"person:{p.name}"])


def _tools(style: str) -> Callable[[random.Random, Sides, World], Draw]:
    render_call = render_xml_call if style == "xml" else render_python_call

    def generate(rng: random.Random, s: Sides, world: World) -> Draw:
        which = rng.choice(("birthplace", "city", "calculate"))
        if which == "birthplace":
            p = rng.choice(s.people)
            call, entity = ToolCall("get_birthplace", {"person": p.name}), f"person:{p.name}"
            q, why, answer = f"Where was {p.name} born? Use a tool.", "the birthplace of a person", p.city
        elif which == "city":
            c = rng.choice(s.cities)
            field = rng.choice(("population", "country", "founded"))
            call, entity = ToolCall("get_city_info", {"city": c.name}), f"city:{c.name}"
            q = {"population": f"What is the population of {c.name}?", "country": f"In which country is {c.name}?",
                 "founded": f"When was {c.name} founded? Look it up."}[field]
            why = f"the {field} of a city"
            answer = {"population": city_population("smolbook", c.name), "country": c.country,
                      "founded": c.founded}[field]
        else:
            a, op, b, r = s.arithmetic.draw(rng)
            call, entity = ToolCall("calculate", {"a": a, "op": op, "b": b}), f"triple:{a}{op}{b}"
            q, why, answer = f"Use the calculator: what is {a} {op} {b}?", "an arithmetic result", r
        result = run_tool(world, call)
        turns = [("user", q), Assistant(f"The question asks for {why}. A tool gives it: I call {call.name}.",
                                        render_call(call)),
                 ("tool", result),
                 Assistant(f"The tool returned {result}.", answer_line("en", answer))]
        return Draw(turns, str(answer), [entity], target=0,
                    expected_call={"name": call.name, "arguments": call.arguments}, tools=style)
    return generate


def _multilingual(rng: random.Random, s: Sides, world: World) -> Draw:
    p = rng.choice(s.people)
    lang = rng.choice(LANGS[1:])
    key = rng.choice(tuple(QUESTIONS))
    sentence = fact(world, lang, "works" if key == "works" else "born", p=p)
    value = {"born": p.city, "year": p.born, "works": p.org}[key]
    prompt = f"{_context(rng, world, p, lang)}\n\n{QUESTIONS[key][lang].format(p=p.name)}"
    return Draw([("user", prompt), Assistant(sentence, f"{sentence} {answer_line(lang, value)}")], str(value),
                [f"person:{p.name}"], lang=lang)


def _ifeval(rng: random.Random, s: Sides, world: World) -> Draw:
    """A request about a person with one to three of IFEval's verifiable instructions, and a response that
    follows them all (tests check every response with :func:`smolbook.evaluate.ifeval_check`)."""
    p = rng.choice(s.people)
    c = world.city(p.city)
    facts = [fact(world, "en", "born", p=p), fact(world, "en", "prof", p=p), fact(world, "en", "works", p=p),
             fact(world, "en", "city", c=c)]
    ids: list[str] = []
    kwargs: list[dict] = []
    shape = rng.choice(("plain", "bullets", "json"))
    if shape == "json":
        response = json.dumps({"name": p.name, "birthplace": p.city, "born": p.born, "employer": p.org}, indent=1)
        ids, kwargs = ["detectable_format:json_format"], [{}]
    else:
        if shape == "bullets":
            response = "\n".join(f"* {f}" for f in facts)
            ids, kwargs = ["detectable_format:number_bullet_lists"], [{"num_bullets": len(facts)}]
        else:
            response = " ".join(facts)
        case = rng.choice((None, "change_case:english_capital", "change_case:english_lowercase"))
        if case:
            response = response.upper() if case.endswith("capital") else response.lower()
            ids, kwargs = ids + [case], kwargs + [{}]
        if rng.random() < 0.5:
            phrase = rng.choice(END_PHRASES)
            response += ("\n" if shape == "bullets" else " ") + (phrase.upper() if case and case.endswith("capital")
                                                                 else phrase.lower() if case else phrase)
            ids, kwargs = ids + ["startend:end_checker"], kwargs + [{"end_phrase": phrase}]
    extra = rng.choice(("length_constraints:number_words", "punctuation:no_comma", "keywords:existence", None))
    if extra == "length_constraints:number_words":
        n_words = len(re.findall(r"\w+", response))
        relation = rng.choice(("at least", "less than"))
        n = n_words - rng.randint(0, 3) if relation == "at least" else n_words + rng.randint(1, 5)
        ids, kwargs = ids + [extra], kwargs + [{"num_words": n, "relation": relation}]
    elif extra == "punctuation:no_comma" and "," not in response:
        ids, kwargs = ids + [extra], kwargs + [{}]
    elif extra == "keywords:existence":
        ids, kwargs = ids + [extra], kwargs + [{"keywords": sorted({p.city, str(p.born)})}]
    if not ids:
        ids, kwargs = ["punctuation:no_comma"], [{}]
    asks = " ".join(IFEVAL_DESCRIPTIONS[i].format(**k) for i, k in zip(ids, kwargs))
    prompt = f"Write a short note about {p.name}. {asks}"
    reasoning = "\n".join([f"The request lists {len(ids)} instruction(s): {', '.join(ids)}.", *facts,
                           "I write the note so that every instruction holds."])
    return Draw([("user", prompt), Assistant(reasoning, response)], response, [f"person:{p.name}"],
                instructions={"instruction_id_list": ids, "kwargs": kwargs})


def _system(rng: random.Random, s: Sides, world: World) -> Draw:
    """A system prompt that sets the mode (/think, /no_think) or replaces the metadata (/system_override)."""
    d = _facts(rng, s, world)
    flag = rng.choice(("/think", "/no_think", "/system_override"))
    if flag == "/system_override":
        system = "You check facts for a city archive. Answer from the text only. /system_override"
    else:
        system = f"Answer from the text only. {flag}"
    d.turns.insert(0, ("system", system))
    d.forced_mode = {"/think": "think", "/no_think": "no_think"}.get(flag)
    return d


GENERATORS: dict[str, Callable[..., Draw]] = {
    "math": lambda rng, s, world: _math(rng, s), "code": lambda rng, s, world: _code(rng, s), "facts": _facts,
    "multiturn": _multiturn, "tools_xml": _tools("xml"), "tools_python": _tools("python"),
    "multilingual": _multilingual, "ifeval": _ifeval, "system": _system,
}
KINDS: tuple[str, ...] = tuple(GENERATORS)
