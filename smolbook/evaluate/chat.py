"""Chat evaluations: generate through the chat template in a mode, parse, score; one record per checkpoint
and mode.

    from smolbook.evaluate.chat import evaluate_chat
    from smolbook.teacher import ModelTeacher
    record = evaluate_chat(ModelTeacher("runs/tiny/sft"), chat.heldout_set(), "think", checkpoint="sft")

Scores, each over the held-out rows it applies to:

* ``answer_em`` — exact match of the final answer ("The answer is X." in the prompt's language) for math,
  code output, facts, multi-turn, multilingual and system-prompt rows (and per kind);
* ``ifeval_prompt_strict`` / ``ifeval_inst_strict`` — IFEval's strict accuracies (:mod:`.ifeval`);
* ``tool_call_match`` — the call equals the expected one after parsing, in either style (BFCL's AST
  match); ``tool_call_validity`` — every call in the answer parses;
* ``language_match`` — the answer is in the prompt's language;
* ``format_ok`` — think mode: a closed, non-empty think block, then an answer; no_think: no reasoning.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any, Sequence

import torch

from smolbook.chat import CallError, ToolCall, parse_completion
from smolbook.data.conversations import ANSWER_PHRASES, MODES
from smolbook.errors import SmolbookError
from smolbook.evaluate.ifeval import ifeval_check
from smolbook.evaluate.language import detect_language
from smolbook.parallel import map_in_workers, worker_count

TOOL_KINDS = ("tools_xml", "tools_python")
_FINAL = re.compile(r"(?:" + "|".join(re.escape(p) for p in ANSWER_PHRASES.values()) + r")\s+(.+)")


def extract_answer(text: str) -> str | None:
    """The X of the last "The answer is X." (in any of the six languages) in ``text``; None when absent."""
    found = None
    for line in text.splitlines():
        for m in _FINAL.finditer(line):
            found = m.group(1).strip()
    if found is None:
        return None
    return found[:-1].rstrip() if found.endswith(".") else found


def _normalise(value: Any) -> str:
    return " ".join(str(value).split())


def answer_matches(expected: str, completion: str) -> bool:
    """Exact match of ``completion``'s final answer (its "The answer is X.") with ``expected``."""
    got = extract_answer(parse_completion(completion).answer)
    return got is not None and _normalise(got) == _normalise(expected)


def _same(a: Any, b: Any) -> bool:
    # JSON equality, but an int and the equal float match (1 == 1.0), a bool never matches an int.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b and type(a) in (int, float, str, type(None)) and type(b) in (int, float, str, type(None))


def tool_call_matches(expected: dict, completion: str) -> bool:
    """Whether ``completion`` holds a call, in either style, whose name and parsed arguments equal ``expected``
    (``{"name": ..., "arguments": {...}}``, as the model card writes a call). Calls inside the think
    block do not count; a malformed call never matches."""
    if not isinstance(expected, dict) or not isinstance(expected.get("name"), str) \
            or not isinstance(expected.get("arguments", {}), dict):
        raise SmolbookError(f"expected call {expected!r} must be {{\"name\": str, \"arguments\": dict}}")
    calls = parse_completion(completion).tool_calls
    want = ToolCall(expected["name"], expected.get("arguments", {}))
    return any(isinstance(c, ToolCall) and c.name == want.name and _same(c.arguments, want.arguments) for c in calls)


def tool_call_valid(completion: str) -> bool:
    """Whether ``completion``'s answer holds at least one call and every call in it parses."""
    calls = parse_completion(completion).tool_calls
    return bool(calls) and not any(isinstance(c, CallError) for c in calls)


def format_ok(completion: str, mode: str) -> bool:
    """think: a closed, non-empty think block followed by an answer; no_think: an answer and no reasoning."""
    c = parse_completion(completion)
    if c.error or not c.answer:
        return False
    if mode == "think":
        return bool(c.reasoning)
    if mode == "no_think":
        return not c.reasoning
    raise SmolbookError(f"mode {mode!r} is not one of {', '.join(MODES)}")


def score_completion(row: dict, completion: str, mode: str) -> dict[str, Any]:
    """Every score that applies to one held-out row and a model's completion of its prompt.

    ``correct`` is the row's main score (exact match, all IFEval instructions, or the tool call);
    ``error`` says why a completion could not be read (an unclosed think block), or is None.
    """
    parsed = parse_completion(completion)
    kind = row["kind"]
    out: dict[str, Any] = {"kind": kind, "format_ok": format_ok(completion, mode), "error": parsed.error,
                           "language_match": None, "tool_call_valid": None, "ifeval": None}
    if kind in TOOL_KINDS:
        out["correct"] = tool_call_matches(json.loads(row["expected_call"]), completion)
        out["tool_call_valid"] = tool_call_valid(completion)
    elif row.get("instructions"):
        spec = json.loads(row["instructions"])
        out["ifeval"] = [ifeval_check(i, k, parsed.answer) for i, k in zip(spec["instruction_id_list"], spec["kwargs"])]
        out["correct"] = all(out["ifeval"])
    else:
        out["correct"] = answer_matches(row["answer"], completion)
    # Language is scored where the reference answer itself reads as the row's language (not tool calls, JSON).
    if kind not in TOOL_KINDS and detect_language(row["solution_answer"]) == row["lang"]:
        out["language_match"] = detect_language(parsed.answer) == row["lang"]
    return out


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def summarise(scores: Sequence[dict], mode: str, checkpoint: str) -> dict[str, Any]:
    """One flat record of ``scores`` (from :func:`score_completion`): a line of a comparison table."""
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for s in scores:
        by_kind[s["kind"]].append(s)
    answer_rows = [s for s in scores if s["kind"] not in TOOL_KINDS and s["ifeval"] is None]
    ifeval_rows = [s["ifeval"] for s in scores if s["ifeval"] is not None]
    tool_rows = [s for s in scores if s["kind"] in TOOL_KINDS]
    record: dict[str, Any] = {
        "checkpoint": checkpoint, "mode": mode, "n": len(scores),
        "answer_em": _mean([s["correct"] for s in answer_rows]),
        "ifeval_prompt_strict": _mean([all(r) for r in ifeval_rows]),
        "ifeval_inst_strict": _mean([x for r in ifeval_rows for x in r]),
        "tool_call_match": _mean([s["correct"] for s in tool_rows]),
        "tool_call_validity": _mean([s["tool_call_valid"] for s in tool_rows]),
        "language_match": _mean([s["language_match"] for s in scores]),
        "format_ok": _mean([s["format_ok"] for s in scores]),
        "unparsable": sum(s["error"] is not None for s in scores),
    }
    for kind, rows in sorted(by_kind.items()):
        record[f"correct/{kind}"] = _mean([s["correct"] for s in rows])
    return record


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
    from transformers import AutoModelForCausalLM

    from smolbook.chat.template import attach_template
    from smolbook.data.tokenizer import load_tokenizer
    from smolbook.teacher import ModelTeacher

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
    ``workers=1`` keeps them here): greedy decoding of a tiny model is bound by per-token overhead, not arithmetic,
    so a second thread in one process barely helps while a second process doubles the rate
    (``benchmarks/chat_eval_workers.py``)."""
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
