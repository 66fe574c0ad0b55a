"""Chat evaluations: generate through the chat template in a mode, parse, score; one record per checkpoint
and mode.

    from smolbook.evaluate.chat import evaluate_chat
    from smolbook.teacher import ModelTeacher

    record = evaluate_chat(ModelTeacher("runs/tiny/sft"), chat.heldout_set(), "think", checkpoint="sft")

The scores of one completion (exact match, IFEval, tool calls, language, format per mode) are
:mod:`smolbook.evaluate.scoring`'s.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from transformers import AutoModelForCausalLM

from smolbook.chat.template import attach_template
from smolbook.data.chat import template_kwargs
from smolbook.data.conversations import MODES
from smolbook.data.tokenizer import load_tokenizer
from smolbook.errors import SmolbookError
from smolbook.evaluate.scoring import TOOL_KINDS, score_completion, summarise
from smolbook.parallel import map_in_workers, worker_count
from smolbook.teacher import ModelTeacher


def evaluate_chat(teacher: Any, rows: Sequence[dict], mode: str, checkpoint: str = "model") -> dict[str, Any]:
    """Generate with ``teacher`` (anything with ``generate(prompts, mode)``, e.g. :class:`smolbook.teacher.ModelTeacher`)
    on the rows of ``rows`` written in ``mode``, score every completion, and summarise: one record."""
    if mode not in MODES:
        raise SmolbookError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    chosen = [dict(r) for r in rows if r["mode"] == mode]
    if not chosen:
        raise SmolbookError(f"no held-out rows in mode {mode!r} to evaluate")
    completions = teacher.generate(chosen, mode)
    return summarise([score_completion(r, c, mode) for r, c in zip(chosen, completions)], mode, checkpoint)


def evaluate_checkpoints(teachers: dict[str, Any], rows: Sequence[dict],
                         modes: Sequence[str] = MODES) -> list[dict[str, Any]]:
    """One record per checkpoint (``name -> teacher``) and mode, in order: a table to compare in a line."""
    return [evaluate_chat(t, rows, m, checkpoint=name) for name, t in teachers.items() for m in modes]


def folder_teacher(path: Any, name: str = "model", max_new_tokens: int = 256, batch_size: int = 16) -> Any:
    """A greedy :class:`smolbook.teacher.ModelTeacher` on a checkpoint folder, plain transformers, through the
    checkpoint's chat template (the book's when a base model's tokenizer carries none)."""
    tok = load_tokenizer(path)
    if not getattr(tok, "chat_template", None):
        attach_template(tok)  # a base model's tokenizer (before SFT) carries no template of its own
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    # Prompts may pass the tokenizer's nominal length and the config's max_position_embeddings (at smoke, a
    # 1,024-token model reads longer chat prompts): RoPE positions are computed on the fly, and both fields
    # only print warnings, so they are raised to what this evaluation reads.
    tok.model_max_length = 1 << 30
    model = AutoModelForCausalLM.from_pretrained(str(path))
    model.config.max_position_embeddings = max(model.config.max_position_embeddings, 1 << 16)
    return ModelTeacher(model, tokenizer=tok, max_new_tokens=max_new_tokens, batch_size=batch_size,
                        backend="transformers", name=name, progress=False)


def chat_scores(checkpoints: dict[str, Any], rows: Sequence[dict], modes: Sequence[str] = MODES,
                max_new_tokens: int = 256, batch_size: int = 16, workers: int | None = None) -> list[dict[str, Any]]:
    """:func:`evaluate_chat` of each checkpoint folder (label -> folder) in each mode, with :func:`folder_teacher`:
    one record per checkpoint and mode, each also holding the generation's tokens/s.

    On a CPU the checkpoints are evaluated side by side in one-thread worker processes (:mod:`smolbook.parallel`;
    ``workers=1`` keeps them here). Measured with ``benchmarks/chat_eval_workers.py`` on 2 cores: 1.13x one
    two-thread process at 4 checkpoints x 72 conversations x 128 new tokens, 0.57x at 4 x 18 x 64 (each worker's
    start-up, ~3 s, outweighs a job of a few seconds); a chapter's evaluations are the larger kind."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    n = worker_count(device, len(checkpoints), workers)
    plain = [dict(r) for r in rows]
    jobs = [(label, str(path), plain, tuple(modes), max_new_tokens, batch_size) for label, path in checkpoints.items()]
    return [rec for part in map_in_workers(_scores_of_one, jobs, n) for rec in part]


def _scores_of_one(label: str, path: str, rows: list[dict], modes: tuple[str, ...], max_new_tokens: int,
                   batch_size: int) -> list[dict[str, Any]]:
    teacher = folder_teacher(path, label, max_new_tokens, batch_size)
    out = []
    for mode in modes:
        rec = evaluate_chat(teacher, rows, mode, checkpoint=label)
        rec["tokens_per_s"] = teacher.stats.get("tokens_per_s")
        out.append(rec)
    return out


def learning_curve(checkpoints: dict[int, Any], rows: Sequence[dict], modes: Sequence[str] = MODES,
                   max_new_tokens: int = 256, label: str = "run") -> list[dict[str, Any]]:
    """:func:`chat_scores` of a run's checkpoints by step (``step -> folder``, e.g.
    :meth:`smolbook.train.TrainResult.checkpoints_by_step`): one record per step and mode, each with its ``step``.
    The held-out curve a budget is sized from: where format, exact match and tool calls stop rising."""
    steps = sorted(checkpoints)
    records = chat_scores({f"{label} step {step}": checkpoints[step] for step in steps}, rows, modes, max_new_tokens)
    return [{"step": step, **rec} for step in steps for rec in records if rec["checkpoint"] == f"{label} step {step}"]


def plot_learning_curve(records: Sequence[dict], axes: Sequence[Any], kinds: Sequence[str],
                        tokens_per_step: int | None = None,
                        panels: Sequence[str] = ("format", "exact_match", "tools")) -> None:
    """Panels of :func:`learning_curve` records against steps (or tokens, given ``tokens_per_step``), one axis each:
    ``format`` (adherence per mode), ``exact_match`` (per answer kind; solid think, dashed no_think) and ``tools``
    (tool-call match per style)."""
    unknown = set(panels) - {"format", "exact_match", "tools"}
    if unknown or len(axes) < len(panels):
        raise SmolbookError(f"plot_learning_curve: panels are format, exact_match, tools (one axis each), got "
                            f"{list(panels)} for {len(axes)} axes")
    ax = dict(zip(panels, axes))
    scale = tokens_per_step or 1
    styles = {"think": "-", "no_think": "--"}
    answer_kinds = [k for k in kinds if k not in TOOL_KINDS and k != "ifeval"]
    for mode in MODES:
        recs = sorted((r for r in records if r["mode"] == mode), key=lambda r: r["step"])
        if not recs:
            continue
        x = [r["step"] * scale for r in recs]
        if "format" in ax:
            ax["format"].plot(x, [r["format_ok"] for r in recs], styles[mode], marker="o", label=mode)
        if "exact_match" in ax:
            for i, kind in enumerate(answer_kinds):
                ax["exact_match"].plot(x, [r.get(f"correct/{kind}") for r in recs], styles[mode], color=f"C{i}",
                                       label=kind if mode == "think" else None)
        if "tools" in ax:
            for i, kind in enumerate(k for k in kinds if k in TOOL_KINDS):
                ax["tools"].plot(x, [r.get(f"correct/{kind}") for r in recs], styles[mode], color=f"C{i}",
                                 marker="o", label=f"{kind} ({mode})")
    titles = {"format": "format adherence per mode", "exact_match": "exact match per kind\n(solid: think, dashed: "
              "no_think)", "tools": "tool-call match per style"}
    for name, a in ax.items():
        a.set(xlabel="tokens trained" if tokens_per_step else "step", ylim=(-0.02, 1.02), title=titles[name])
        a.legend(fontsize=7, ncol=2)
    axes[0].set_ylabel("held-out score")


def items_in(rows: Sequence[dict], mode: str, kinds: Sequence[str] | None = None) -> int:
    """How many of ``rows`` an evaluation in ``mode`` scores (of ``kinds``, default all): a verdict's item count."""
    return sum(r["mode"] == mode and (kinds is None or r["kind"] in kinds) for r in rows)


def answer_loss(checkpoint: Any, rows: Any, mode: str = "think", max_rows: int | None = None) -> float:
    """Mean next-token loss (nats) of the reference assistant turns of held-out ``rows`` written in ``mode``, the
    conversation before them as context, through the checkpoint's chat template: how likely the model finds a
    correct trace and answer, a measure that moves before exact match does."""
    tok = load_tokenizer(checkpoint)
    if not getattr(tok, "chat_template", None):
        attach_template(tok)
    tok.model_max_length = 1 << 30  # conversations may pass the nominal length: it only prints a warning
    model = AutoModelForCausalLM.from_pretrained(str(checkpoint)).eval()
    chosen = [r for r in rows if r["mode"] == mode][:max_rows]
    if not chosen:
        raise SmolbookError(f"no held-out rows in mode {mode!r} to score")
    total, count = 0.0, 0
    for r in chosen:
        enc = tok.apply_chat_template(r["messages"], tokenize=True, return_dict=True,
                                      return_assistant_tokens_mask=True, **template_kwargs(r, mode))
        ids = torch.tensor([enc["input_ids"]])
        mask = torch.tensor(enc["assistant_masks"][1:], dtype=torch.bool)
        with torch.no_grad():
            logits = model(input_ids=ids, use_cache=False).logits[0, :-1]
        nll = torch.nn.functional.cross_entropy(logits.float(), ids[0, 1:], reduction="none")
        total += float(nll[mask].sum())
        count += int(mask.sum())
    return total / max(count, 1)
