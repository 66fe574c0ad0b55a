"""The model card's numbers and the released evaluation, as the book can rerun it at ``full``.

* :func:`model_card` — the SmolLM3-3B model card's tables (``model_card.yaml``, transcribed with their source).
* :func:`released_tasks` — the released lighteval task lists, each line classified: a task lighteval 0.13 ships
  (checked against its own registry, offline), a ``custom|`` task whose definition was never published (listed,
  not invented), or a task lighteval cannot check here (the multilingual tasks need ``lighteval[multilingual]``).
* :func:`full_commands` — ``lighteval vllm`` commands for a checkpoint: the base list, and the instruct list in
  both modes (``/think`` and ``/no_think`` as the system prompt, which the SmolLM3 template reads: lighteval 0.13
  has no ``chat_template_kwargs``), with the recipe's sampling (``post_training.yaml``, inference).

The released lists use lighteval's older four-field syntax (``suite|task|fewshot|truncate``), which 0.13 no
longer parses; 0.13 reads ``task|fewshot``.
"""
from __future__ import annotations

import re
import sys
import types
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from smolbook.errors import SmolbookError
from smolbook.recipe.post_training import load_post_training

MODEL_CARD_FILE = Path(__file__).with_name("model_card.yaml")
# lighteval 0.13 task modules that reach the network when imported (verified offline here).
NETWORK_MODULES = ("lighteval.tasks.tasks.tiny_benchmarks", "lighteval.tasks.tasks.mt_bench.main",
                   "lighteval.tasks.tasks.mix_eval.main")
MODES = {"think": "/think", "no_think": "/no_think"}


@lru_cache(maxsize=1)
def model_card() -> dict[str, Any]:
    """The transcribed model card: ``tables`` (name -> models, rows of category/metric/scores), ``serving``,
    ``released_task_lists``."""
    return yaml.safe_load(MODEL_CARD_FILE.read_text())


def card_rows(table: str, model: str | None = None) -> list[dict]:
    """One table of the card as flat rows {category, metric, score} for ``model`` (default: SmolLM3, the first)."""
    tables = model_card()["tables"]
    if table not in tables:
        raise SmolbookError(f"the model card has no table {table!r}: it has {', '.join(tables)}")
    t = tables[table]
    model = model or t["models"][0]
    return [{"category": r["category"], "metric": r["metric"], "score": r["scores"].get(model)} for r in t["rows"]]


@dataclass(frozen=True)
class ReleasedTask:
    """One line of a released task list."""

    line: str            # as released: suite|task|fewshot|truncate
    suite: str
    task: str
    fewshot: int
    spec: str            # lighteval 0.13's syntax: task|fewshot
    status: str          # "builtin" | "custom, definition not public" | "not checked: ..." | "not in lighteval 0.13"


def parse_line(line: str) -> tuple[str, str, int, str]:
    """``suite|task|fewshot|truncate`` -> (suite, task, fewshot, ``task|fewshot``)."""
    parts = line.strip().split("|")
    if len(parts) != 4 or not parts[2].isdigit():
        raise SmolbookError(f"released task line {line!r} is not suite|task|fewshot|truncate")
    return parts[0], parts[1], int(parts[2]), f"{parts[1]}|{parts[2]}"


@lru_cache(maxsize=1)
def lighteval_task_names() -> frozenset[str]:
    """Every task name lighteval 0.13's registry knows offline: its built-in modules loaded with the three that
    reach the network replaced by empty ones, their names read from their source instead."""
    stubbed = {}
    for name in NETWORK_MODULES:
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.TASKS_TABLE = []
            sys.modules[name] = stubbed[name] = stub
    try:
        import importlib.util

        import nltk
        from lighteval.tasks.registry import Registry

        # the IFEval module downloads nltk's punkt at import: no download here (the names are all we read)
        download, nltk.download = nltk.download, lambda *a, **k: False
        try:
            names = set(Registry.load_all_task_configs(load_multilingual=False))
        finally:
            nltk.download = download
        for name in NETWORK_MODULES:
            spec = importlib.util.find_spec(name.rsplit(".", 1)[0]) if name.endswith(".main") else None
            path = Path(spec.submodule_search_locations[0]) / "main.py" if spec else \
                Path(importlib.util.find_spec("lighteval.tasks.tasks").submodule_search_locations[0]) / f"{name.rsplit('.', 1)[1]}.py"
            if path.is_file():
                names |= set(re.findall(r'name\s*=\s*"([^"]+)"', path.read_text()))
    finally:
        for name in stubbed:
            sys.modules.pop(name, None)
    return frozenset(names)


def _known(task: str, names: frozenset[str]) -> bool:
    # lighteval expands a superset (the part before ':') to its subtasks
    return task in names or any(n.split(":")[0] == task for n in names)


def released_tasks(which: str, check: bool = True) -> list[ReleasedTask]:
    """The released ``base`` or ``instruct`` task list, each line classified (``check``: against lighteval's
    registry; otherwise every non-custom line is left unchecked)."""
    lists = model_card()["released_task_lists"]
    if which not in ("base", "instruct"):
        raise SmolbookError(f"task list {which!r} is not base or instruct")
    names = lighteval_task_names() if check else frozenset()
    out = []
    for line in lists[which]:
        suite, task, fewshot, spec = parse_line(line)
        if suite == "custom":
            status = "custom, definition not public"
        elif not check:
            status = "not checked"
        elif _known(task, names):
            status = "builtin"
        elif re.match(r"(belebele|global_mmlu|flores200|mlmm_)", task):
            status = "not checked: a multilingual task (needs lighteval[multilingual])"
        else:
            status = "not in lighteval 0.13"
        out.append(ReleasedTask(line, suite, task, fewshot, spec, status))
    return out


@dataclass(frozen=True)
class FullCommand:
    """One runnable lighteval command and what it leaves out."""

    name: str
    command: str
    tasks: list[str]
    left_out: list[str]


def full_commands(checkpoint: str, output_dir: str = "runs/full/lighteval", check: bool = True,
                  max_model_length: int = 32768, max_new_tokens: int = 32768) -> list[FullCommand]:
    """``lighteval vllm`` commands for ``checkpoint``: the base list, then the instruct list in each mode.

    Only tasks lighteval ships run (``builtin``, or unchecked multilingual ones); ``custom|`` tasks are left out
    and named, since their definitions were never published."""
    post = load_post_training()
    temperature, top_p = post.value("inference", "temperature"), post.value("inference", "top_p")
    model = f"model_name={checkpoint},dtype=bfloat16,max_model_length={max_model_length},gpu_memory_utilization=0.8"
    out = []

    def command(name: str, tasks: list[ReleasedTask], model_args: str, extra: str = "") -> FullCommand:
        run = [t.spec for t in tasks if not t.status.startswith(("custom", "not in"))]
        left = [f"{t.line} ({t.status})" for t in tasks if t.status.startswith(("custom", "not in"))]
        cmd = f'lighteval vllm "{model_args}" "{",".join(run)}" --output-dir {output_dir}/{name} --save-details{extra}'
        return FullCommand(name, cmd, run, left)

    out.append(command("base", released_tasks("base", check), model))
    instruct = released_tasks("instruct", check)
    gen = f"generation_parameters={{temperature:{temperature},top_p:{top_p},max_new_tokens:{max_new_tokens}}}"
    for mode, flag in MODES.items():
        out.append(command(f"instruct_{mode}", instruct, f"{model},system_prompt={flag},{gen}"))
    return out
