"""``run(spec)``: the one entry point of every training run, at every scale.

A :class:`~smolbook.train.spec.RunSpec` is resolved against its scale and the recipe (model, data stream,
``TrainConfig``, evaluation) and trained by the scale's launcher: in this process (smoke, tiny), under
``accelerate launch`` (small) or as a SLURM job (full). Every launcher ends in the same in-process code
(:func:`train_here`, which ``smolbook train run SPEC.yaml --in-process`` calls on each rank), and the result is
read back from the run folder in every case; the run's checkpoints are then registered in the run folder's
``checkpoints.json`` for later chapters.

``resume="auto"`` continues a run whose folder holds a checkpoint of the *same* run (same spec, same library
code: the fingerprint in ``run.json``) and starts afresh otherwise, saying why.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smolbook import cluster
from smolbook.cluster import GPUS_PER_NODE, placement, recipe_nodes
from smolbook.data import PreparedData, PretrainStream, prepare
from smolbook.errors import SmolbookError
from smolbook.fingerprint import library_hash
from smolbook.model import build_model, load_with_rope, smollm3_config
from smolbook.recipe import load_recipe
from smolbook.registry import register_checkpoint, resolve_checkpoint
from smolbook.sbatch import JobOptions, render_job
from smolbook.scales import Budget, Scale, get_scale
from smolbook.train import checkpoint as ckpt_mod
from smolbook.train.config import TrainConfig
from smolbook.train.loop import TrainResult, pretrain
from smolbook.train.spec import EVALUATIONS, RunSpec
from smolbook.train.trl import train_trl, trl_checkpoints


CONFIG_DIR = Path(__file__).with_name("configs")
# accelerate configs: one GPU for ``small``; FSDP full-shard over SmolLM3DecoderLayer in bf16 for the 3B (``full``).
LAUNCH_CONFIGS = {"small": "single_gpu.yaml", "full": "fsdp_3b.yaml"}
RUN_FILE = "run.json"
SPEC_FILE = "spec.yaml"


@dataclass
class Resolved:
    """What a spec resolves to in one process: the pieces ``pretrain`` takes, plus where stages end."""

    model: Any
    stream: Any
    config: TrainConfig
    eval_fn: Callable[[Any], dict] | None
    tokenizer: Any
    optimizer_state: Path | None = None
    stage_ends: dict[str, int] = field(default_factory=dict)  # stage -> the step it ends at
    source: Path | None = None  # the checkpoint the model was loaded from
    budget: Budget | None = None


# -- data builders ------------------------------------------------------------------------------------------------
DataBuilder = Callable[[RunSpec, Any, Budget], Any]
# A builder is ``fn(spec, prepared_data, budget) -> stream`` (a resumable batch iterator), registered by name. The
# trainer layer names the builders that live with their phase's code (SFT's conversations, mid-training's reasoning
# traces, preference training's pairs) as ``module:function`` and imports them when a spec asks: those modules build
# on the trainer (run specs, sweeps), so importing them here would go up the layers and close a cycle.
DATA_BUILDERS: dict[str, DataBuilder | str] = {
    "conversations": "smolbook.sft:conversations_stream",
    "reasoning-traces": "smolbook.midtraining:reasoning_stream",
    "preference-pairs": "smolbook.alignment:preference_pairs_stream",
}


def data_builder(name: str) -> Callable[[DataBuilder], DataBuilder]:
    """Register a named data builder: ``fn(spec, prepared_data, budget) -> stream`` (a resumable batch iterator)."""
    def add(fn: DataBuilder) -> DataBuilder:
        DATA_BUILDERS[name] = fn
        return fn
    return add


def named(ref: Callable | str) -> Callable:
    """A function given as itself or as ``module:function`` (imported now: how the trainer reaches code above it)."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def data_builder_of(name: str) -> DataBuilder:
    """The data builder called ``name`` (imported on first use when it is named by its module)."""
    if name not in DATA_BUILDERS:
        raise SmolbookError(f"unknown data builder '{name}': choose one of {', '.join(DATA_BUILDERS)}")
    fn = DATA_BUILDERS[name] = named(DATA_BUILDERS[name])
    return fn


def build_data(spec: RunSpec, data: PreparedData | None = None) -> Any:
    """The data stream a spec trains on (its builder at its budget): what a chapter shows of a run's data is then
    what the trainer reads. ``data``: the prepared data folder (read from the spec's output folder by default)."""
    if data is None:
        data = _prepared(spec.scale, str(Path(spec.output_dir).resolve()), corpus_seed_of(spec))
    return data_builder_of(spec.builder)(spec, data, budget_of(spec))


@data_builder("stages")
def _stage_stream(spec: RunSpec, data: PreparedData, budget: Budget) -> Any:
    """The recipe's stage mixtures (offline: each dataset's stand-in domain), packed into rows, resumable."""
    stages = spec.data.stages or _default_stages(spec.phase)
    up = spec.data.options.get("upsample_long")  # [min_tokens, factor]: long documents drawn factor times
    return PretrainStream(data, stages=stages, token_budget=budget.steps * budget.rows_per_step * budget.seq_len,
                          seq_len=budget.seq_len, batch_size=budget.rows_per_step, seed=spec.seed,
                          doc_masking=spec.data.doc_masking, upsample_long=None if up is None else tuple(up),
                          branch_reseeds=spec.branch_from is not None)


def _default_stages(phase: str) -> list[str]:
    r = load_recipe()
    if phase == "pretraining":
        return [s.name for s in r.pretraining_stages]
    if phase in r.runs:
        return [s.name for s in r.stages if s.run.name == phase]
    raise SmolbookError(f"phase '{phase}' has no recipe stages: give data.stages or another data.builder")


# -- resolution ---------------------------------------------------------------------------------------------------
def budget_of(spec: RunSpec) -> Budget:
    """The :class:`~smolbook.scales.Budget` a run trains with: the spec's values, else the scale's for the run's phase
    (pretraining: the scale's pretraining run; later phases: ``Scale.budget``)."""
    s = get_scale(spec.scale)
    b = spec.budget
    if spec.phase == "pretraining":
        base = Budget(phase="pretraining", tokens=s.pretrain_tokens, epochs=1, seq_len=s.seq_len,
                      rows_per_step=s.global_batch_size, learning_rate=s.learning_rate, warmup_steps=s.warmup_steps,
                      schedule="wsd", lr_source="the scale's pretraining rate", steps=s.pretrain_steps)
    else:
        base = s.budget(spec.phase)
    seq_len = b.seq_len or base.seq_len
    rows = b.rows_per_step or (base.rows_per_step if not b.seq_len else
                               max(1, base.rows_per_step * base.seq_len // seq_len))
    steps = b.steps or max(1, (b.tokens or base.tokens * base.epochs) // (rows * seq_len))
    sch = spec.schedule
    if sch.warmup_steps is not None:
        warmup = sch.warmup_steps
    elif spec.phase == "pretraining":
        warmup = base.warmup_steps
    else:  # a later phase keeps the recipe's warm-up share of whatever steps the run takes
        warmup = round(base.warmup_steps / base.steps * steps)
    if sch.decay_fraction is not None:
        decay = sch.decay_fraction
    elif spec.phase == "pretraining" and steps == s.pretrain_steps:
        decay = s.lr_decay_fraction()  # the decay starts with the decay stage, as in the configs
    else:
        decay = None  # TrainConfig's default: the recipe's decay share
    return Budget(phase=spec.phase, tokens=steps * rows * seq_len // base.epochs, epochs=base.epochs, seq_len=seq_len,
                  rows_per_step=rows, learning_rate=sch.learning_rate or base.learning_rate,
                  warmup_steps=min(warmup, steps - 1) if steps > 1 else 0, schedule=sch.kind or base.schedule,
                  lr_source="the run spec" if sch.learning_rate else base.lr_source, steps=steps, decay_fraction=decay)


def optimizer_state_of(spec: RunSpec) -> str:
    """``carry`` or ``reset``: the spec's choice, else the recipe's for the phase (``load_optimizer`` of its config:
    the 4k->32k stage carries the pretraining optimizer, the 32k->64k stage restarts it); a fresh model resets."""
    if spec.optimizer_state is not None:
        return spec.optimizer_state
    runs = load_recipe().runs
    if spec.model.checkpoint is not None and spec.phase in runs and spec.phase != "pretraining":
        return "carry" if runs[spec.phase].load_optimizer else "reset"
    return "reset"


def resolve_config(spec: RunSpec) -> TrainConfig:
    """The ``TrainConfig`` a spec trains with (cheap: builds no model and reads no data)."""
    s = get_scale(spec.scale)
    budget = budget_of(spec)
    extra = {} if budget.decay_fraction is None else {"decay_fraction": budget.decay_fraction}
    # Pretraining evaluates on the scale's interval; a later, shorter phase before and after (its curve is the
    # chapter's probes), and checkpoints twice so an interrupted stage resumes without redoing much.
    pre = spec.phase == "pretraining"
    every = spec.eval_every if spec.eval_every is not None else (s.eval_every_steps if pre else budget.steps)
    ckpt_every = spec.checkpoint_every if spec.checkpoint_every is not None else (
        every if pre else max(1, budget.steps // 2))
    # A row whose logits pass 2^30 numbers (2 GB in bf16: the 3B's 32k and 64k rows) computes its loss in chunks.
    if spec.keep_checkpoints:
        extra["keep_last_checkpoints"] = 0
    if budget.seq_len * s.model.vocab_size > LOGITS_PER_ROW_LIMIT:
        extra["loss_chunk_tokens"] = LOSS_CHUNK_TOKENS
    extra.update(spec.optim)
    return TrainConfig(steps=budget.steps, learning_rate=budget.learning_rate,
                       warmup_steps=budget.warmup_steps, schedule=budget.schedule, seed=spec.seed,
                       precision=spec.precision, eval_every=every, checkpoint_every=ckpt_every,
                       micro_batch_size=min(budget.rows_per_step, s.micro_batch_size), **extra)


LOGITS_PER_ROW_LIMIT = 2 ** 30
LOSS_CHUNK_TOKENS = 8192


_PREPARED: dict[tuple[str, str, int], Any] = {}


def corpus_seed_of(spec: RunSpec) -> int:
    """The corpus a run reads: ``spec.corpus_seed``, else the one already in ``output_dir/data`` (built by the
    chapters before it), else ``spec.seed``. Runs of several seeds share the book's corpus and vary only their
    initialisation and data order."""
    if spec.corpus_seed is not None:
        return int(spec.corpus_seed)
    try:
        return int(json.loads((Path(spec.output_dir) / "data" / "manifest.json").read_text())["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return spec.seed


def _prepared(scale: str, output_dir: str, seed: int) -> Any:
    """``prepare()`` once per process and data folder: a chapter that chains many runs (one per stage, arm and seed)
    reads its data from disk once. The cache holds read-only arrays and datasets."""
    key = (scale, output_dir, seed)
    if key not in _PREPARED:
        _PREPARED[key] = prepare(scale, output_dir, seed=seed, progress=False)
    return _PREPARED[key]


def resolve(spec: RunSpec) -> Resolved:
    """Build the model, the data stream, the ``TrainConfig`` and the evaluation of a spec (in this process)."""
    s = get_scale(spec.scale)
    data = _prepared(s.name, str(Path(spec.output_dir).resolve()), corpus_seed_of(spec))
    budget = budget_of(spec)
    m = spec.model
    source: Path | None = None
    if spec.branch_from is not None:  # the model is a fresh copy of the branch point's, overwritten on resume
        source = resolve_checkpoint(spec.output_dir, spec.branch_from)
        model = load_with_rope(source)
    elif m.checkpoint is not None:
        source = resolve_checkpoint(spec.output_dir, m.checkpoint)
        model = load_with_rope(source, rope_theta=m.rope_theta, yarn_factor=m.yarn_factor,
                               original_max_position_embeddings=m.original_max_position_embeddings,
                               max_position_embeddings=m.max_position_embeddings or
                               (budget.seq_len if m.yarn_factor is None else None))
    else:
        config = smollm3_config(m.preset or s, tokenizer=data.tokenizer, **m.config)
        if m.max_position_embeddings:
            config.max_position_embeddings = int(m.max_position_embeddings)
        model = build_model(config, spec.seed)
    stream = data_builder_of(spec.builder)(spec, data, budget)
    config = resolve_config(spec)
    optimizer_state = None
    if optimizer_state_of(spec) == "carry":
        optimizer_state = source / ckpt_mod.ACCEL_DIR
        if not optimizer_state.is_dir():
            raise SmolbookError(f"optimizer_state 'carry': checkpoint {source} has no trainer state ({ckpt_mod.ACCEL_DIR}/);"
                                " it is a plain model folder: use optimizer_state 'reset'")
    stage_ends = {}
    if hasattr(stream, "boundaries"):
        per = stream.tokens_per_batch
        stage_ends = {st: b // per for st, (a, b) in stream.boundaries.items() if b > a}
    eval_fn = named(EVALUATIONS[spec.evaluation])(data, s) if spec.evaluate and spec.trainer == "pretrain" else None
    return Resolved(model=model, stream=stream, config=config, eval_fn=eval_fn,
                    tokenizer=data.tokenizer, optimizer_state=optimizer_state, stage_ends=stage_ends, source=source,
                    budget=budget)


# -- fingerprints and auto-resume ---------------------------------------------------------------------------------
def fingerprint(spec: RunSpec) -> str:
    """What a run's results depend on: the spec (less ``resume``), the data it reads (the fingerprint of the data
    folder's manifest, once built) and the library's code. Every "already done" of the book reads it."""
    d = spec.to_dict()
    d.pop("resume")
    try:
        d["data_fingerprint"] = json.loads((Path(spec.output_dir) / "data" / "manifest.json").read_text()).get("fingerprint")
    except (OSError, ValueError):
        d["data_fingerprint"] = None
    return hashlib.sha256((json.dumps(d, sort_keys=True, default=str) + library_hash()).encode()).hexdigest()[:16]


def _resume_decision(spec: RunSpec, run_dir: Path) -> bool:
    """``True`` to continue the run in ``run_dir``; ``resume="auto"`` does so only for the same run.

    ``resume=True`` with nothing to resume from yet starts the run (a requeued job's first attempt may have been
    stopped before its first checkpoint), saying so. Only intact checkpoints count: one cut off mid-write by a
    killed job is passed over (:func:`smolbook.train.checkpoint.resume_point` says which).
    """
    if spec.resume is False:
        return False
    have = ckpt_mod.intact_checkpoint_exists(run_dir) or bool(trl_checkpoints(run_dir))
    if spec.resume is True:
        if not have:
            print(f"{run_dir}: resume=True but no intact checkpoint yet; starting the run", flush=True)
        return have
    if not have:
        return False
    same = _same_run(spec)
    if not same:
        print(f"{run_dir}: its checkpoints are from another spec or another version of the library; starting afresh",
              flush=True)
    return same


# -- running ------------------------------------------------------------------------------------------------------
def train_here(spec: RunSpec, progress: bool = True) -> TrainResult:
    """Train a spec in this process (on every rank of a launched run): what every launcher ends in. ``progress``:
    the trainer's own progress bar (a sweep's worker processes show none; the sweep draws one for all runs)."""
    run_dir = spec.run_dir
    if spec.resume is not False and already_done(spec):
        return TrainResult.from_dir(run_dir)  # build no model and no data for a finished run
    resume = _resume_decision(spec, run_dir)
    r = resolve(spec)
    r.config.progress = progress
    run_dir.mkdir(parents=True, exist_ok=True)
    if spec.branch_from is not None and not resume:
        resume = _branch(spec, run_dir)
    if int(os.environ.get("RANK", "0")) == 0:
        spec.save(run_dir / SPEC_FILE)
        (run_dir / RUN_FILE).write_text(json.dumps({"fingerprint": fingerprint(spec), "ref": spec.ref,
                                                    "stage_ends": r.stage_ends,
                                                    "resumes": _resumes(run_dir, resume)}, indent=1))
    if spec.trainer in ("sft", "dpo"):
        return train_trl(spec, r.model, r.source, r.stream, r.config, r.budget.rows_per_step, r.budget.seq_len, resume)
    keep = sorted(step for step in r.stage_ends.values() if step < r.config.steps) if spec.register_stages else []
    return pretrain(r.model, r.stream, r.config, run_dir, eval_fn=r.eval_fn, tokenizer=r.tokenizer, resume=resume,
                    optimizer_state=r.optimizer_state, keep_steps=keep)


def _branch(spec: RunSpec, run_dir: Path) -> Path:
    """Copy the checkpoint of ``spec.branch_from`` into this run's folder and return it to resume from: the branch
    starts at that checkpoint's step with its model, optimizer moments and data position, and follows this spec's
    schedule from there (LambdaLR keeps its step count, not its function, in a checkpoint)."""
    import shutil

    source = resolve_checkpoint(spec.output_dir, spec.branch_from)
    step = int(ckpt_mod.read_state(source)["step"])
    target = run_dir / "checkpoints" / ckpt_mod.checkpoint_name(step)
    if int(os.environ.get("RANK", "0")) == 0:
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        shutil.rmtree(run_dir / "final", ignore_errors=True)
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        shutil.copytree(source, tmp)
        tmp.rename(target)  # atomic: the other ranks wait for it below
    else:
        import time

        deadline = time.monotonic() + 600
        while not (target / ckpt_mod.STATE_FILE).is_file():
            if time.monotonic() > deadline:
                raise SmolbookError(f"rank {os.environ.get('RANK')}: the branch point {target} never appeared")
            time.sleep(0.2)
    return target


def _resumes(run_dir: Path, resume: bool | Path) -> list[dict[str, Any]]:
    """The run's resume history (kept in ``run.json``): each resume's checkpoint, step and SLURM job, so a requeued
    job's run folder says where it picked up."""
    try:
        before = json.loads((run_dir / RUN_FILE).read_text()).get("resumes", []) if resume else []
    except (OSError, json.JSONDecodeError):
        before = []
    if not resume:
        return []
    point = resume if isinstance(resume, Path) else ckpt_mod.resume_point(run_dir, log=lambda _m: None)
    step = int(ckpt_mod.read_state(point).get("step", 0))
    return [*before, {"checkpoint": point.name, "step": step, "slurm_job": os.environ.get("SLURM_JOB_ID"),
                      "slurm_restart": os.environ.get("SLURM_RESTART_COUNT")}]


def launch_config(scale: str | Scale) -> Path:
    """The accelerate config of a scale's launched runs (FSDP with activation checkpointing at ``full``)."""
    return CONFIG_DIR / LAUNCH_CONFIGS.get(get_scale(scale).name, "single_gpu.yaml")


def launch_command(spec_file: str | Path, scale: str | Scale) -> list[str]:
    """``accelerate launch`` of a saved spec on this machine (``small``: one GPU); inside a SLURM job the ranks are
    started by ``srun`` + ``torchrun`` instead (:func:`smolbook.cluster.launch_in_allocation`)."""
    return ["accelerate", "launch", "--config_file", str(launch_config(scale)), "-m", "smolbook.train", "run",
            str(Path(spec_file).resolve()), "--in-process"]


def write_sbatch(spec: RunSpec, spec_file: str | Path, nodes: int | None = None,
                 gpus_per_node: int = GPUS_PER_NODE) -> Path:
    """A requeueable sbatch script running one saved spec (``smolbook train run SPEC``): inside the allocation
    :func:`run` launches it over every node with ``srun`` + ``torchrun``. Nodes default to the recipe's for the
    run's phase; ``smolbook submit`` writes the job that runs the whole book instead."""
    run_dir = spec.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if nodes is None:
        n, _ = placement(budget_of(spec).rows_per_step, recipe_nodes(gpus_per_node), gpus_per_node)
        nodes = n
    opts = JobOptions(scale=spec.scale, output=run_dir, nodes=nodes, gpus_per_node=gpus_per_node,
                      job_name=f"smolbook-{spec.chapter}-{spec.name}")
    script = run_dir / "train.sbatch"
    body = [sys.executable, "-m", "smolbook.train", "run", str(Path(spec_file).resolve())]
    script.write_text(render_job(opts, body, comment=f"one training run: {spec.ref}"))
    return script


def launcher_of(scale: str | Scale) -> str:
    """The launcher a scale's runs use: the table's, unless ``SMOLBOOK_LAUNCHER`` names another (``smolbook submit
    --launcher srun`` sets ``slurm`` so that even a CPU scale's runs go through ``srun`` + ``torchrun``)."""
    forced = os.environ.get("SMOLBOOK_LAUNCHER", "").strip()
    if forced and forced not in ("inprocess", "accelerate", "slurm"):
        raise SmolbookError(f"SMOLBOOK_LAUNCHER={forced!r}: use inprocess, accelerate or slurm")
    return forced or get_scale(scale).launcher


class TrainingInterrupted(SmolbookError):
    """A run stopped before its end (a signal, a preempted or timed-out job); its last checkpoint is saved."""


def run(spec: RunSpec | str | Path, arm: str | None = None) -> TrainResult:
    """Run a spec the way its scale says, read the result back from the run folder and register its checkpoints.

    in-process (smoke, tiny); ``accelerate launch`` as a subprocess (small); inside a SLURM job (``smolbook
    submit``: ``SLURM_JOB_ID`` set) ``srun`` + ``torchrun`` over the job's nodes, at small and full; at full outside
    a job, an sbatch script is written and the error says to submit the book. A run stopped by a signal raises
    :class:`TrainingInterrupted` after its checkpoint is saved: the same call (a rerun, a requeued job) continues.
    """
    if not isinstance(spec, RunSpec):
        spec = RunSpec.load(spec)
    s = get_scale(spec.scale)
    run_dir = spec.run_dir
    launcher = launcher_of(s)
    if launcher == "inprocess":
        result = train_here(spec)
    else:
        spec_file = spec.save(run_dir / SPEC_FILE)
        done = (run_dir / "final" / ckpt_mod.STATE_FILE).is_file() and not _stale(spec, run_dir)
        alloc = cluster.allocation()
        if not done and alloc is not None:
            code = cluster.launch_in_allocation(spec_file, budget_of(spec).rows_per_step,
                                                launch_config(s) if s.device == "cuda" else None, alloc)
            _check_launched(code, run_dir)
        elif not done and launcher == "accelerate":
            cmd = launch_command(spec_file, s)
            print("launching:", " ".join(shlex.quote(c) for c in cmd), flush=True)
            _check_launched(subprocess.run(cmd).returncode, run_dir)
        elif not done:
            script = write_sbatch(spec, spec_file)
            raise SmolbookError(f"training at scale '{s.name}' runs inside a SLURM job: submit the book with "
                                f"`smolbook submit --scale {s.name}` (or this run alone: `sbatch {script}`)")
        result = TrainResult.from_dir(run_dir)
    if result.interrupted:
        raise TrainingInterrupted(f"run {spec.ref} stopped at its checkpoint {result.checkpoint}; run it again (or "
                                  f"let the requeued job run) and it continues from there")
    register(spec, result, arm=arm)
    return result


def _check_launched(code: int, run_dir: Path) -> None:
    """After a launched run: interrupted (a checkpoint newer than any final) or failed, with what to do next."""
    if (run_dir / "final" / ckpt_mod.STATE_FILE).is_file() and code == 0:
        return
    if ckpt_mod.intact_checkpoint_exists(run_dir) and not (run_dir / "final").exists():
        point = ckpt_mod.resume_point(run_dir, log=lambda _m: None)
        raise TrainingInterrupted(f"training stopped at {point} (exit code {code}); run it again, or let the "
                                  f"requeued job run: resume 'auto' continues from that checkpoint")
    raise SmolbookError(f"training subprocess exited with code {code}; see its output above, then rerun: "
                        f"resume 'auto' continues from the last checkpoint")


def already_done(spec: RunSpec) -> bool:
    """Whether the spec's folder holds a finished run of the same spec and library (the fingerprint in ``run.json``):
    what every "already done" of the book reads, a sweep's and a rerun's alike."""
    return _same_run(spec) and (spec.run_dir / "final" / ckpt_mod.STATE_FILE).is_file()


def _same_run(spec: RunSpec) -> bool:
    """Whether ``run.json`` in the spec's folder carries this spec's fingerprint."""
    try:
        return json.loads((spec.run_dir / RUN_FILE).read_text()).get("fingerprint") == fingerprint(spec)
    except (OSError, json.JSONDecodeError):
        return False


def _stale(spec: RunSpec, run_dir: Path) -> bool:
    try:
        return json.loads((run_dir / RUN_FILE).read_text()).get("fingerprint") != fingerprint(spec)
    except (OSError, json.JSONDecodeError):
        return False  # written by a launched run that predates run.json: trust its final checkpoint


def register(spec: RunSpec, result: TrainResult, arm: str | None = None) -> list[str]:
    """Register a finished run's final checkpoint as ``chapter:<chapter>/<name>`` (with its seed, and its arm when
    it is one of a sweep) and, with ``register_stages``, the checkpoint at the end of each data stage under the
    stage's name; returns the names registered."""
    final = spec.run_dir / "final"
    if not (final / "config.json").is_file():
        raise SmolbookError(f"run {spec.ref} finished without a final checkpoint in {final}")
    state = ckpt_mod.read_state(final)
    register_checkpoint(spec.output_dir, spec.chapter, spec.name, final, step=state.get("step"),
                        tokens=state.get("tokens"), final=spec.final, arm=arm, seed=spec.seed)
    names = [spec.name]
    if spec.register_stages:
        info = json.loads((spec.run_dir / RUN_FILE).read_text())
        for stage, step in info.get("stage_ends", {}).items():
            path = final if step >= int(state["step"]) else spec.run_dir / "checkpoints" / ckpt_mod.checkpoint_name(step)
            st = ckpt_mod.read_state(path)
            register_checkpoint(spec.output_dir, spec.chapter, stage, path, step=st.get("step"), tokens=st.get("tokens"))
            names.append(stage)
    return names
