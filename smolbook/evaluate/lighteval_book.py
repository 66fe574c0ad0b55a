"""Every registered checkpoint of a run through the same lighteval suites: one table, win rates, the card beside it.

    rows = evaluate_registered("runs/tiny", "tiny")       # one row per checkpoint: every task's score
    rates = win_rates(rows, score_columns(rows))          # share of (task, other checkpoint) pairs each one wins

Each checkpoint runs once through lighteval (:func:`smolbook.evaluate.lighteval_run.evaluate_checkpoint`, the base
and chat suites in one pipeline) and through the long-context probe of the book (cloze with the fact far back in
the context, :mod:`smolbook.evaluate.longcontext`), at sizes the scale sets (:func:`eval_sizes`). Checkpoints
registered twice under two names (a stage's last checkpoint is also the run's final one) are evaluated once.
"""
from __future__ import annotations

import math
import os
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from smolbook.data import PreparedData, prepare
from smolbook.data.chat import KINDS
from smolbook.errors import SmolbookError
from smolbook.evaluate.lighteval_full import card_rows, model_card
from smolbook.evaluate.lighteval_run import evaluate_checkpoint, quiet_evaluation
from smolbook.evaluate.longcontext import cloze_at, reports
from smolbook.registry import registered_checkpoints
from smolbook.scales import Scale, get_scale


LONG_CONTEXT = "long_context"
CHAT = "chat"   # mean of the two modes' per-row correctness: the chain's verdicts read it


@dataclass(frozen=True)
class EvalSizes:
    """How much of each suite a scale evaluates per checkpoint."""

    base_items: int            # items per base task
    chat_per_kind: int         # chat rows per kind (modes alternate: half in each)
    chat_max_new_tokens: int   # generation budget per chat item
    lc_lengths: tuple[int, ...]  # lengths of the long-context cloze (tokens)
    lc_items: int              # cloze items per length
    only_final: bool           # evaluate each chapter's final checkpoint only (smoke: the path, in seconds)
    chat_on_chain_only: bool   # the chat suite on the chain's checkpoints only (CPU scales: minutes per chapter)

    @property
    def chat_items(self) -> int:
        """Chat rows behind one checkpoint's chat score (every kind; each row answered in its own mode)."""
        return self.chat_per_kind * len(KINDS)

    @property
    def lc_total(self) -> int:
        """Cloze prompts behind one checkpoint's long-context score."""
        return self.lc_items * len(self.lc_lengths)


def eval_sizes(scale: str | Scale) -> EvalSizes:
    """Derived from the scale's own fields: the base tasks at the scale's held-out size (at most 24 items at CPU
    scales, where some twenty checkpoints share the chapter's 4 minutes), four chat rows per kind at CPU scales, and the
    long-context cloze: at CPU scales at the training length on 64 held-out people (where chapter 08's extended model
    is above chance: at 8x it is not), on GPU scales at 2x and 8x (the first extension's x8 stands for 32k)."""
    s = get_scale(scale)
    L = s.seq_len
    cpu = s.device == "cpu"
    n = s.eval_examples_per_task or 500
    if n < 16:   # a smoke-sized scale proves the path: a few items, each chapter's final checkpoint
        return EvalSizes(base_items=4, chat_per_kind=1, chat_max_new_tokens=8, lc_lengths=(4 * L,), lc_items=2,
                         only_final=True, chat_on_chain_only=True)
    return EvalSizes(base_items=min(n, 24) if cpu else n, chat_per_kind=4 if cpu else max(8, n // 4),
                     chat_max_new_tokens=96 if cpu else 512, lc_lengths=(L,) if cpu else (2 * L, 8 * L),
                     lc_items=64, only_final=False, chat_on_chain_only=cpu)


def describe_sizes(scale_name: str, sizes: EvalSizes) -> str:
    """One line saying how much each checkpoint is evaluated on at this scale: what the scores below stand on."""
    return (f"{scale_name}: {sizes.base_items} items per base task, {sizes.chat_per_kind} chat rows per kind (both "
            f"modes), {sizes.chat_max_new_tokens} new tokens per chat answer, long-context cloze at "
            f"{list(sizes.lc_lengths)} tokens" + ("; each chapter's final checkpoint only" if sizes.only_final else ""))


def checkpoints_to_evaluate(output_dir: str | os.PathLike, chapters: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The run's registered checkpoints (of ``chapters`` when given), in registration order, one entry per folder:
    ``label`` (``chapter/name``), ``aliases`` (the other names of the same folder), chapter, name, path, step, final,
    and ``chapter_final``: the checkpoint ``start_from(chapter)`` hands on (the chapter's last one marked final)."""
    entries = [e for e in registered_checkpoints(output_dir) if chapters is None or e["chapter"] in chapters]
    last_final = {e["chapter"]: (e["chapter"], e["name"]) for e in entries if e.get("final")}
    seen: dict[str, dict[str, Any]] = {}
    for e in entries:
        key = str(Path(e["path"]).resolve())
        is_final = last_final.get(e["chapter"]) == (e["chapter"], e["name"])
        if key in seen:
            seen[key]["aliases"].append(f"{e['chapter']}/{e['name']}")
            seen[key]["chapter_final"] = seen[key]["chapter_final"] or is_final
            continue
        seen[key] = {**e, "label": f"{e['chapter']}/{e['name']}", "aliases": [], "final": bool(e.get("final")),
                     "chapter_final": is_final}
    if not seen:
        raise SmolbookError(f"no checkpoints registered in {Path(output_dir) / 'checkpoints.json'}: run the training "
                            "chapters first (smolbook run --only 07)")
    return list(seen.values())


def chat_trained(path: str | os.PathLike) -> bool:
    """Whether a checkpoint was trained on conversations: its tokenizer ends a turn with ``<|im_end|>`` (the chat
    trainers set it; pretraining checkpoints end documents with their own end-of-text token)."""
    import json

    config = Path(path) / "tokenizer_config.json"
    return config.is_file() and json.loads(config.read_text()).get("eos_token") == "<|im_end|>"


def long_context_score(path: str | os.PathLike, data: PreparedData, scale: str | Scale, sizes: EvalSizes, seed: int = 0) -> float:
    """Cloze accuracy with the fact far back in the context, averaged over ``sizes.lc_lengths`` (chance 0.25)."""
    rep = reports({"x": Path(path)}, data, get_scale(scale).name, list(sizes.lc_lengths), n=sizes.lc_items, seed=seed,
                  control=False, loss_windows=1, loss_length=max(sizes.lc_lengths))["x"]
    return cloze_at(rep, sizes.lc_lengths)


def _wanted(entry: dict, only: dict[str, Sequence[str]] | None) -> bool:
    """Whether ``only`` (chapter -> names or sweep arms) keeps this checkpoint."""
    if only and entry["chapter"] in only and entry.get("arm") in only[entry["chapter"]]:
        return True
    if not only or entry["chapter"] not in only:
        return True
    names = {entry["name"], *(a.split("/", 1)[1] for a in entry["aliases"])}
    return bool(names & set(only[entry["chapter"]]))


def evaluate_registered(output_dir: str | os.PathLike, scale: str | Scale, seed: int = 0, sizes: EvalSizes | None = None,
                        chapters: Sequence[str] | None = None, only: dict[str, Sequence[str]] | None = None,
                        progress: bool = True) -> list[dict[str, Any]]:
    """One row per registered checkpoint (of ``chapters``; for a chapter in ``only``, just the checkpoints of those
    names, e.g. a chapter's main line without its ablation arms): its identity, every
    lighteval score (``{task}`` and ``{task}/{metric}``), ``long_context`` and the seconds it took.

    The base suite and the long-context probe run on every checkpoint; the chat suite on each chapter's final
    checkpoint and its arm's other seeds (what the chain's verdicts read; a pretrained model's chat score is the
    chain's start), and at scales with the time for it on every checkpoint trained on conversations."""
    import time

    from tqdm.auto import tqdm

    s = get_scale(scale)
    sizes = sizes or eval_sizes(s)
    data = prepare(s, output_dir, seed=seed, progress=False)
    rows = []
    entries = [e for e in checkpoints_to_evaluate(output_dir, chapters)
               if (e["chapter_final"] or not sizes.only_final) and _wanted(e, only)]
    chain = {e["label"] for e in entries if e["chapter_final"]}
    for e in entries:
        if e["chapter_final"]:
            chain |= {m["label"] for m in stage_members([x for x in entries if x["chapter"] == e["chapter"]])}
    bar = tqdm(entries, desc="evaluating checkpoints", disable=not progress)
    for e in bar:
        bar.set_postfix_str(e["label"])
        t0 = time.perf_counter()
        suite = "all" if e["label"] in chain or (chat_trained(e["path"]) and not sizes.chat_on_chain_only) else "base"
        scores = evaluate_checkpoint(e["path"], suite, output_dir=output_dir, scale=s.name, seed=seed,
                                     max_items=sizes.base_items, chat_per_kind=sizes.chat_per_kind,
                                     chat_max_new_tokens=sizes.chat_max_new_tokens,
                                     label=re.sub(r"[^A-Za-z0-9_.-]+", "__", e["label"]))
        with quiet_evaluation():
            lc = long_context_score(e["path"], data, s, sizes, seed)
        modes = [v for k in ("book_chat_think", "book_chat_no_think") if (v := scores.get(k)) is not None]
        scores[CHAT] = statistics.fmean(modes) if modes else None
        rows.append({"label": e["label"], "chapter": e["chapter"], "name": e["name"], "aliases": e["aliases"],
                     "arm": e.get("arm"), "seed": e.get("seed"),
                     "path": e["path"], "step": e.get("step"), "final": e["final"],
                     "chapter_final": e["chapter_final"], "suite": suite, **scores, LONG_CONTEXT: lc,
                     "seconds": round(time.perf_counter() - t0, 1)})
    return rows


def score_columns(rows: Sequence[dict]) -> list[str]:
    """The one-number-per-task columns of the table (each suite task's main score, and long context)."""
    from smolbook.evaluate.lighteval_tasks import MAIN_METRIC  # lazy: it imports lighteval (seconds)

    return [t for t in MAIN_METRIC if any(r.get(t) is not None for r in rows)] + [CHAT, LONG_CONTEXT]


def score_table(rows: Sequence[dict], tasks: Sequence[str]) -> list[dict[str, Any]]:
    """The chapter's table: one row per checkpoint, its score on each task (the ``book_`` prefix dropped to keep the
    columns narrow; blank where the checkpoint did not run that suite)."""
    return [{"checkpoint": r["label"], **{t.replace("book_", ""): r.get(t) for t in tasks}} for r in rows]


def _value(row: dict, task: str) -> float | None:
    v = row.get(task)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def win_rates(rows: Sequence[dict], tasks: Sequence[str]) -> dict[str, float]:
    """For each checkpoint, the share of (task, other checkpoint) pairs it wins (a tie counts half), over the tasks
    both have a score for: the blog's win-rate figure."""
    out = {}
    for r in rows:
        wins, pairs = 0.0, 0
        for o in rows:
            if o is r:
                continue
            for t in tasks:
                a, b = _value(r, t), _value(o, t)
                if a is None or b is None:
                    continue
                pairs += 1
                wins += 1.0 if a > b else 0.5 if a == b else 0.0
        out[r["label"]] = wins / pairs if pairs else float("nan")
    return out


def plot_win_rate(rates: dict[str, float], highlight: Sequence[str] = ()) -> Any:
    """Horizontal bars, best first; ``highlight`` labels drawn in the book's accent colour."""
    import matplotlib.pyplot as plt

    items = sorted(rates.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(items) + 1.2))
    colors = ["C3" if k in highlight else "C0" for k, _ in items]
    ax.barh([k for k, _ in items], [v for _, v in items], color=colors)
    ax.axvline(0.5, color="grey", ls=":", lw=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("win rate: share of (task, other checkpoint) pairs won")
    ax.set_title("Win rate of every registered checkpoint over the book's tasks")
    fig.tight_layout()
    return fig


def plot_scores(rows: Sequence[dict], tasks: Sequence[str]) -> Any:
    """A checkpoints x tasks heat map of the scores (0-1), each cell written out."""
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.array([[(_value(r, t) if _value(r, t) is not None else np.nan) for t in tasks] for r in rows])
    fig, ax = plt.subplots(figsize=(1.1 * len(tasks) + 3, 0.38 * len(rows) + 1.5))
    ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(tasks)), [t.replace("book_", "") for t in tasks], rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [r["label"] for r in rows])
    for i in range(len(rows)):
        for j in range(len(tasks)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if grid[i, j] < 0.6 else "black")
    ax.set_title("Every registered checkpoint on the book's lighteval tasks")
    fig.tight_layout()
    return fig


def arm_seeds(final_name: str, names: Sequence[str]) -> list[str]:
    """The checkpoints that stand for a chapter's stage seed by seed, in seed order: when the final checkpoint is one
    seed of an arm (``<arm>seed<k>``), that arm's checkpoint of every seed; when it is not seeded (a soup of the
    seeds) but the chapter registered one family of per-seed checkpoints (``<a>seed<k><b>``), those; else the final."""
    m = re.fullmatch(r"(.*?)seed\d+(.*)", final_name)
    if m:
        pattern = re.escape(m.group(1)) + r"seed(\d+)" + re.escape(m.group(2))
    else:
        families = {re.sub(r"seed\d+", "seed{k}", n) for n in names if re.search(r"seed\d+", n)}
        if len(families) != 1:
            return [final_name]
        a, b = families.pop().split("seed{k}", 1)
        pattern = re.escape(a) + r"seed(\d+)" + re.escape(b)
    seeded = sorted((int(n.group(1)), name) for name in names if (n := re.fullmatch(pattern, name)))
    return [name for _, name in seeded] or [final_name]


def _without_seed(name: str) -> str:
    """A checkpoint's name without its seed (``seed1-lc-64k`` and ``lc-64k`` are one stage of two seeds)."""
    return re.sub(r"-?seed\d+-?", "-", name).strip("-")


def stage_members(entries: Sequence[dict]) -> list[dict]:
    """The checkpoints of one chapter that stand for its stage seed by seed, in seed order: a sweep's run (with an
    ``arm`` in ``checkpoints.json``) brings its arm's checkpoint of every seed; a checkpoint without one, the
    per-seed family its name belongs to (:func:`arm_seeds`); none when the chapter has no final checkpoint."""
    final = next((e for e in entries if e.get("chapter_final")), None)
    if final is None:
        return []
    if final.get("arm") is not None:
        # An arm can hold several stages of one run (08's main arm: lc-32k and lc-64k of every seed); only the
        # final's stage stands for the chapter, or two stages of one seed would count as two seeds.
        stage = _without_seed(final["name"])
        return sorted((e for e in entries if e.get("arm") == final["arm"] and _without_seed(e["name"]) == stage),
                      key=lambda e: e.get("seed") or 0)
    by_name = {e["name"]: e for e in entries}
    return [by_name[n] for n in arm_seeds(final["name"], list(by_name))]


def stage_values(rows: Sequence[dict], chapter: str, task: str) -> list[float]:
    """A stage's values of ``task`` for a verdict, one per seed where the chapter has them (:func:`stage_members`)."""
    return [v for r in stage_members([r for r in rows if r["chapter"] == chapter]) if (v := _value(r, task)) is not None]


def paired(a: Sequence[float], b: Sequence[float]) -> tuple[list[float] | float, list[float] | float]:
    """Two stages' values compared seed by seed: a stage with one checkpoint (the one model every seed of the next
    stage started from) is one reference value against each seed (:func:`smolbook.claims.decide`); other unequal
    counts fall back to each stage's mean (one value each, which the book's rule reports as under-powered)."""
    if len(a) == len(b):
        return list(a), list(b)
    if len(a) == 1:
        return a[0], list(b)
    if len(b) == 1:
        return list(a), b[0]
    return [statistics.fmean(a)] if a else [], [statistics.fmean(b)] if b else []


def card_beside(rows_by_label: dict[str, dict], labels: Sequence[str]) -> list[dict[str, Any]]:
    """The model card's rows that have a book analogue, the card's SmolLM3 score beside each of ``labels``' score
    on the analogue (shown as reference at CPU scales: a tiny model on generated data is no 3B on real benchmarks)."""
    out = []
    for a in model_card()["book_analogues"]:
        card = next(r for r in card_rows(a["table"]) if r["metric"] == a["metric"])
        row = {"card table": a["table"], "card metric": a["metric"], "SmolLM3-3B (card, %)": card["score"],
               "book task": a["book"]}
        for label in labels:
            v = _value(rows_by_label.get(label, {}), a["book"])
            row[f"{label} (%)"] = None if v is None else round(100 * v, 1)
        out.append(row)
    return out
