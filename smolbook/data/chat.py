"""Offline post-training conversations: every kind, both modes, a training and a held-out split.

    from smolbook.data.chat import build_chat_data
    chat = build_chat_data("tiny")              # ChatData: train/heldout datasets per kind
    chat.train["tools_xml"][0]                  # {"messages": [...], "chat_template_kwargs": {...}, ...}
    mixture = chat.mixture()                    # the dual-mode SFT mixture, shuffled, for TRL's SFTTrainer

Rows carry ``messages`` and ``chat_template_kwargs`` (``enable_thinking``, ``xml_tools``/``python_tools``,
a fixed ``current_date``), which TRL's SFTTrainer passes to the chat template as they are, plus what the
evaluations and the teacher read: ``kind``, ``mode``, ``lang``, ``answer``, ``target_turn`` (the assistant
turn an evaluation scores), ``solution_reasoning``/``solution_answer`` (the generator's solution of that
turn), ``expected_call`` and ``instructions`` (JSON, empty when the kind has none) and ``entities``.
The generators are in :mod:`smolbook.data.conversations`.
"""
from __future__ import annotations

import functools

import random
from dataclasses import dataclass, field
from typing import Any

from smolbook.chat import check_messages, parse_completion, parse_tool_calls, render
from smolbook.data import conversations, programs, problems
from smolbook.data.conversations import KINDS, MODES, Sides, heldout_cities, program_source, realise
from smolbook.data.corpus import Corpus, generate_corpus
from smolbook.errors import SmolbookError
from smolbook.scales import Scale, get_scale

SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class ChatSizes:
    """Conversations per kind in each split (half of them in each mode)."""

    train_per_kind: int
    heldout_per_kind: int


def chat_sizes(scale: str | Scale) -> ChatSizes:
    """Sizes from the scale's corpus fields: half a domain's documents per kind for training, one
    evaluation task's size per kind held out. Hub scales (no offline corpus) get 2,000 / 500."""
    s = get_scale(scale) if isinstance(scale, str) else scale
    if s.corpus_docs_per_domain <= 0:
        return ChatSizes(2000, s.eval_examples_per_task or 500)
    return ChatSizes(max(16, s.corpus_docs_per_domain // 2), max(8, s.eval_examples_per_task))


@dataclass
class ChatData:
    """Training and held-out conversations per kind (``datasets.Dataset`` each)."""

    sizes: ChatSizes
    seed: int
    train: dict[str, Any] = field(default_factory=dict)
    heldout: dict[str, Any] = field(default_factory=dict)

    def mixture(self, kinds: tuple[str, ...] = KINDS, seed: int | None = None) -> Any:
        """The training conversations of ``kinds`` in one shuffled dataset (both modes): the SFT mixture."""
        import datasets
        return datasets.concatenate_datasets([self.train[k] for k in kinds]).shuffle(
            seed=self.seed if seed is None else seed)

    def heldout_set(self, kinds: tuple[str, ...] = KINDS, per_kind: int | None = None) -> Any:
        """The held-out conversations of ``kinds`` in one dataset (what the chat evaluations score); ``per_kind``
        keeps the first rows of each kind (modes alternate, so both stay), for a quicker evaluation."""
        import datasets
        parts = [self.heldout[k] for k in kinds]
        if per_kind is not None:
            parts = [d.select(range(min(per_kind, len(d)))) for d in parts]
        return datasets.concatenate_datasets(parts)

    def table(self) -> list[dict]:
        """One row per kind: training and held-out sizes, per mode."""
        return [{"kind": k, **{f"{split} {m}": sum(1 for r in getattr(self, split)[k]["mode"] if r == m)
                               for split in SPLITS for m in MODES}} for k in self.train]


def _rng(seed: int, *parts: str) -> random.Random:
    return random.Random("|".join(["smolbook", str(seed), "chat", *parts]))


def _eval_programs(corpus: Corpus) -> set[str]:
    return {row["prompt"].split("```python\n", 1)[1].split("```", 1)[0] for row in corpus.evals.get("code_output", [])}


def split_sides(corpus: Corpus, seed: int) -> dict[str, Sides]:
    """What each split may draw: people, cities, arithmetic triples and programs, disjoint between splits.
    Held-out programs are in no training document of the corpus; training programs are in no held-out
    conversation and no held-out evaluation of the corpus."""
    world = corpus.world
    if world is None:
        raise SmolbookError("the corpus has no world: build it with smolbook.data.generate_corpus")
    held = heldout_cities(world, seed)
    corpus_programs = programs.training_programs(corpus.train.get("code", []) + corpus.valid.get("code", []))
    heldout_programs: set[str] = set()
    ar = problems.Arithmetic(seed)
    return {
        "heldout": Sides(world.heldout_people, [c for c in world.cities if c.name in held],
                         conversations._MirroredArithmetic(seed), program_source(heldout_programs, corpus_programs)),
        # Training programs skip every held-out one: the held-out split is drawn first (see build_chat_data).
        "train": Sides(world.people, [c for c in world.cities if c.name not in held], ar,
                       program_source(set(), heldout_programs, _eval_programs(corpus))),
    }


def generate_rows(kind: str, n: int, sides: Sides, corpus: Corpus, rng: random.Random) -> list[dict]:
    """``n`` rows of ``kind``, alternating think and no_think (a system flag may fix a row's mode)."""
    if kind not in conversations.GENERATORS:
        raise SmolbookError(f"unknown conversation kind {kind!r}; the kinds are {', '.join(KINDS)}")
    gen = conversations.GENERATORS[kind]
    return [realise(gen(rng, sides, corpus.world), kind, MODES[i % 2]) for i in range(n)]


def build_chat_data(scale: str | Scale = "tiny", seed: int = 0, corpus: Corpus | None = None,
                    sizes: ChatSizes | None = None) -> ChatData:
    """Every kind's training and held-out conversations, from ``corpus``'s world (generated for the scale
    when not given, as :func:`smolbook.data.prepare` does)."""
    import datasets
    s = get_scale(scale) if isinstance(scale, str) else scale
    sizes = sizes or chat_sizes(s)
    if corpus is None:
        corpus = generate_corpus(s.corpus_docs_per_domain or 1500, s.eval_examples_per_task or 500, seed)
    sides = split_sides(corpus, seed)
    out = ChatData(sizes, seed)
    for split, n in (("heldout", sizes.heldout_per_kind), ("train", sizes.train_per_kind)):
        for kind in KINDS:
            rows = generate_rows(kind, n, sides[split], corpus, _rng(seed, kind, split))
            getattr(out, split)[kind] = chat_dataset(rows, source=f"{split}/{kind}")
    return out


@functools.lru_cache(maxsize=4)
def shared_chat_data(scale: str, seed: int) -> ChatData:
    """:func:`build_chat_data` once per process and (scale, corpus seed): a chapter that trains nine SFT runs, or
    the run builders and the evaluations of one chapter, would otherwise regenerate the same conversations each
    time (3 s each at ``tiny``). Callers only read it (``mixture`` and ``heldout_set`` return new datasets)."""
    return build_chat_data(scale, seed=seed)


# ── checking a conversation ─────────────────────────────────────────────────────────────────

def check_conversation(messages: Any, source: str = "conversation") -> list[dict]:
    """Check that ``messages`` is a conversation SFT can train on, or raise :class:`SmolbookError`.

    Beyond the template's own checks (known roles, string content, one leading system prompt): every
    assistant turn says something, every tool result answers a tool call of the assistant turn before
    it, and the conversation ends with the assistant (the turn the loss trains).
    """
    check_messages(messages, source)
    for i, m in enumerate(messages):
        where = f"{source}: message {i}"
        if m["role"] == "assistant":
            completion = parse_completion(m["content"])
            if not m["content"].strip() or not (completion.answer or completion.reasoning):
                raise SmolbookError(f"{where} is an empty assistant turn; drop the conversation or write the answer")
        if m["role"] == "tool":
            before = messages[i - 1] if i > 0 else None
            if before is None or before["role"] not in ("assistant", "tool") or (
                    before["role"] == "assistant" and not parse_tool_calls(parse_completion(before["content"]).answer)):
                raise SmolbookError(f"{where} is a tool result without a tool call before it; "
                                    "put the assistant turn that makes the call first")
    if messages[-1]["role"] != "assistant":
        raise SmolbookError(f"{source}: the last message is a {messages[-1]['role']} turn; "
                            "a training conversation ends with the assistant's answer")
    return messages


def chat_dataset(rows: list[dict], source: str = "rows") -> Any:
    """``rows`` as a ``datasets.Dataset`` after checking every conversation (the error names the row)."""
    import datasets
    if not rows:
        raise SmolbookError(f"{source}: no conversations to make a dataset of")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "messages" not in row:
            raise SmolbookError(f"{source}: row {i} has no 'messages'")
        check_conversation(row["messages"], f"{source}: row {i}")
    return datasets.Dataset.from_list(rows)


def prompt_messages(row: dict) -> list[dict]:
    """The conversation up to the turn an evaluation scores (``target_turn``): what a model continues."""
    return list(row["messages"][: row["target_turn"]])


def template_kwargs(row: dict, mode: str | None = None) -> dict:
    """The row's chat-template keywords, the ones it does not use left out; ``mode`` sets ``enable_thinking``
    (a /think or /no_think flag in the row's system prompt still wins, as the template decides)."""
    kwargs = {k: v for k, v in (row.get("chat_template_kwargs") or {}).items() if v is not None}
    if mode is not None:
        if mode not in MODES:
            raise SmolbookError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        kwargs["enable_thinking"] = mode == "think"
    return kwargs


def render_row(row: dict, tokenizer: Any = None, add_generation_prompt: bool = False) -> str:
    """A row's conversation as the chat template writes it, with the row's own keywords."""
    kwargs = template_kwargs(row)
    date = kwargs.pop("current_date", None)
    return render(row["messages"], date=date, tokenizer=tokenizer, add_generation_prompt=add_generation_prompt, **kwargs)


def describe_row(row: dict, width: int = 160) -> str:
    """A row as short readable lines (role: content, each cut to ``width`` characters), for a chapter to show."""
    thinking = f"enable_thinking={template_kwargs(row).get('enable_thinking')}"
    tools = "xml tools" if row["chat_template_kwargs"].get("xml_tools") else \
        "python tools" if row["chat_template_kwargs"].get("python_tools") else "no tools"
    lines = [f"[{row['kind']} · {row['mode']} · {row['lang']} · {tools} · {thinking}]"]
    for m in row["messages"]:
        text = " ".join(m["content"].split())
        lines.append(f"  {m['role']:9s} {text[:width] + ('…' if len(text) > width else '')}")
    return "\n".join(lines)
