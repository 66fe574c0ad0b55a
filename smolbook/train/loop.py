"""The pretraining loop, on accelerate (same code in one process, under DDP and under FSDP).

The data stream yields the *global* batch; every process takes its own contiguous slice of rows, so the data a
step sees does not depend on the number of processes, and 1 process and N processes follow the same loss
trajectory (tests/train/test_train_distributed.py). Each slice is cut into micro-batches (gradient accumulation). The
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
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from tqdm.auto import tqdm

from smolbook.errors import SmolbookError
from smolbook.quiet import quiet_libraries
from smolbook.train import checkpoint as ckpt_mod
from smolbook.train.chunked_loss import use_chunked_loss
from smolbook.train.config import TrainConfig
from smolbook.train.cpu_attention import cpu_training_attention
from smolbook.train.optim import build_optimizer, build_scheduler
from smolbook.train.preemption import watch_stop_file

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

    def checkpoints_by_step(self) -> dict[int, Path]:
        """Every model checkpoint the run kept, by step: the pretraining loop's ``checkpoints/step-N``, TRL's
        ``trl/checkpoint-N`` and the final one (what a learning curve evaluates)."""
        found = {int(p.name.split("-")[-1]): p for p in ckpt_mod.list_checkpoints(self.output_dir)}
        trl = self.output_dir / "trl"
        if trl.is_dir():
            found |= {int(p.name.split("-")[-1]): p for p in trl.glob("checkpoint-*")
                      if (p / "config.json").is_file()}
        if self.checkpoint is not None:
            found[int(ckpt_mod.read_state(self.checkpoint).get("step", max(found, default=0)))] = self.checkpoint
        return dict(sorted(found.items()))

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


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX): only there does bf16 autocast pay off.

    Elsewhere a CPU emulates bf16 matmuls and autocast makes training slower, so ``precision="auto"`` stays fp32.
    """
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:  # not Linux: no cheap way to know, and fp32 is the safe choice
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def resolve_precision(config: TrainConfig) -> str:
    """``"bf16"`` or ``"fp32"`` for this run: ``auto`` is bf16 on CUDA with bf16 and on CPUs with native bf16.

    Master weights and optimizer state stay fp32 either way; bf16 is autocast around forward and backward.
    """
    if config.precision != "auto":
        return config.precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def _make_accelerator(config: TrainConfig):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState

    # On CUDA accelerate runs the autocast (and FSDP's mixed-precision policy). On CPU the loop autocasts the
    # training step itself (_autocast): accelerate would wrap model.forward for good, so evaluation and the
    # model handed back would run in bf16 too.
    on_cuda = torch.cuda.is_available()
    mp = "bf16" if on_cuda and resolve_precision(config) == "bf16" else "no"
    # accelerate keeps one process-wide state: a notebook or test that already ran another trainer (TRL's SFT, say)
    # with other precision settings would make Accelerator() refuse. In a single process it is safe to start afresh.
    if AcceleratorState._shared_state and AcceleratorState._shared_state.get("_mixed_precision") != mp \
            and PartialState().num_processes == 1:
        AcceleratorState._reset_state()
    # cpu=True on a machine without CUDA: that is how accelerate recognises torchrun's ranks as MULTI_CPU (gloo).
    return Accelerator(mixed_precision=mp, cpu=not on_cuda)


def _autocast(accelerator, config: TrainConfig):
    """bf16 autocast for a CPU training step when the run's precision is bf16 (on CUDA accelerate does it)."""
    if accelerator.device.type == "cpu" and resolve_precision(config) == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return nullcontext()


@contextmanager
def _stop_on_signals() -> Iterator[dict[str, int]]:
    """SIGINT/SIGTERM/SIGUSR1 (and a SLURM job's stop file, :mod:`smolbook.train.preemption`) set a flag instead of
    killing the process, so the loop can save a checkpoint first."""
    flag = {"signal": 0}
    if threading.current_thread() is not threading.main_thread():
        with watch_stop_file(flag):
            yield flag
        return

    def handler(signum, _frame):
        flag["signal"] = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    try:
        with watch_stop_file(flag):
            yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class _MetricsLog:
    """metrics.jsonl: rows kept in memory, appended to the file in batches (at most ``flush_s`` seconds late).

    Writing a line per step cost a file open per step; a batch is flushed at every evaluation, checkpoint and
    at the end, so a resumed run (which keeps rows up to its checkpoint) never misses one.
    """

    def __init__(self, path: Path, enabled: bool, keep_until_step: int | None, flush_s: float = 1.0):
        self.path, self.enabled, self.flush_s = path, enabled, flush_s
        self.rows: list[dict[str, Any]] = []
        self._pending: list[str] = []
        self._last_flush = time.perf_counter()
        if keep_until_step is not None and path.is_file():  # resume: drop rows past the checkpoint (they rerun)
            self.rows = [r for r in (json.loads(x) for x in path.read_text().splitlines() if x.strip())
                         if r.get("step", 0) <= keep_until_step and not r.get("event")]
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(r) + "\n" for r in self.rows))

    def add(self, row: dict[str, Any], flush: bool = False) -> None:
        self.rows.append(row)
        if self.enabled:
            self._pending.append(json.dumps(row) + "\n")
            if flush or time.perf_counter() - self._last_flush > self.flush_s:
                self.flush()

    def flush(self) -> None:
        if self.enabled and self._pending:
            with self.path.open("a") as f:
                f.write("".join(self._pending))
            self._pending.clear()
        self._last_flush = time.perf_counter()


# accelerate's "Removed shared tensor {'lm_head.weight'}" on every save of a tied model says nothing (the tie is the
# recipe's; transformers re-ties it on load): smolbook.quiet drops it, for the trainer as for the notebooks.
quiet_libraries()


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
    with _no_transformers_bars():  # a one-shard checkpoint needs no "Writing model shards" bar in the notebook
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


@contextmanager
def _no_transformers_bars() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


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
    if resume is True:  # the final checkpoint, else the newest intact one (a save cut off by a kill is passed over)
        return ckpt_mod.resume_point(out)
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
    optimizer_state: str | Path | None = None,
    keep_steps: Sequence[int] = (),
) -> TrainResult:
    """Train ``model`` on ``stream`` (dict batches of input_ids/position_ids/labels; state_dict/load_state_dict).

    Writes ``metrics.jsonl``, periodic checkpoints under ``output_dir/checkpoints`` and the final one at
    ``output_dir/final`` (HF format + tokenizer + trainer state). ``resume=True`` continues from the newest
    checkpoint (a path picks one). SIGINT/SIGTERM save a checkpoint and return with ``interrupted=True``.
    ``eval_fn(model) -> {name: value}`` runs before training, every ``config.eval_every`` steps and at the end.
    ``optimizer_state`` (a checkpoint's ``accelerate/`` folder) carries AdamW's moments into a new run that starts
    from that checkpoint (the learning rate is the new schedule's); ``keep_steps`` are steps whose checkpoints are
    saved and never pruned (the end of each data stage).
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer is None:
        tokenizer = getattr(getattr(stream, "data", None), "tokenizer", None)
    from accelerate.utils import set_seed

    accelerator = _make_accelerator(config)
    set_seed(config.seed)
    main, rank, world = accelerator.is_main_process, accelerator.process_index, accelerator.num_processes
    if config.loss_chunk_tokens:  # before FSDP wraps the model: the chunks run inside its root unit's forward
        use_chunked_loss(model, config.loss_chunk_tokens)
    model = accelerator.prepare(model)  # FSDP wants the model wrapped before the optimizer sees its parameters
    optimizer = accelerator.prepare(build_optimizer(accelerator.unwrap_model(model), config))
    # Not passed through prepare: accelerate would step a prepared scheduler once per process.
    scheduler = build_scheduler(optimizer, config)
    accelerator.register_for_checkpointing(scheduler)
    accelerator.register_for_checkpointing(stream)

    start = 0
    resume_from = _resolve_resume(resume, out)
    if resume_from is not None:
        resumed_state = _load(accelerator, resume_from)
        start = int(resumed_state["step"])
    elif optimizer_state is not None:
        _carry_optimizer(optimizer, Path(optimizer_state), config)
    log = _MetricsLog(out / METRICS_FILE, main, keep_until_step=start if resume_from is not None else None)
    if start >= config.steps:
        return TrainResult(log.rows, resume_from, out)

    run_state = {"config": config.to_dict(), "world_size": world}

    def evaluate(step: int, stage: str | None, tokens: int) -> None:
        model.eval()
        with torch.no_grad():
            res = eval_fn(accelerator.unwrap_model(model))  # every process runs it (FSDP needs all shards)
        model.train()
        log.add({"kind": "eval", "step": step, "tokens": tokens, "stage": stage, **res}, flush=True)

    def save(target: Path, step: int, stage: str | None, tokens: int) -> Path:
        log.flush()
        return _save(accelerator, model, tokenizer, target,
                     dict(run_state, step=step, tokens=tokens, stage=stage))

    it = iter(stream)
    model.train()
    # The checkpoint's own count: a branched run (smolbook.train.run) starts with no metrics rows of its own.
    tokens_seen = int(resumed_state.get("tokens") or 0) if resume_from is not None else 0
    if eval_fn is not None and start == 0:
        evaluate(0, getattr(stream, "stage", None), 0)
    bar = tqdm(total=config.steps, initial=start, desc="pretrain", disable=not (main and config.progress),
               mininterval=1.0, dynamic_ncols=True)
    clip = _grad_clipper(accelerator, model, config.grad_clip)
    last_ckpt: Path | None = resume_from
    interrupted = False
    t_run = last_postfix = time.perf_counter()
    try:
        with _stop_on_signals() as stop, cpu_training_attention(accelerator.unwrap_model(model)):
            for step in range(start, config.steps):
                t0 = time.perf_counter()
                try:
                    batch = next(it)
                except StopIteration:
                    raise SmolbookError(f"the data stream ran out at step {step} of {config.steps}: its token budget "
                                        f"is smaller than steps x global batch x seq_len") from None
                stage = getattr(stream, "stage", None)
                loss, n_tokens = _train_step(accelerator, model, batch, config, rank, world)
                grad_norm = clip()
                lr = scheduler.get_last_lr()[0]  # the rate this step's update uses
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                tokens_seen += n_tokens
                now = time.perf_counter()
                dt = now - t0
                log.add({"kind": "train", "step": step + 1, "loss": loss, "lr": lr, "grad_norm": grad_norm,
                         "tokens": tokens_seen, "tokens_per_s": n_tokens / dt, "stage": stage,
                         "elapsed_s": now - t_run})
                if step + 1 == config.steps or now - last_postfix >= 1.0:  # what the bar shows, once a second
                    last_postfix = now
                    bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{n_tokens / dt:,.0f}", stage=stage,
                                    refresh=False)
                bar.update(1)
                if not math.isfinite(loss):
                    raise SmolbookError(f"loss became {loss} at step {step + 1}: lower the learning rate or check "
                                        f"the data")
                done = step + 1
                if eval_fn is not None and config.eval_every and done % config.eval_every == 0 and done < config.steps:
                    evaluate(done, stage, tokens_seen)
                if _agreed_stop(accelerator, stop["signal"]):
                    last_ckpt = save(out / "checkpoints" / ckpt_mod.checkpoint_name(done), done, stage, tokens_seen)
                    log.add({"kind": "event", "step": done, "event": f"stopped by signal {stop['signal']}",
                             "checkpoint": str(last_ckpt)}, flush=True)
                    interrupted = True
                    break
                if (config.checkpoint_every and done % config.checkpoint_every == 0 or done in keep_steps) \
                        and done < config.steps:
                    last_ckpt = save(out / "checkpoints" / ckpt_mod.checkpoint_name(done), done, stage, tokens_seen)
                    if main:
                        ckpt_mod.prune(out, config.keep_last_checkpoints, keep=keep_steps)
            bar.close()
            if not interrupted:
                if eval_fn is not None:
                    evaluate(config.steps, stage, tokens_seen)
                last_ckpt = save(out / "final", config.steps, stage, tokens_seen)
    finally:
        log.flush()
    return TrainResult(log.rows, last_ckpt, out, interrupted=interrupted,
                       extra={"seconds": time.perf_counter() - t_run, "world_size": world,
                              "precision": resolve_precision(config)})


def _grad_clipper(accelerator, model: torch.nn.Module, max_norm: float) -> Callable[[], float]:
    """Clip the gradients to ``max_norm`` and return their norm before clipping, as a float.

    One process without FSDP: torch's clip over a parameter list made once (accelerate's wrapper would rebuild
    it and check for a gradient scaler every step). Otherwise accelerate's, which knows about sharded parameters.
    """
    from accelerate.utils import DistributedType

    if accelerator.num_processes == 1 and accelerator.distributed_type != DistributedType.FSDP:
        params = [p for p in model.parameters() if p.requires_grad]
        return lambda: float(torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True))
    return lambda: float(accelerator.clip_grad_norm_(model.parameters(), max_norm))


def _carry_optimizer(optimizer: torch.optim.Optimizer, accel_dir: Path, config: TrainConfig) -> None:
    """Load AdamW's state (moments, step counts) from an earlier run's checkpoint into this run's optimizer.

    Only the state is carried: each group's learning rate is this run's (the schedule starts afresh), so the saved
    ``lr``/``initial_lr`` of the old schedule are dropped.
    """
    path = accel_dir / "optimizer.bin"
    if not path.is_file():
        raise SmolbookError(f"no optimizer state at {path} to carry (a sharded FSDP optimizer is carried by resuming "
                            "the run it belongs to); use optimizer_state 'reset'")
    state = torch.load(path, map_location="cpu", weights_only=False)
    if len(state.get("param_groups", [])) != len(optimizer.param_groups):
        raise SmolbookError(f"the optimizer state at {path} has {len(state.get('param_groups', []))} parameter groups, "
                            f"this model {len(optimizer.param_groups)}: carry it only between runs of the same model")
    optimizer.load_state_dict(state)
    for g in optimizer.param_groups:
        g.pop("initial_lr", None)
        g["lr"] = config.learning_rate


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
            with _autocast(accelerator, config):
                out = model(input_ids=local["input_ids"][sl], position_ids=local["position_ids"][sl],
                            labels=local["labels"][sl], use_cache=False, num_items_in_batch=divisor)
            accelerator.backward(out.loss)  # outside autocast, as torch recommends
        total += out.loss.detach().float()
    if world > 1:
        total = accelerator.reduce(total, reduction="mean")
    return float(total), rows * seq
