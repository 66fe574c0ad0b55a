"""Which of the corpus's six languages a text is written in.

Hand-written because the one maintained detector IFEval uses (``langdetect``) is not installed here and
guesses among 55 languages; the book's texts come from a closed world in six languages whose every
sentence template is known. The detector counts the words that belong to exactly one language's
templates (fact sentences, questions, answer phrases) and names the language with the most. Names of
people and cities are syllable-built and belong to none, so they never sway it.
"""
from __future__ import annotations

import re
from functools import lru_cache

from smolbook.data.conversations import ANSWER_PHRASES, QUESTIONS
from smolbook.data.world import FIELDS, FILLERS, LANGS, PROFESSIONS, TEMPLATES

_WORD = re.compile(r"[^\W\d_]+")


@lru_cache(maxsize=1)
def _distinctive_words() -> dict[str, frozenset[str]]:
    words: dict[str, set[str]] = {}
    for i, lang in enumerate(LANGS):
        texts = [*TEMPLATES[lang].values(), *FILLERS[lang], ANSWER_PHRASES[lang],
                 *(q[lang] for q in QUESTIONS.values()), *(p[i] for p in PROFESSIONS), *(f[i] for f in FIELDS)]
        words[lang] = {w.lower() for t in texts for w in _WORD.findall(t.replace("{", " {").replace("}", "} "))
                       if not (t and "{" + w + "}" in t)}
    return {lang: frozenset(ws - set().union(*(words[o] for o in LANGS if o != lang))) for lang, ws in words.items()}


def detect_language(text: str) -> str | None:
    """The language code (``en``, ``fr``, ``es``, ``de``, ``it``, ``pt``) whose own words ``text`` uses most;
    None when it uses none of them or two languages tie."""
    tokens = [w.lower() for w in _WORD.findall(text)]
    scores = {lang: sum(t in ws for t in tokens) for lang, ws in _distinctive_words().items()}
    best = max(scores.values())
    winners = [lang for lang, s in scores.items() if s == best]
    return winners[0] if best > 0 and len(winners) == 1 else None
