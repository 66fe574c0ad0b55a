"""Post-training data from the hub, as the book's conversations: the same code path as pretraining's.

The recipe's post-training datasets (``smolbook.recipe.post_training``) come in four row formats; each
becomes what TRL takes and what the offline chat data (``smolbook.data.chat``) already writes:

* ``sharegpt`` (OpenThoughts3): ``conversations: [{from, value}]``;
* ``nemotron`` (Llama-Nemotron v1.1): ``input`` (messages), ``output``, ``system_prompt`` "detailed thinking on/off";
* ``messages`` (smoltalk2 Mid/SFT): ``messages: [{role, content}]`` (+ ``chat_template_kwargs``);
* ``preference`` (Tulu 3, smoltalk2 Preference): ``chosen`` / ``rejected`` full conversations sharing a prompt.

Out come ``{"messages", "mode", "chat_template_kwargs"}`` rows (TRL's conversational format; ``mode`` is
``think`` or ``no_think``) or, for preferences, ``{"prompt", "chosen", "rejected", "mode",
"chat_template_kwargs"}`` (TRL's conversational preference format). A malformed row (missing column,
unknown role, empty content, a think trace that never closes, chosen and rejected prompts that differ)
is a :class:`SmolbookError` naming the dataset, split and row: a row is never dropped silently.

    src = chat_source("OpenThoughts3-1.2M")            # how the recipe dataset is read
    sft = released_source("sft")                        # smoltalk2 SFT, the mixture SmolLM3 was trained on
    ds = open_chat_dataset(src)                         # streamed (datasets.IterableDataset), converted lazily
    next(iter(ds))                                      # {"messages": [...], "mode": "think", ...}

Datasets are opened with ``datasets.load_dataset(hub_id, config, split=..., streaming=True)``, the call
:func:`smolbook.data.sources.open_hub_dataset` makes for pretraining, so a local folder with the hub's
layout (a README.md ``configs:`` block, parquet or JSONL files) loads the same way: that is what the tests do.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from smolbook.chat import check_messages
from smolbook.data.chat import template_kwargs
from smolbook.data.conversations import CURRENT_DATE, MODES
from smolbook.data.sources import HubUnreachable, offline_scales
from smolbook.errors import SmolbookError
from smolbook.recipe.post_training import load_post_training

FORMATS = ("sharegpt", "nemotron", "messages", "preference")
# The columns each format needs (checked on the first row, then on every row as it is converted).
REQUIRED_COLUMNS = {"sharegpt": ("conversations",), "nemotron": ("input", "output", "system_prompt"),
                    "messages": ("messages",), "preference": ("chosen", "rejected")}
# ShareGPT speaker names -> the template's roles. function_call turns are the assistant calling a tool.
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                  "assistant": "assistant", "function_call": "assistant", "tool": "tool", "function_response": "tool",
                  "observation": "tool"}
# Nemotron's mode switch is a system prompt; SmolLM3's is the template's enable_thinking (or a /think flag).
NEMOTRON_MODES = {"detailed thinking on": "think", "detailed thinking off": "no_think"}
NEMOTRON_REASONING = {"on": "think", "off": "no_think"}
_LLAMA3_TURN = re.compile(r"<\|start_header_id\|>(\w+)<\|end_header_id\|>\n\n(.*?)(?:<\|eot_id\|>|$)", re.S)
_EMPTY_THINK = re.compile(r"^\s*<think>\s*</think>\s*")
TEMPLATE_KWARGS = ("xml_tools", "python_tools")  # the row keywords the template reads besides the mode


@dataclass(frozen=True)
class ChatSource:
    """How one post-training dataset is read: where it lives, its row format, which rows the recipe uses.

    ``splits=None`` means every split of ``config`` (smoltalk2 names a split per source dataset); they are
    interleaved in proportion to their sizes, i.e. the released mixture. ``where`` keeps the rows whose
    columns equal the values (a selection the recipe makes, e.g. Nemotron's v1.1 reasoning-on rows);
    ``mode`` is the mode every row must be in (``None``: read from the row)."""

    name: str
    hub_id: str
    format: str
    config: str | None = None
    splits: tuple[str, ...] | None = ("train",)
    where: tuple[tuple[str, str], ...] = ()
    mode: str | None = None

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise SmolbookError(f"chat source '{self.name}': format '{self.format}' is not one of {', '.join(FORMATS)}")
        if self.mode is not None and self.mode not in MODES:
            raise SmolbookError(f"chat source '{self.name}': mode '{self.mode}' is not one of {', '.join(MODES)}")

    def describe(self, split: str | None = None) -> str:
        parts = [self.hub_id] + ([f"config {self.config}"] if self.config else []) + ([f"split {split}"] if split else [])
        return f"dataset '{self.name}' ({', '.join(parts)})"


# What the recipe's free-text `subset` and `role` say, as loader settings (hub layouts from the dataset cards):
# smoltalk2 has configs Mid / SFT / Preference with one split per source; Nemotron's SFT config has splits
# code / math / science / chat / safety, v1.1 added math and code rows marked version "v1.1".
_READERS: dict[str, dict[str, Any]] = {
    "OpenThoughts3-1.2M": {"format": "sharegpt"},
    "Llama-Nemotron-Post-Training-Dataset-v1.1-R1": {
        "format": "nemotron", "config": "SFT", "splits": ("math", "code"),
        "where": (("version", "v1.1"), ("reasoning", "on")), "mode": "think"},
    "smoltalk2-Mid": {"format": "messages", "config": "Mid", "splits": None},
    "smoltalk2-SFT": {"format": "messages", "config": "SFT", "splits": None},
    "tulu-3-8b-preference-mixture": {"format": "preference", "mode": "no_think"},
    "smoltalk2-Preference": {"format": "preference", "config": "Preference", "splits": None},
}
_NOT_DATASETS = {"teacher-traces": "a teacher model, not a dataset: its traces are generated (smolbook.teacher)"}


def chat_source(dataset: Any) -> ChatSource:
    """The :class:`ChatSource` of a recipe post-training dataset (a ``PostDataset`` or its name)."""
    name = dataset if isinstance(dataset, str) else dataset.name
    known = {d.name: d for _, d in load_post_training().datasets()}
    if name in _NOT_DATASETS:
        raise SmolbookError(f"post-training entry '{name}' is {_NOT_DATASETS[name]}")
    if name not in known or name not in _READERS:
        raise SmolbookError(f"no hub reader for post-training dataset '{name}': choose one of {', '.join(_READERS)} "
                            f"(or add it to smolbook.data.hub_chat._READERS)")
    return ChatSource(name=name, hub_id=known[name].hub_id, **_READERS[name])


def chat_sources(section: str | None = None) -> list[ChatSource]:
    """Every readable post-training dataset of the recipe (of one section: mid_training, sft, apo)."""
    return [chat_source(d) for s, d in load_post_training().datasets()
            if (section is None or s == section) and d.name not in _NOT_DATASETS]


def released_source(section: str) -> ChatSource:
    """The section's data as the SmolLM3 team released it (the recipe's ``hub_id_source: released`` entry:
    smoltalk2 Mid / SFT / Preference): what a small/full run of mid_training, sft or apo reads by default."""
    found = [d for d in load_post_training().section(section).datasets if d.hub_id_source == "released"]
    if not found:
        raise SmolbookError(f"post-training section '{section}' has no released dataset: use chat_sources('{section}')")
    return chat_source(found[0])


# ── one row -> the book's format ───────────────────────────────────────────────────────────────

class _Malformed(Exception):
    """A row the converter cannot read; re-raised as a SmolbookError naming the dataset and row."""


def _column(row: dict, name: str) -> Any:
    if row.get(name) is None:
        raise _Malformed(f"missing column '{name}' (columns: {', '.join(row) or 'none'})")
    return row[name]


def _think_state(content: str) -> str:
    """'none', 'empty' (<think></think>), 'closed' (a trace), or raise for a trace that never closes."""
    opens, closes = content.count("<think>"), content.count("</think>")
    if opens == 0 and closes == 0:
        return "none"
    if opens != 1 or closes != 1 or content.index("<think>") > content.index("</think>"):
        what = "never closes" if opens > closes else "is not one <think>…</think> block"
        raise _Malformed(f"a think trace {what} ({opens} <think>, {closes} </think>)")
    return "closed" if content.split("<think>", 1)[1].split("</think>", 1)[0].strip() else "empty"


def _copy(messages: list) -> list:
    """Shallow copies of the message dicts (what is not a dict is left for check_messages to name)."""
    return [dict(m) if isinstance(m, dict) else m for m in messages]


def _check_turns(messages: list[dict]) -> list[dict]:
    """Roles and content checked with the chat module's own rules, plus what a training row needs."""
    first = messages[0] if messages and isinstance(messages[0], dict) else {}
    if first.get("role") == "system" and isinstance(first.get("content"), str) and not first["content"].strip():
        messages = messages[1:]  # an empty system prompt says nothing: the template writes its default one
    try:
        check_messages(messages, source="messages")
    except SmolbookError as e:
        raise _Malformed(str(e)) from None
    for i, m in enumerate(messages):
        if not m["content"].strip():
            raise _Malformed(f"message {i} ({m['role']}) has empty content")
        if m["role"] == "assistant":
            _think_state(m["content"])
    return messages


def _flag_mode(messages: list[dict]) -> str | None:
    """The mode a /think or /no_think flag in the system prompt forces (the template lets it win)."""
    if messages and messages[0]["role"] == "system":
        text = messages[0]["content"]
        return "no_think" if "/no_think" in text else "think" if "/think" in text else None
    return None


def _settle_mode(answers: list[dict], declared: str | None, flag: str | None) -> str:
    """The row's mode, checked against its final answers; in no_think an empty think block is dropped
    (the template writes it)."""
    states = [_think_state(a["content"]) for a in answers]
    detected = "think" if states[0] == "closed" else "no_think"
    mode = flag or declared or detected
    if mode == "think" and states[0] != "closed":
        raise _Malformed("the row is in think mode but its answer holds no <think>…</think> trace")
    if mode == "no_think":
        if "closed" in states:
            raise _Malformed("the row is in no_think mode but an answer holds a think trace")
        for a in answers:
            a["content"] = _EMPTY_THINK.sub("", a["content"], count=1)
    return mode


def _kwargs(row: dict, mode: str) -> dict:
    """Fixed keys (Arrow needs one schema): the mode, the row's tools, the book's fixed date."""
    given = row.get("chat_template_kwargs") or {}
    return {"enable_thinking": mode == "think", "current_date": CURRENT_DATE,
            **{k: (list(given[k]) if given.get(k) else None) for k in TEMPLATE_KWARGS}}


def _declared(row: dict, source_mode: str | None) -> str | None:
    given = (row.get("chat_template_kwargs") or {}).get("enable_thinking")
    row_mode = None if given is None else ("think" if given else "no_think")
    if source_mode and row_mode and row_mode != source_mode:
        raise _Malformed(f"enable_thinking={given} contradicts the dataset's mode '{source_mode}'")
    return row_mode or source_mode


def _conversation(messages: list[dict], row: dict, declared: str | None) -> dict:
    messages = _check_turns(_copy(messages))
    if messages[-1]["role"] != "assistant":
        raise _Malformed(f"the conversation ends with a {messages[-1]['role']} turn, not an assistant answer")
    mode = _settle_mode([messages[-1]], declared, _flag_mode(messages))
    return {"messages": messages, "mode": mode, "chat_template_kwargs": _kwargs(row, mode)}


def sharegpt_row(row: dict, mode: str | None = None) -> dict:
    """``conversations: [{from, value}]`` -> messages; the mode from the answer's think trace."""
    turns = _column(row, "conversations")
    if not isinstance(turns, list) or not turns:
        raise _Malformed("'conversations' must be a non-empty list of {from, value}")
    messages = []
    for i, t in enumerate(turns):
        if not isinstance(t, dict) or "from" not in t or "value" not in t:
            raise _Malformed(f"turn {i} must be an object with 'from' and 'value'")
        if t["from"] not in SHAREGPT_ROLES:
            raise _Malformed(f"turn {i} has unknown speaker {t['from']!r}: expected one of {', '.join(SHAREGPT_ROLES)}")
        value = t["value"]
        if t["from"] == "function_call" and isinstance(value, str) and "<tool_call>" not in value:
            value = f"<tool_call>\n{value.strip()}\n</tool_call>"  # the template's XML call form
        messages.append({"role": SHAREGPT_ROLES[t["from"]], "content": value})
    return _conversation(messages, row, _declared(row, mode))


def nemotron_row(row: dict, mode: str | None = None) -> dict:
    """Nemotron ``input``/``output``: the "detailed thinking on/off" system prompt sets the mode and is
    dropped (SmolLM3 switches modes with the template's keyword, not a system prompt)."""
    given = _column(row, "input")
    output = _column(row, "output")
    system = _column(row, "system_prompt")
    if isinstance(given, str):  # early releases: one Llama-3-formatted string (or plain text)
        turns = _LLAMA3_TURN.findall(given)
        if turns and turns[-1][0] == "assistant" and not turns[-1][1].strip():
            turns = turns[:-1]  # the open assistant header the output continues
        given = [{"role": r, "content": c} for r, c in turns] if turns else [{"role": "user", "content": given}]
    if not isinstance(given, list) or not isinstance(output, str):
        raise _Malformed("'input' must be a list of {role, content} (or text) and 'output' a string")
    if str(system).strip() not in NEMOTRON_MODES:
        raise _Malformed(f"system_prompt {system!r} is not one of {', '.join(map(repr, NEMOTRON_MODES))}")
    row_mode = NEMOTRON_MODES[str(system).strip()]
    reasoning = row.get("reasoning")
    if reasoning is not None and NEMOTRON_REASONING.get(str(reasoning)) != row_mode:
        raise _Malformed(f"reasoning={reasoning!r} contradicts system_prompt {system!r}")
    if mode and row_mode != mode:
        raise _Malformed(f"system_prompt {system!r} contradicts the dataset's mode '{mode}'")
    def mode_prompt(m: Any) -> bool:  # the switch itself, when a row also carries it among its messages
        return isinstance(m, dict) and m.get("role") == "system" and str(m.get("content", "")).strip() in NEMOTRON_MODES

    messages = [m for m in _copy(given) if not mode_prompt(m)]
    messages.append({"role": "assistant", "content": output.replace("<|eot_id|>", "").strip()})
    return _conversation(messages, row, row_mode)


def messages_row(row: dict, mode: str | None = None) -> dict:
    """``messages`` rows (smoltalk2): checked; the mode from ``chat_template_kwargs.enable_thinking``."""
    messages = _column(row, "messages")
    if not isinstance(messages, list):
        raise _Malformed("'messages' must be a list of {role, content}")
    return _conversation(messages, row, _declared(row, mode))


def preference_row(row: dict, mode: str | None = None) -> dict:
    """``chosen``/``rejected`` full conversations -> the shared prompt and one assistant answer each.
    (A row already split, with ``prompt`` a message list, is checked the same way.)"""
    chosen, rejected = _column(row, "chosen"), _column(row, "rejected")
    if not isinstance(chosen, list) or not isinstance(rejected, list) or not chosen or not rejected:
        raise _Malformed("'chosen' and 'rejected' must be non-empty lists of {role, content}")
    prompt = row.get("prompt")
    if isinstance(prompt, list):
        chosen, rejected = [*prompt, *chosen], [*prompt, *rejected]
    if _copy(chosen[:-1]) != _copy(rejected[:-1]):
        raise _Malformed("chosen and rejected have different prompts (every message but the last must agree)")
    sides = []
    for name, conv in (("chosen", chosen), ("rejected", rejected)):
        try:
            conv = _check_turns(_copy(conv))
        except _Malformed as e:
            raise _Malformed(f"{name}: {e}") from None
        if len(conv) < 2 or conv[-1]["role"] != "assistant":
            raise _Malformed(f"{name} must be a prompt followed by one assistant answer")
        sides.append(conv)
    prompt_msgs, good, bad = sides[0][:-1], sides[0][-1], sides[1][-1]
    settled = _settle_mode([good, bad], _declared(row, mode), _flag_mode(prompt_msgs))
    return {"prompt": prompt_msgs, "chosen": [good], "rejected": [bad], "mode": settled,
            "chat_template_kwargs": _kwargs(row, settled)}


CONVERTERS: dict[str, Callable[[dict, str | None], dict]] = {
    "sharegpt": sharegpt_row, "nemotron": nemotron_row, "messages": messages_row, "preference": preference_row}


def convert_row(source: ChatSource, row: dict, index: int, split: str | None = None) -> dict:
    """One hub row in the book's format; a SmolbookError naming the dataset, split and row otherwise."""
    try:
        return CONVERTERS[source.format](row, source.mode)
    except _Malformed as e:
        raise SmolbookError(f"{source.describe(split)}, row {index}: malformed {source.format} row: {e}. Rows are "
                            f"never skipped: fix the data (or point the recipe's hub_id at a corrected copy)") from None


# ── opening a dataset (streamed by default) ────────────────────────────────────────────────────

def _hub_failure(source: ChatSource, e: BaseException) -> SmolbookError:
    """The hub is unreachable (or the repo/config is wrong): the same message pretraining gives."""
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:240]
    return HubUnreachable(
        f"cannot stream {source.describe()} from the Hugging Face hub: {type(e).__name__}: {reason}. The small and "
        f"full scales stream the recipe's post-training data from the hub; without it, run an offline scale "
        f"({', '.join(offline_scales())}), which generates its own conversations (smolbook.data.chat).")


def split_names(source: ChatSource) -> list[str]:
    """The splits read: the source's own, or every split of its config (asked of the hub)."""
    import datasets

    if source.splits is not None:
        return list(source.splits)
    try:
        return list(datasets.get_dataset_split_names(source.hub_id, source.config))
    except Exception as e:  # connection, offline mode, missing config: one clear message
        raise _hub_failure(source, e) from None


def _split_sizes(source: ChatSource, splits: list[str]) -> list[float] | None:
    """Rows per split from the dataset card's metadata (what the hub lists), None where it is not known."""
    import datasets

    try:
        info = datasets.load_dataset_builder(source.hub_id, source.config).info.splits or {}
        sizes = [float(info[s].num_examples) for s in splits]
    except Exception:  # no metadata: fall back to equal shares (said in open_chat_dataset's docstring)
        return None
    return sizes if all(n > 0 for n in sizes) else None


def _open_split(source: ChatSource, split: str, streaming: bool) -> Any:
    import datasets

    try:
        ds = datasets.load_dataset(source.hub_id, source.config, split=split, streaming=streaming)
        first = next(iter(ds), None)
    except SmolbookError:
        raise
    except Exception as e:
        raise _hub_failure(source, e) from None
    if first is None:
        raise SmolbookError(f"{source.describe(split)} has no rows")
    missing = [c for c in REQUIRED_COLUMNS[source.format] if c not in first]
    if missing:
        raise SmolbookError(f"{source.describe(split)} has no column {', '.join(map(repr, missing))} (columns: "
                            f"{', '.join(first)}): it is not a {source.format} dataset; fix the reader in "
                            f"smolbook.data.hub_chat._READERS")
    columns = list(first)
    # The row index is taken before any selection, so an error names the row as the hub numbers it.
    ds = ds.map(lambda _, i: {"_row": i}, with_indices=True)
    for col, value in source.where:
        ds = ds.filter(lambda r, c=col, v=value: str(r.get(c)) == v)
    return ds.map(lambda r: convert_row(source, r, r["_row"], split), remove_columns=[*columns, "_row"])


def open_chat_dataset(source: ChatSource, *, streaming: bool = True, seed: int = 0, split: str | None = None) -> Any:
    """The dataset's rows in the book's format: a ``datasets.IterableDataset`` converted lazily as it is
    read (``streaming=False``: a ``datasets.Dataset``, converted once).

    Several splits are interleaved with probabilities proportional to their sizes as the dataset card lists
    them (the released mixture is their union), equal shares when the card lists none; the interleaving stops
    when the first split runs out. ``split`` reads one split alone."""
    import datasets

    splits = [split] if split else split_names(source)
    parts = [_open_split(source, s, streaming) for s in splits]
    if len(parts) == 1:
        return parts[0]
    sizes = _split_sizes(source, splits)
    probs = [n / sum(sizes) for n in sizes] if sizes else None
    return datasets.interleave_datasets(parts, probabilities=probs, seed=seed, stopping_strategy="first_exhausted")


def iter_chat_rows(source: ChatSource, limit: int | None = None, **kwargs: Any) -> Iterator[dict]:
    """The first ``limit`` converted rows (all when None), streamed."""
    for i, row in enumerate(open_chat_dataset(source, **kwargs)):
        if limit is not None and i >= limit:
            return
        yield row


def chat_text(row: dict, tokenizer: Any) -> str:
    """A converted conversation rendered with the tokenizer's chat template in its mode (mid-training's
    ChatML text)."""
    return tokenizer.apply_chat_template(row["messages"], tokenize=False, **template_kwargs(row, row["mode"]))
