"""The offline corpus: one domain per recipe category, held-out validation documents, and the
held-out evaluation tasks. Deterministic from a seed; sized by the scale.

Domain generators live beside this module (``text``, ``programs``, ``problems``); this module only
sizes and seeds them, so each domain draws from its own random stream and changing one never
shifts another.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from smolbook.data import longdocs, problems, programs, text
from smolbook.data.world import LANGS, World, build_world

DOMAINS = ("web", "multilingual-web", "code", "math", "reasoning")
EVAL_TASKS = ("cloze", "arithmetic", "code_output", "translation")
# Bump when a generator changes: it is part of the cache fingerprint (prepare rebuilds).
GENERATOR_VERSION = 3  # 3: long documents (restatements and quotes far apart) in web, code, reasoning


@dataclass
class Corpus:
    """Rows (dicts with at least ``text``) per domain and split, and evaluation rows per task."""

    train: dict[str, list[dict]] = field(default_factory=dict)
    valid: dict[str, list[dict]] = field(default_factory=dict)
    evals: dict[str, list[dict]] = field(default_factory=dict)
    world: World | None = None


def _rng(seed: int, name: str) -> random.Random:
    # A separate stream per (seed, part): string seeds are hashed deterministically by random.Random.
    return random.Random(f"smolbook|{seed}|{name}")


def generate_corpus(docs_per_domain: int, eval_examples: int, seed: int = 0) -> Corpus:
    """Generate every domain (``docs_per_domain`` training documents each, plus
    :func:`smolbook.data.longdocs.n_long` long ones in web, code and reasoning), validation documents
    (a tenth as many, at least 8) and ``eval_examples`` rows of each evaluation task."""
    n, n_valid = docs_per_domain, max(8, docs_per_domain // 10)
    world = build_world(_rng(seed, "world"), n_people=max(24, n // 4, eval_examples))
    ar = problems.Arithmetic(seed)
    c = Corpus(world=world)
    c.train["web"] = text.web_docs(_rng(seed, "web"), world, n)
    c.train["multilingual-web"] = text.multilingual_docs(_rng(seed, "multilingual"), world, n)
    c.train["code"] = programs.code_docs(_rng(seed, "code"), n, avoid=ar.is_heldout)
    c.train["math"] = problems.math_docs(_rng(seed, "math"), n, ar)
    c.train["reasoning"] = problems.reasoning_docs(_rng(seed, "reasoning"), n, ar)
    # Long documents from their own streams (adding them shifts no other document): a few per domain.
    rng_long = _rng(seed, "long")
    for _ in range(longdocs.n_long(n)):
        c.train["web"].append(longdocs.long_web_doc(rng_long, world))
        c.train["code"].append(longdocs.long_code_doc(rng_long, avoid=ar.is_heldout))
        c.train["reasoning"].append(longdocs.long_reasoning_doc(rng_long, ar))

    c.valid["web"] = text.heldout_docs(_rng(seed, "valid-web"), world, n_valid, ("en",))
    c.valid["multilingual-web"] = text.heldout_docs(_rng(seed, "valid-ml"), world, n_valid, LANGS[1:])
    seen_code = {d["text"] for d in c.train["code"]}
    c.valid["code"] = [d for d in programs.code_docs(_rng(seed, "valid-code"), 2 * n_valid, avoid=ar.is_heldout)
                       if d["text"] not in seen_code][:n_valid]
    seen_math = {d["text"] for d in c.train["math"]}
    c.valid["math"] = [d for d in problems.math_docs(_rng(seed, "valid-math"), 2 * n_valid, ar)
                       if d["text"] not in seen_math][:n_valid]
    seen_r = {d["text"] for d in c.train["reasoning"]}
    c.valid["reasoning"] = [d for d in problems.reasoning_docs(_rng(seed, "valid-reasoning"), 2 * n_valid, ar)
                            if d["text"] not in seen_r][:n_valid]

    c.evals["cloze"] = text.cloze_eval(_rng(seed, "eval-cloze"), world, eval_examples)
    c.evals["arithmetic"] = problems.arithmetic_eval(_rng(seed, "eval-arith"), eval_examples, ar)
    c.evals["code_output"] = programs.code_output_eval(_rng(seed, "eval-code"), eval_examples,
                                                       programs.training_programs(c.train["code"] + c.valid["code"]))
    c.evals["translation"] = text.translation_eval(_rng(seed, "eval-translation"), world, eval_examples)
    for split in (c.train, c.valid):
        for dom, rows in split.items():
            for i, r in enumerate(rows):
                r["id"] = f"{dom}-{i}"
    return c
