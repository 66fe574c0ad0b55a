"""The pretraining loop, on accelerate (same code in one process, under DDP and under FSDP).

The data stream yields the *global* batch; every process takes its own contiguous slice of rows, so the data a
step sees does not depend on the number of processes, and 1 process and N processes follow the same loss
trajectory (tests/test_train_distributed.py). Each slice is cut into micro-batches (gradient accumulation). The
loss is a token sum divided by the global number of predicted tokens, so accumulation and data parallelism
give the same gradient as one big batch.

Why a loop of our own rather than transformers' Trainer: the recipe needs a data stream that switches mixtures at
token boundaries and resumes mid-stream, per-step stage logging, per-domain evaluation, and a WSD schedule from
the book's one schedule implementation; Trainer would need custom hooks for each. accelerate does the parts a
library should do (device placement, DDP/FSDP wrapping, mixed precision, sharded state saving).
"""
from __future__ import annotations

import json
import math
import shutil
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from tqdm.auto import tqdm

from smolbook.errors import SmolbookError
from smolbook.train import checkpoint as ckpt_mod
from smolbook.train.config import TrainConfig
from smolbook.train.optim import build_optimizer, build_scheduler

METRICS_FILE = "metrics.jsonl"
EvalFn = Callable[[torch.nn.Module], dict[str, float]]


@dataclass
class TrainResult:
    """What a run leaves behind: its metric rows (``kind`` = ``train`` or ``eval``) and its last checkpoint."""

    metrics: list[dict[str, Any]]
    checkpoint: Path | None
    output_dir: Path
    interrupted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def rows(self, kind: str = "train") -> list[dict[str, Any]]:
        return [r for r in self.metrics if r.get("kind") == kind]

    def series(self, key: str, kind: str = "train") -> tuple[list[int], list[float]]:
        """(steps, values) of one metric."""
        rows = [r for r in self.rows(kind) if key in r]
        return [r["step"] for r in rows], [r[key] for r in rows]

    @classmethod
    def from_dir(cls, output_dir: str | Path) -> "TrainResult":
        """Read a finished (or launched) run back from its folder: metrics.jsonl and the final checkpoint."""
        out = Path(output_dir)
        path = out / METRICS_FILE
        if not path.is_file():
            raise SmolbookError(f"no {METRICS_FILE} in {out}: the training run did not start or wrote elsewhere")
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        final = out / "final"
        return cls(metrics=rows, checkpoint=final if (final / ckpt_mod.STATE_FILE).is_file() else None, output_dir=out)


def _make_accelerator(config: TrainConfig):
    from accelerate import Accelerator

    if config.precision == "auto":
        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        mp = "bf16" if bf16 else "no"  # fp32 on CPU: CPU bf16 autocast is slow and breaks exact-resume checks
    else:
        mp = "bf16" if config.precision == "bf16" else "no"
    from accelerate.state import AcceleratorState, PartialState

    # accelerate keeps one process-wide state: a notebook or test that already ran another trainer (TRL's SFT, say)
    # with other precision settings would make Accelerator() refuse. In a single process it is safe to start afresh.
    if AcceleratorState._shared_state and AcceleratorState._shared_state.get("_mixed_precision") != mp \
            and PartialState().num_processes == 1:
        AcceleratorState._reset_state()
    # cpu=True on a machine without CUDA: that is how accelerate recognises torchrun's ranks as MULTI_CPU (gloo).
    return Accelerator(mixed_precision=mp, cpu=not torch.cuda.is_available())


@contextmanager
def _stop_on_signals() -> Iterator[dict[str, int]]:
    """SIGINT/SIGTERM set a flag instead of killing the process, so the loop can save a checkpoint first."""
    flag = {"signal": 0}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, _frame):
        flag["signal"] = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class _MetricsLog:
    def __init__(self, path: Path, enabled: bool, keep_until_step: int | None):
        self.path, self.enabled = path, enabled
        self.rows: list[dict[str, Any]] = []
        if keep_until_step is not None and path.is_file():  # resume: drop rows past the checkpoint (they rerun)
            self.rows = [r for r in (json.loads(x) for x in path.read_text().splitlines() if x.strip())
                         if r.get("step", 0) <= keep_until_step and not r.get("event")]
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(r) + "\n" for r in self.rows))

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")


def _save(accelerator, model, tokenizer, target: Path, state: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (into ``target.tmp``, then renamed) so a kill mid-save leaves no half checkpoint."""
    main = accelerator.is_main_process
    tmp = target.with_name(target.name + ".tmp")
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp / ckpt_mod.ACCEL_DIR))
    state_dict = accelerator.get_state_dict(model)
    accelerator.unwrap_model(model).save_pretrained(tmp, state_dict=state_dict, is_main_process=main,
                                                    save_function=accelerator.save)
    accelerator.wait_for_everyone()  # every rank has written its files (RNG states) before the rename
    if main:
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        ckpt_mod.write_state(tmp, state)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    accelerator.wait_for_everyone()
    return target


def _load(accelerator, ckpt: Path) -> dict[str, Any]:
    state = ckpt_mod.read_state(ckpt)
    try:
        accelerator.load_state(str(ckpt / ckpt_mod.ACCEL_DIR))
    except Exception as e:  # noqa: BLE001 - re-raised as a user-facing error naming the file
        bad = ckpt_mod.find_corrupt_file(ckpt)
        where = f"file {bad}" if bad is not None else f"folder {ckpt / ckpt_mod.ACCEL_DIR}"
        raise SmolbookError(f"checkpoint {where} could not be loaded ({type(e).__name__}: {str(e)[:200]}); "
                            f"resume from an earlier checkpoint or start afresh") from None
    return state


def _resolve_resume(resume: bool | str | Path, out: Path) -> Path | None:
    if resume is False or resume is None:
        return None
    if resume is True:
        final = out / "final"
        if (final / ckpt_mod.STATE_FILE).is_file():
            return final
        return ckpt_mod.latest_checkpoint(out)
    return Path(resume)


def pretrain(
    model: torch.nn.Module,
    stream: Any,
    config: TrainConfig,
    output_dir: str | Path,
    eval_fn: EvalFn | None = None,
    *,
    tokenizer: Any = None,
    resume: bool | str | Path = False,
) -> TrainResult:
    """Train ``model`` on ``stream`` (dict batches of input_ids/position_ids/labels; state_dict/load_state_dict).

    Writes ``metrics.jsonl``, periodic checkpoints under ``output_dir/checkpoints`` and the final one at
    ``output_dir/final`` (HF format + tokenizer + trainer state). ``resume=True`` continues from the newest
    checkpoint (a path picks one). SIGINT/SIGTERM save a checkpoint and return with ``interrupted=True``.
    ``eval_fn(model) -> {name: value}`` runs before training, every ``config.eval_every`` steps and at the end.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer is None:
        tokenizer = getattr(getattr(stream, "data", None), "tokenizer", None)
    from accelerate.utils import set_seed

    accelerator = _make_accelerator(config)
    set_seed(config.seed)
    main, rank, world = accelerator.is_main_process, accelerator.process_index, accelerator.num_processes
    model = accelerator.prepare(model)  # FSDP wants the model wrapped before the optimizer sees its parameters
    optimizer = accelerator.prepare(build_optimizer(accelerator.unwrap_model(model), config))
    # Not passed through prepare: accelerate would step a prepared scheduler once per process.
    scheduler = build_scheduler(optimizer, config)
    accelerator.register_for_checkpointing(scheduler)
    accelerator.register_for_checkpointing(stream)

    start = 0
    resume_from = _resolve_resume(resume, out)
    if resume_from is not None:
        start = int(_load(accelerator, resume_from)["step"])
    log = _MetricsLog(out / METRICS_FILE, main, keep_until_step=start if resume_from is not None else None)
    if start >= config.steps:
        return TrainResult(log.rows, resume_from, out)

    run_state = {"config": config.to_dict(), "world_size": world}

    def evaluate(step: int, stage: str | None, tokens: int) -> None:
        model.eval()
        with torch.no_grad():
            res = eval_fn(accelerator.unwrap_model(model))  # every process runs it (FSDP needs all shards)
        model.train()
        log.add({"kind": "eval", "step": step, "tokens": tokens, "stage": stage, **res})

    def save(target: Path, step: int, stage: str | None, tokens: int) -> Path:
        return _save(accelerator, model, tokenizer, target,
                     dict(run_state, step=step, tokens=tokens, stage=stage))

    it = iter(stream)
    model.train()
    tokens_seen = int(log.rows[-1].get("tokens", 0)) if log.rows else 0
    if eval_fn is not None and start == 0:
        evaluate(0, getattr(stream, "stage", None), 0)
    bar = tqdm(total=config.steps, initial=start, desc="pretrain", disable=not (main and config.progress),
               mininterval=1.0, dynamic_ncols=True)
    last_ckpt: Path | None = resume_from
    interrupted = False
    t_run = time.perf_counter()
    with _stop_on_signals() as stop:
        for step in range(start, config.steps):
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                raise SmolbookError(f"the data stream ran out at step {step} of {config.steps}: its token budget is "
                                    f"smaller than steps x global batch x seq_len") from None
            stage = getattr(stream, "stage", None)
            loss, n_tokens = _train_step(accelerator, model, batch, config, rank, world)
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
            lr = scheduler.get_last_lr()[0]  # the rate this step's update uses
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            tokens_seen += n_tokens
            dt = time.perf_counter() - t0
            row = {"kind": "train", "step": step + 1, "loss": loss, "lr": lr,
                   "grad_norm": float(grad_norm), "tokens": tokens_seen, "tokens_per_s": n_tokens / dt, "stage": stage,
                   "elapsed_s": time.perf_counter() - t_run}
            log.add(row)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{n_tokens / dt:,.0f}", stage=stage, refresh=False)
            if not math.isfinite(loss):
                raise SmolbookError(f"loss became {loss} at step {step + 1}: lower the learning rate or check the data")
            done = step + 1
            if eval_fn is not None and config.eval_every and done % config.eval_every == 0 and done < config.steps:
                evaluate(done, stage, tokens_seen)
            if _agreed_stop(accelerator, stop["signal"]):
                last_ckpt = save(out / "checkpoints" / ckpt_mod.checkpoint_name(done), done, stage, tokens_seen)
                log.add({"kind": "event", "step": done, "event": f"stopped by signal {stop['signal']}",
                         "checkpoint": str(last_ckpt)})
                interrupted = True
                break
            if config.checkpoint_every and done % config.checkpoint_every == 0 and done < config.steps:
                last_ckpt = save(out / "checkpoints" / ckpt_mod.checkpoint_name(done), done, stage, tokens_seen)
                if main:
                    ckpt_mod.prune(out, config.keep_last_checkpoints)
        bar.close()
        if not interrupted:
            if eval_fn is not None:
                evaluate(config.steps, stage, tokens_seen)
            last_ckpt = save(out / "final", config.steps, stage, tokens_seen)
    return TrainResult(log.rows, last_ckpt, out, interrupted=interrupted,
                       extra={"seconds": time.perf_counter() - t_run, "world_size": world})


def _agreed_stop(accelerator, signum: int) -> bool:
    """Every process must stop at the same step (a signal may reach them at different times)."""
    if accelerator.num_processes == 1:
        return bool(signum)
    flag = torch.tensor([1.0 if signum else 0.0], device=accelerator.device)
    return bool(accelerator.reduce(flag, reduction="sum").item() > 0)


def _train_step(accelerator, model, batch: dict[str, torch.Tensor], config: TrainConfig, rank: int, world: int
                ) -> tuple[float, int]:
    """Forward/backward over this process's micro-batches of one global batch; returns (global loss, global tokens)."""
    rows, seq = batch["input_ids"].shape
    if rows % world:
        raise SmolbookError(f"global batch of {rows} rows does not split over {world} processes")
    per = rows // world
    mb = min(config.micro_batch_size or per, per)
    if per % mb:
        raise SmolbookError(f"per-process batch of {per} rows is not a multiple of micro_batch_size {mb}")
    # Tokens that get a loss in the whole global batch; transformers shifts labels by one inside the model.
    n_items = int((batch["labels"][:, 1:] != -100).sum())
    # DDP averages gradients over processes, so each process divides its token sum by n_items / world.
    divisor = max(n_items, 1) / world
    local = {k: batch[k][rank * per:(rank + 1) * per].to(accelerator.device)
             for k in ("input_ids", "position_ids", "labels")}
    n_micro = per // mb
    total = torch.zeros((), device=accelerator.device)
    for i in range(n_micro):
        sl = slice(i * mb, (i + 1) * mb)
        sync = nullcontext() if i == n_micro - 1 else accelerator.no_sync(model)
        with sync:
            # Packed rows: no attention_mask and use_cache=False, so transformers masks across documents from the
            # position_ids that restart at 0 (with a mask or a cache it would silently attend across documents).
            out = model(input_ids=local["input_ids"][sl], position_ids=local["position_ids"][sl],
                        labels=local["labels"][sl], use_cache=False, num_items_in_batch=divisor)
            accelerator.backward(out.loss)
        total += out.loss.detach().float()
    if world > 1:
        total = accelerator.reduce(total, reduction="mean")
    return float(total), rows * seq
