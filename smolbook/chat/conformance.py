"""Checking smolbook's chat template against the released SmolLM3 template on many conversations.

The released template is reference material kept beside the repository (``../shared/reference``), never
copied into the project; :func:`find_reference` locates it and returns None when it is absent.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from smolbook.chat.template import CHAT_TEMPLATE, DATE_FORMAT, template_tokenizer

Case = tuple[list[dict], dict[str, Any]]  # (messages, template keywords)

_FRAGMENTS = ["Hello", " ", "\n", "\n\n", "/think", "/no_think", "/system_override", "<think>", "</think>",
              "Réponse 🙂", "{'a': 1}", "<tool_call>", "  ", "2+2=4"]
_TOOLS = [{"name": "get_weather", "parameters": {"city": "string"}}, {"name": "add", "parameters": {"a": "int"}},
          "def search(query: str) -> list: ..."]


def find_reference() -> Path | None:
    """The released SmolLM3 chat template in ``../shared/reference`` beside the repository, if present."""
    import smolbook

    path = Path(smolbook.__file__).resolve().parents[2] / "shared" / "reference" / "smollm3_chat_template.jinja"
    return path if path.is_file() else None


def sample_cases(n: int, seed: int) -> list[Case]:
    """``n`` random conversations with random template flags: system prompts with and without /think,
    /no_think and /system_override, enable_thinking True/False/absent, XML/Python tools, tool turns,
    think blocks, and the generation prompt on or off."""
    rng = random.Random(seed)

    def text() -> str:
        return "".join(rng.choice(_FRAGMENTS) for _ in range(rng.randint(0, 6)))

    cases: list[Case] = []
    for _ in range(n):
        messages = [{"role": "system", "content": text()}] if rng.random() < 0.7 else []
        messages += [{"role": rng.choice(["user", "assistant", "tool"]), "content": text()}
                     for _ in range(rng.randint(1, 6))]
        kwargs: dict[str, Any] = {"add_generation_prompt": rng.random() < 0.5}
        thinking = rng.choice(["absent", True, False])
        if thinking != "absent":
            kwargs["enable_thinking"] = thinking
        for name in ("xml_tools", "python_tools"):
            if rng.random() < 0.3:
                kwargs[name] = rng.sample(_TOOLS, rng.randint(1, len(_TOOLS)))
        if rng.random() < 0.15:
            kwargs["tools"] = [t for t in _TOOLS if isinstance(t, dict)]
        cases.append((messages, kwargs))
    return cases


@dataclass(frozen=True)
class Conformance:
    """How many conversations rendered byte-identical with both templates, and the first that did not."""

    identical: int
    total: int
    first_mismatch: Case | None


def compare_with_reference(reference: str, cases: list[Case], tokenizer: Any = None) -> Conformance:
    """Render every case with the released template and with smolbook's, through ``apply_chat_template``.

    The released template reads the date from strftime_now; smolbook's is rendered both the same way and
    with today's date passed as ``current_date``: a case counts as identical only if all three agree.
    """
    tokenizer = tokenizer if tokenizer is not None else template_tokenizer()
    identical, first_mismatch = 0, None
    def render(template: str, **extra: Any) -> str:
        return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, **kwargs, **extra)

    for messages, kwargs in cases:
        while True:  # a render that straddles midnight is redone, not counted as a mismatch
            today = datetime.now().strftime(DATE_FORMAT)
            released, ours, dated = render(reference), render(CHAT_TEMPLATE), render(CHAT_TEMPLATE, current_date=today)
            if datetime.now().strftime(DATE_FORMAT) == today:
                break
        if released == ours == dated:
            identical += 1
        elif first_mismatch is None:
            first_mismatch = (messages, kwargs)
    return Conformance(identical, len(cases), first_mismatch)
