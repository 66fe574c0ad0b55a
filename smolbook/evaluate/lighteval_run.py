"""Run the book's lighteval tasks (:mod:`smolbook.evaluate.lighteval_tasks`) on a checkpoint, offline.

    from smolbook.evaluate.lighteval_run import evaluate_checkpoint
    scores = evaluate_checkpoint("runs/tiny/07_pretraining/pretrain/final", "base")   # {task: score}

lighteval 0.13's own Python pipeline does the work (``Pipeline`` + the transformers backend on CPU or GPU);
this module handles what stands between it and an offline run:

* its registry imports every built-in task module, three of which reach the network at import: here the
  registry loads the book's module only (:func:`book_tasks_only`);
* it caches predictions per model *name*, and a book checkpoint is rewritten in place when a chapter reruns:
  here the cache lives in a fresh temporary folder per call;
* base checkpoints carry the chat template too, and lighteval wraps every prompt in it when there is one (which
  put the cloze accuracy of 07's model at chance): the base suite runs on plain text, the chat suite on prompts
  the chat template rendered with each row's own keywords (tools, ``enable_thinking``), which lighteval's chat
  path cannot pass;
* special tokens stay in the decoded text (``<think>`` is one) and no BOS is added (the book trains without one).

lighteval's own files (results JSON, per-item details as parquet) are kept under ``<run folder>/lighteval/``.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

from smolbook.errors import SmolbookError

SUITE_NAMES = ("base", "chat", "all")   # all: both suites in one lighteval run


def find_run_folder(checkpoint: str | os.PathLike) -> Path | None:
    """The run folder holding ``checkpoint`` (the nearest parent with ``checkpoints.json``), or None."""
    for parent in Path(checkpoint).resolve().parents:
        if (parent / "checkpoints.json").is_file():
            return parent
    return None


def run_scale(run_folder: str | os.PathLike) -> tuple[str, int]:
    """The scale and seed the run folder's data was built for (``data/manifest.json``)."""
    manifest = Path(run_folder) / "data" / "manifest.json"
    if not manifest.is_file():
        raise SmolbookError(f"{run_folder} has no data/manifest.json: pass --scale (and --output for lighteval's files)")
    m = json.loads(manifest.read_text())
    return str(m["scale"]), int(m.get("seed", 0))


def label_of(checkpoint: str | os.PathLike, run_folder: str | os.PathLike | None) -> str:
    """A folder-safe name for a checkpoint: its path inside the run folder, or the last three parts of its path."""
    path = Path(checkpoint).resolve()
    if run_folder is not None and path.is_relative_to(Path(run_folder).resolve()):
        text = str(path.relative_to(Path(run_folder).resolve()))
    else:   # outside the run folder: the last three parts (chapter/run/final) keep checkpoints apart
        text = "/".join(path.parts[-3:])
    return re.sub(r"[^A-Za-z0-9_.-]+", "__", text)


# ── the items ─────────────────────────────────────────────────────────────────────────

def _take(ds: Any, n: int | None) -> list[dict]:
    m = len(ds) if n is None else min(n, len(ds))
    return [dict(ds[i]) for i in range(m)]


def base_items(scale: str, output_dir: str | os.PathLike, seed: int = 0, max_items: int | None = None) -> dict[str, list[dict]]:
    """The corpus' held-out evaluations of the run folder (``smolbook.data.prepare``), first ``max_items`` each."""
    from smolbook.data import prepare

    data = prepare(scale, output_dir, seed=seed, progress=False)
    return {t: _take(ds, max_items) for t, ds in data.evals.items()}


def chat_items(scale: str, seed: int = 0, per_kind: int | None = None) -> list[dict]:
    """The chat held-out conversations (both modes; ``per_kind`` first rows of each kind)."""
    from smolbook.data.chat import shared_chat_data

    return _take(shared_chat_data(scale, seed).heldout_set(per_kind=per_kind), None)


def _write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def write_task_data(data_dir: str | os.PathLike, tokenizer: Any, suite: str, *,
                    base: dict[str, list[dict]] | None = None, chat: Sequence[dict] | None = None) -> list[str]:
    """Write each task's items as ``data_dir/<task>/test.jsonl``; returns the task names written.

    Generative items carry their answer's token ids (what greedy decoding must reproduce) and chat items the
    prompt the chat template renders for the row in its mode, so that scoring needs nothing but the line."""
    from smolbook.data.chat import prompt_messages, template_kwargs
    from smolbook.evaluate.lighteval_tasks import SOURCES, SUITES

    data_dir = Path(data_dir)
    written, sizes = [], {}
    for task in SUITES[suite]:
        source = SOURCES[task]
        if suite == "base":
            rows = list((base or {}).get(source, []))
            if not rows:
                continue
            if "choices" not in rows[0]:
                ids = tokenizer([r["answer"] for r in rows], add_special_tokens=False)["input_ids"]
                rows = [{"prompt": r["prompt"], "answer": r["answer"], "answer_ids": i} for r, i in zip(rows, ids)]
                sizes[task] = max(len(i) for i in ids)
            else:
                rows = [{"prompt": r["prompt"], "choices": list(r["choices"]),
                         "label": r["label"] if "label" in r else list(r["choices"]).index(r["answer"]),
                         "choice_tokens": [len(i) for i in tokenizer(list(r["choices"]), add_special_tokens=False)["input_ids"]]}
                        for r in rows]
        else:
            rows = [{"prompt": tokenizer.apply_chat_template(prompt_messages(r), tokenize=False, add_generation_prompt=True,
                                                             **template_kwargs(r, source)),
                     "answer": str(r.get("answer") or ""), "mode": source, "row": json.dumps(r, ensure_ascii=False)}
                    for r in (chat or []) if r["mode"] == source]
            if not rows:
                continue
            longest = max(len(i) for i in tokenizer([r["prompt"] for r in rows], add_special_tokens=False)["input_ids"])
            sizes["longest_prompt"] = max(sizes.get("longest_prompt", 0), longest)
        _write_jsonl(data_dir / task / "test.jsonl", rows)
        written.append(task)
    sizes_file = data_dir / "generation_sizes.json"
    before = json.loads(sizes_file.read_text()) if sizes_file.is_file() else {}
    if "longest_prompt" in before and "longest_prompt" in sizes:
        sizes["longest_prompt"] = max(sizes["longest_prompt"], before["longest_prompt"])
    sizes_file.write_text(json.dumps({**before, **sizes}))
    return written


# ── running lighteval ─────────────────────────────────────────────────────────────────

@contextlib.contextmanager
def book_tasks_only(configs: Sequence[Any]) -> Iterator[None]:
    """lighteval's registry sees the book's task configs only: no built-in task module is imported (three reach
    the network at import in 0.13)."""
    from lighteval.tasks.registry import Registry

    original = Registry.__dict__["load_all_task_configs"]
    table = {c.name: c for c in configs}
    Registry.load_all_task_configs = staticmethod(lambda custom_tasks=None, load_multilingual=False: dict(table))
    try:
        yield
    finally:
        Registry.load_all_task_configs = original


# transformers' messages while lighteval runs that the book has checked are harmless here: the chat suite measures
# and generates past max_position_embeddings on purpose (RoPE runs there; the book's own chat evaluation does the
# same), lighteval still passes `torch_dtype`, and greedy decoding carries temperature 0.
_HARMLESS = ("Token indices sequence length is longer than the specified maximum sequence length",
             "`torch_dtype` is deprecated", "The following generation flags are not valid and may be ignored",
             "the current text generation call has exceeded the model's predefined maximum length")


class _DropHarmless(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(h in message for h in _HARMLESS)


@contextlib.contextmanager
def quiet_evaluation() -> Iterator[None]:
    """lighteval logs its progress (and a --max_samples warning) at INFO/WARNING: keep its errors only; drop the
    transformers messages listed in ``_HARMLESS`` (everything else still shows)."""
    loggers = [logging.getLogger(n) for n in ("lighteval", "datasets")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    tf = logging.getLogger("transformers")
    targets = [tf, *tf.handlers]
    drop = _DropHarmless()
    for t in targets:
        t.addFilter(drop)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        for t in targets:
            t.removeFilter(drop)


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """The task data and the checkpoint are local: no hub call while lighteval runs (restored afterwards)."""
    keys = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    before = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _model_class():
    from lighteval.models.transformers.transformers_model import TransformersModel

    class BookTransformersModel(TransformersModel):
        """lighteval's transformers backend without its progress bars (the caller draws one per checkpoint)."""

        @property
        def disable_tqdm(self) -> bool:
            return True

    return BookTransformersModel


def _clean(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def flatten_results(results: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """lighteval's ``results`` ({"task|0": {metric: value, metric_stderr: ...}}) as ``{task: main score}`` plus
    ``{task/metric: value}`` for the other metrics (NaN, a score that applied to no item, becomes None)."""
    from smolbook.evaluate.lighteval_tasks import MAIN_METRIC

    out: dict[str, float | None] = {}
    for full, metrics in sorted(results.items()):
        task = full.split("|")[0]
        if task not in MAIN_METRIC:
            continue
        out[task] = _clean(metrics.get(MAIN_METRIC[task]))
        for m, v in metrics.items():
            if m != MAIN_METRIC[task] and not m.endswith("_stderr"):
                out[f"{task}/{m}"] = _clean(v)
    return out


def run_lighteval(checkpoint: str | os.PathLike, suite: str, data_dir: str | os.PathLike, out_dir: str | os.PathLike,
                  tasks: Sequence[str], batch_size: int = 8, chat_max_new_tokens: int = 256,
                  device: str | None = None, label: str | None = None) -> dict[str, float | None]:
    """lighteval's pipeline on ``checkpoint`` for ``tasks`` (written in ``data_dir``); its results and details
    land in ``out_dir``. Returns :func:`flatten_results` of its results."""
    import torch

    from smolbook.evaluate.lighteval_tasks import task_configs

    configs = [c for c in task_configs(data_dir, chat_max_new_tokens=chat_max_new_tokens) if c.name in tasks]
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    # lighteval's transformers backend turns autograd off for the whole process (torch.set_grad_enabled(False));
    # a chapter trains after evaluating, so the caller's mode is restored on the way out.
    grad = torch.is_grad_enabled()
    try:
        return _run_pipeline(checkpoint, configs, data_dir, out_dir, batch_size, device, label)
    finally:
        torch.set_grad_enabled(grad)


def _run_pipeline(checkpoint, configs, data_dir, out_dir, batch_size, device, label) -> dict[str, float | None]:
    from lighteval.logging.evaluation_tracker import EvaluationTracker
    from lighteval.models.model_input import GenerationParameters
    from lighteval.models.transformers.transformers_model import TransformersModelConfig
    from lighteval.pipeline import ParallelismManager, Pipeline, PipelineParameters

    with tempfile.TemporaryDirectory(prefix="smolbook-lighteval-cache-") as cache, quiet_evaluation(), \
            book_tasks_only(configs), _offline():
        # lighteval cuts a prompt longer than the model's max_position_embeddings and then generates ONE token;
        # the book's chat evaluation generates from the whole prompt (RoPE runs past the configured length), so
        # the chat suite allows its longest prompt plus the generation.
        sizes_file = Path(data_dir) / "generation_sizes.json"
        longest = json.loads(sizes_file.read_text()).get("longest_prompt") if sizes_file.is_file() else None
        max_length = None
        if longest:
            from transformers import AutoConfig
            allowed = int(getattr(AutoConfig.from_pretrained(str(checkpoint)), "max_position_embeddings", 0) or 0)
            max_length = max(allowed, longest + max((c.generation_size or 0) for c in configs))
        config = TransformersModelConfig(
            model_name=str(Path(checkpoint).resolve()), device=device, batch_size=batch_size, dtype="float32",
            max_length=max_length,
            add_special_tokens=False, skip_special_tokens=False, override_chat_template=False, cache_dir=cache,
            generation_parameters=GenerationParameters(temperature=0.0))
        model = _model_class()(config)
        tracker = EvaluationTracker(output_dir=str(out_dir), save_details=True)
        params = PipelineParameters(launcher_type=ParallelismManager.NONE, remove_reasoning_tags=False,
                                    bootstrap_iters=0)
        pipeline = Pipeline(tasks=",".join(f"{c.name}|0" for c in configs), pipeline_parameters=params,
                            evaluation_tracker=tracker, model=model)
        # lighteval names its results and details folders after the model name: the checkpoint's label, not its path
        tracker.general_config_logger.model_name = label or Path(checkpoint).name
        pipeline.evaluate()
        pipeline.save_and_push_results()
        results = dict(tracker.metrics_logger.metric_aggregated)
        _write_jsonl(Path(out_dir) / "items.jsonl", item_records(tracker.details_logger.details))
    return flatten_results(results)


def item_records(details: dict[str, list[Any]]) -> list[dict]:
    """One flat record per evaluated item from lighteval's details: task, item id, what the model produced
    (generated text and tokens, or each choice's summed log-likelihood) and the item's scores."""
    out = []
    for full, entries in details.items():
        for d in entries:
            r = d.model_response
            out.append({"task": full.split("|")[0], "id": d.doc.id, "gold_index": d.doc.gold_index,
                        "text": [str(t) for t in (r.text or [])],
                        "output_tokens": [[int(t) for t in seq] for seq in (r.output_tokens or [])] if r.text else None,
                        "logprobs": [float(x) for x in (r.logprobs or [])],
                        "metric": {k: _clean(v) if isinstance(v, float) else v for k, v in d.metric.items()}})
    return sorted(out, key=lambda r: (r["task"], int(r["id"]) if str(r["id"]).isdigit() else r["id"]))


def read_items(out_dir: str | os.PathLike) -> list[dict]:
    """The per-item records :func:`run_lighteval` kept in ``out_dir/items.jsonl``."""
    path = Path(out_dir) / "items.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def evaluate_checkpoint(checkpoint: str | os.PathLike, suite: str = "base", *, output_dir: str | os.PathLike | None = None,
                        scale: str | None = None, seed: int | None = None, max_items: int | None = None,
                        chat_per_kind: int | None = None, batch_size: int = 8, chat_max_new_tokens: int = 256,
                        label: str | None = None) -> dict[str, float | None]:
    """The book's ``suite`` (``base`` or ``chat``) through lighteval on one checkpoint: ``{task: score}``.

    The items come from the run folder the checkpoint lives in (``output_dir`` otherwise), its scale and seed
    read from its data manifest unless given; ``max_items`` caps each base task, ``chat_per_kind`` the chat rows
    per kind. lighteval's files go to ``<output_dir>/lighteval/<label>/<suite>/``.
    """
    if suite not in SUITE_NAMES:
        raise SmolbookError(f"suite {suite!r} is not one of {', '.join(SUITE_NAMES)}")
    ckpt = Path(checkpoint)
    if not (ckpt / "config.json").is_file():
        raise SmolbookError(f"no checkpoint at {ckpt} (expected {ckpt / 'config.json'}); pass a checkpoint folder, "
                            "e.g. runs/tiny/07_pretraining/pretrain/final")
    run_folder = Path(output_dir) if output_dir is not None else find_run_folder(ckpt)
    if run_folder is None:
        raise SmolbookError(f"{ckpt} is not inside a run folder (no checkpoints.json above it): pass --output DIR "
                            "and --scale")
    if scale is None:
        scale, found_seed = run_scale(run_folder)
        seed = found_seed if seed is None else seed
    seed = 0 if seed is None else seed
    with quiet_evaluation():
        return _evaluate(ckpt, suite, run_folder, scale, seed, max_items, chat_per_kind, batch_size, chat_max_new_tokens,
                         label)


def _evaluate(ckpt: Path, suite: str, run_folder: Path, scale: str, seed: int, max_items: int | None,
              chat_per_kind: int | None, batch_size: int, chat_max_new_tokens: int, label: str | None) -> dict:
    from smolbook.data.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(ckpt)
    out = run_folder / "lighteval" / (label or label_of(ckpt, run_folder)) / suite
    data_dir = out / "data"
    import shutil
    shutil.rmtree(data_dir, ignore_errors=True)   # items of an earlier call never mix with this one's
    tasks = []
    if suite in ("base", "all"):
        tasks += write_task_data(data_dir, tokenizer, "base", base=base_items(scale, run_folder, seed, max_items))
    if suite in ("chat", "all"):
        if not getattr(tokenizer, "chat_template", None):
            raise SmolbookError(f"{ckpt} has no chat template: the chat suite needs a tokenizer with the chat template "
                                "(smolbook.chat.attach_template)")
        tasks += write_task_data(data_dir, tokenizer, "chat", chat=chat_items(scale, seed, chat_per_kind))
    if not tasks:
        raise SmolbookError(f"no items to evaluate for suite {suite!r} in {run_folder}")
    scores = run_lighteval(ckpt, suite, data_dir, out, tasks, batch_size=batch_size,
                           chat_max_new_tokens=chat_max_new_tokens, label=label or label_of(ckpt, run_folder))
    (out / "scores.json").write_text(json.dumps(scores, indent=1))
    return scores


# ── the command line: smolbook eval ───────────────────────────────────────────────────

def register_cli(sub: Any) -> None:
    """``smolbook eval CHECKPOINT --suite base|chat [--json]``."""
    p = sub.add_parser("eval", help="evaluate a checkpoint with lighteval on the book's tasks (offline)",
                       description="Run the book's lighteval tasks on a checkpoint and print {task: score}. "
                                   "lighteval's results and per-item details are kept under RUN/lighteval/.")
    p.add_argument("checkpoint", help="a checkpoint folder (config.json inside), e.g. runs/tiny/07_pretraining/pretrain/final")
    p.add_argument("--suite", choices=SUITE_NAMES, default="base")
    p.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    p.add_argument("--output", default=None, help="run folder for the items and lighteval's files "
                                                  "(default: the run folder holding the checkpoint)")
    p.add_argument("--scale", default=None, help="scale of the items (default: the run folder's)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--max-items", type=int, default=None, help="first N items of each base task")
    p.add_argument("--per-kind", type=int, default=None, help="first N chat rows of each kind")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--full-commands", action="store_true",
                   help="print the released model's lighteval commands (vLLM, both modes) instead of evaluating")
    p.set_defaults(func=_cli)


def _cli(args: Any) -> int:
    if args.full_commands:
        from smolbook.evaluate.lighteval_full import full_commands

        for c in full_commands(args.checkpoint):
            print(c.command)
        return 0
    from smolbook.quiet import quiet_libraries

    quiet_libraries()
    scores = evaluate_checkpoint(args.checkpoint, args.suite, output_dir=args.output, scale=args.scale, seed=args.seed,
                                 max_items=args.max_items, chat_per_kind=args.per_kind, batch_size=args.batch_size)
    if args.json:
        print(json.dumps(scores))
    else:
        for k, v in scores.items():
            print(f"{k:40s} {'-' if v is None else f'{v:.4f}'}")
    return 0
