"""Web-like prose about the generated world: English (``web``), five other languages
(``multilingual-web``, part of it parallel to English), and the two evaluations built from it
(4-choice knowledge cloze, translation).

Documents state facts and restate them later ("As noted above, ...", "In summary, ..."), so a model
learns to look back in its context for a fact it was given; the cloze questions ask for a fact
stated earlier in the same prompt. On the tiny book's runs this in-context retrieval emerged as a
jump after roughly 1M training tokens, not gradually. Held-out people (never in a training
document) make every evaluation fact unseen. Long documents, with restatements thousands of tokens
apart, are in :mod:`smolbook.data.longdocs`.
"""
from __future__ import annotations

import math
import random
from typing import Iterator

from smolbook.data.world import FILLERS, LANG_NAMES, LANGS, PROFESSIONS, TEMPLATES, Person, World, fact

OTHER_LANGS = LANGS[1:]
CLOZE_RELATIONS = ("born", "prof", "works")   # person facts; the asked slot directly follows the stem


def n_sentences(rng: random.Random, median: float = 8.0, sigma: float = 0.85, cap: int = 220) -> int:
    """Document length in sentences: log-normal, so a long tail reaches far past the tiny context."""
    return max(3, min(cap, int(rng.lognormvariate(math.log(median), sigma))))


def _paragraphs(rng: random.Random, sents: list[str]) -> str:
    out, i = [], 0
    while i < len(sents):
        k = rng.randint(3, 5)
        out.append(" ".join(sents[i:i + k]))
        i += k
    return "\n\n".join(out)


def _extras(rng: random.Random, world: World, lang: str, p: Person, core: list[str]) -> Iterator[str]:
    """Endless supply of sentences that fit a biography: context about the city and employer,
    short biographies of related people, fillers, and restatements of the core facts."""
    city, org = world.city(p.city), world.org(p.org)
    related = [q for q in world.people if q.city == p.city and q is not p] or world.people
    t = TEMPLATES[lang]
    while True:
        r = rng.random()
        if r < 0.25:
            yield fact(world, lang, rng.choice(("city", "river", "cfound")), c=city)
        elif r < 0.4:
            yield fact(world, lang, rng.choice(("obase", "ofound", "ofield")), o=org)
        elif r < 0.6:
            q = rng.choice(related)
            yield fact(world, lang, "born", p=q) + " " + fact(world, lang, rng.choice(("prof", "works")), p=q)
        elif r < 0.8:
            yield rng.choice(FILLERS[lang]).format(c=rng.choice((city.name, rng.choice(world.cities).name)))
        else:
            yield t["again"] + rng.choice(core)


def person_doc(rng: random.Random, world: World, lang: str, p: Person, n: int | None = None,
               with_summary: bool = True) -> str:
    """A biography: core facts first, then ``n`` sentences of context and restatement, then a summary."""
    core = [fact(world, lang, k, p=p) for k in ("born", "prof", "works")]
    n = n_sentences(rng) if n is None else n
    extras = _extras(rng, world, lang, p, core)
    body = core + [next(extras) for _ in range(max(0, n - 3))]
    if with_summary:
        body.append(TEMPLATES[lang]["summary"] + rng.choice(core))
    return f"# {p.name}\n\n" + _paragraphs(rng, body)


def city_doc(rng: random.Random, world: World, lang: str) -> str:
    """A city article: its facts, organisations based there, restatements, and the people born there."""
    c = rng.choice(world.cities)
    t = TEMPLATES[lang]
    core = [fact(world, lang, k, c=c) for k in ("city", "river", "cfound")]
    orgs = [o for o in world.orgs if o.city == c.name]
    n = n_sentences(rng)
    people = [q for q in world.people if q.city == c.name]
    rng.shuffle(people)
    lines = [f"- {fact(world, lang, 'born', p=q)} {fact(world, lang, 'prof', p=q)}" for q in people[: max(1, n // 2)]]
    body = list(core)
    for _ in range(max(0, n // 2 - 2)):
        r = rng.random()
        if r < 0.35:
            body.append(rng.choice(FILLERS[lang]).format(c=c.name))
        elif r < 0.6 and orgs:
            body.append(fact(world, lang, rng.choice(("obase", "ofound", "ofield")), o=rng.choice(orgs)))
        elif r < 0.85 and people:
            body.append(fact(world, lang, rng.choice(("works", "prof")), p=rng.choice(people)))
        else:
            body.append(t["again"] + rng.choice(core))
    text = f"# {c.name}\n\n" + _paragraphs(rng, body)
    if lines:
        text += "\n\n" + t["people_of"].format(c=c.name) + "\n" + "\n".join(lines)
    return text + "\n\n" + t["summary"] + rng.choice(core)


def org_doc(rng: random.Random, world: World, lang: str) -> str:
    """An organisation article listing people who worked for it."""
    o = rng.choice(world.orgs)
    t = TEMPLATES[lang]
    core = [fact(world, lang, k, o=o) for k in ("obase", "ofound", "ofield")]
    staff = [q for q in world.people if q.org == o.name]
    rng.shuffle(staff)
    n = n_sentences(rng)
    lines = [f"- {fact(world, lang, 'prof', p=q)}" for q in staff[: max(1, n // 2)]]
    city = world.city(o.city)
    extra = [fact(world, lang, k, c=city) for k in ("city", "river")]
    text = f"# {o.name}\n\n" + _paragraphs(rng, core + extra)
    if lines:
        text += "\n\n" + t["staff_of"].format(o=o.name) + "\n" + "\n".join(lines)
    return text + "\n\n" + t["summary"] + rng.choice(core)


def prose_doc(rng: random.Random, world: World, lang: str) -> tuple[str, str]:
    """One monolingual document: (kind, text)."""
    r = rng.random()
    if r < 0.6:
        return "person", person_doc(rng, world, lang, rng.choice(world.people))
    if r < 0.8:
        return "city", city_doc(rng, world, lang)
    return "org", org_doc(rng, world, lang)


def parallel_doc(rng: random.Random, world: World, lang: str, p: Person, n: int | None = None) -> str:
    """English sentences, each followed by its translation: the parallel part of the multilingual web."""
    keys = [("born", p), ("prof", p), ("works", p)]
    n = n_sentences(rng, median=5, sigma=0.7, cap=80) if n is None else n
    pool = [q for q in world.people if q.city == p.city] or world.people
    while len(keys) < n:
        keys.append((rng.choice(("born", "prof", "works")), rng.choice(pool)))
    lines = []
    for key, q in keys:
        lines.append(f"English: {fact(world, 'en', key, p=q)}\n{LANG_NAMES[lang]}: {fact(world, lang, key, p=q)}")
    return "\n".join(lines)


def web_docs(rng: random.Random, world: World, n: int) -> list[dict]:
    """English web-like prose (the ``web`` domain)."""
    out = []
    for i in range(n):
        kind, text = prose_doc(rng, world, "en")
        out.append({"text": text, "kind": kind, "lang": "en"})
    return out


def multilingual_docs(rng: random.Random, world: World, n: int, parallel_share: float = 0.3) -> list[dict]:
    """French, Spanish, German, Italian and Portuguese prose; ``parallel_share`` of it English-parallel."""
    out = []
    for i in range(n):
        lang = OTHER_LANGS[i % len(OTHER_LANGS)]
        if rng.random() < parallel_share:
            out.append({"text": parallel_doc(rng, world, lang, rng.choice(world.people)), "kind": "parallel", "lang": lang})
        else:
            kind, text = prose_doc(rng, world, lang)
            out.append({"text": text, "kind": kind, "lang": lang})
    return out


def heldout_docs(rng: random.Random, world: World, n: int, langs: tuple[str, ...]) -> list[dict]:
    """Validation documents: biographies of held-out people (never in training)."""
    return [{"text": person_doc(rng, world, langs[i % len(langs)], world.heldout_people[i % len(world.heldout_people)]),
             "kind": "person", "lang": langs[i % len(langs)]} for i in range(n)]


def _slot(lang: str, key: str, p: Person) -> tuple[str, str]:
    """Split a person fact at its asked slot: (stem, continuation with its leading space)."""
    li = LANGS.index(lang)
    tmpl = TEMPLATES[lang][key]
    slot = {"born": "{c}", "prof": "{prof}", "works": "{o}"}[key]
    stem = tmpl[: tmpl.index(slot)].rstrip().format(p=p.name)
    value = {"born": p.city, "prof": PROFESSIONS[p.prof][li], "works": p.org}[key]
    return stem, " " + value


def cloze_eval(rng: random.Random, world: World, n: int) -> list[dict]:
    """4-choice knowledge cloze about held-out people; the fact is stated earlier in the prompt.

    ``answer`` and ``choices`` are exact continuations of ``prompt`` (leading space included);
    ``label`` is the index of the answer in ``choices``.
    """
    pools = {"born": sorted({c.name for c in world.cities}), "prof": [p[0] for p in PROFESSIONS],
             "works": sorted({o.name for o in world.orgs})}
    out = []
    for i in range(n):
        p = world.heldout_people[i % len(world.heldout_people)]
        rel = CLOZE_RELATIONS[i % len(CLOZE_RELATIONS)]
        doc = person_doc(rng, world, "en", p, n=rng.randint(4, 8), with_summary=False)
        stem, answer = _slot("en", rel, p)
        wrong = rng.sample([v for v in pools[rel] if " " + v != answer], 3)
        choices = [" " + w for w in wrong] + [answer]
        rng.shuffle(choices)
        out.append({"prompt": f"{doc}\n\n{TEMPLATES['en']['summary']}{stem}", "answer": answer, "choices": choices,
                    "label": choices.index(answer), "relation": rel})
    return out


def translation_eval(rng: random.Random, world: World, n: int) -> list[dict]:
    """English -> other language, in the parallel documents' format: two solved pairs, then the query.

    Sentences are about held-out people, so no query sentence was ever seen in training.
    """
    out = []
    for i in range(n):
        p = world.heldout_people[i % len(world.heldout_people)]
        lang = OTHER_LANGS[i % len(OTHER_LANGS)]
        keys = ["born", "prof", "works"]
        rng.shuffle(keys)
        shots = "\n".join(f"English: {fact(world, 'en', k, p=p)}\n{LANG_NAMES[lang]}: {fact(world, lang, k, p=p)}"
                          for k in keys[:2])
        q = keys[2]
        out.append({"prompt": f"{shots}\nEnglish: {fact(world, 'en', q, p=p)}\n{LANG_NAMES[lang]}:",
                    "answer": " " + fact(world, lang, q, p=p), "lang": lang})
    return out

