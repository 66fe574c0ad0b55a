"""``sweep(runs)``: arms x seeds of run specs, trained the one way every run trains (:func:`smolbook.train.run`).

A chapter that compares arms over seeds hands the specs here, keyed by ``(arm, seed)``, and gets back one
:class:`SweepRun` per key with the run's result. Each run is a plain :class:`~smolbook.train.spec.RunSpec`: its
fingerprint (spec + data + library) decides whether it is already done, its folder holds ``spec.yaml`` and its
final checkpoint is registered in ``checkpoints.json`` with its arm and seed.

On a CPU the runs train side by side in spawned one-thread worker processes (at most one per torch thread of this
process; :mod:`smolbook.parallel` says why). One progress bar counts the steps of all runs from their ``metrics.jsonl``.
On a GPU, at launched scales, and with ``workers=1`` they train here one after another.
"""
from __future__ import annotations

import multiprocessing as mp
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from smolbook.data import prepare
from smolbook.errors import SmolbookError
from smolbook.parallel import in_worker, worker_count
from smolbook.scales import get_scale
from smolbook.train.loop import TrainResult
from smolbook.train.run import (TrainingInterrupted, already_done, budget_of, corpus_seed_of, launcher_of, register,
                                run, train_here)
from smolbook.train.spec import RunSpec


@dataclass
class SweepRun:
    """One arm x seed of a sweep: its spec and what the run left behind."""

    arm: str
    seed: int
    spec: RunSpec
    result: TrainResult

    @property
    def checkpoint(self) -> Path:
        return self.result.checkpoint

    @property
    def ref(self) -> str:
        return self.spec.ref


def plan_workers(specs: list[RunSpec], workers: int | None = None) -> int:
    """:func:`worker_count` for a sweep's specs: side by side only when every run trains in process on a CPU."""
    inprocess_cpu = all(get_scale(s.scale).device == "cpu" and launcher_of(s.scale) == "inprocess" for s in specs)
    return worker_count("cpu" if inprocess_cpu else "cuda", len(specs), workers)


def sweep(runs: Mapping[tuple[str, int], RunSpec], *, workers: int | None = None, progress: bool = True,
          desc: str = "runs") -> dict[tuple[str, int], SweepRun]:
    """Train every ``(arm, seed) -> spec`` (skipping runs already done with the same fingerprint) and return
    ``(arm, seed) -> SweepRun`` in the order given. Checkpoints are registered with their arm and seed."""
    keys = list(runs)
    for arm, seed in keys:
        if runs[arm, seed].seed != seed:
            raise SmolbookError(f"sweep: run ({arm!r}, {seed}) has spec seed {runs[arm, seed].seed}; key it by its seed")
    refs = [runs[k].ref for k in keys]
    if len(set(refs)) != len(refs):
        raise SmolbookError(f"sweep: two runs share a folder ({', '.join(sorted({r for r in refs if refs.count(r) > 1}))})"
                            "; give each arm x seed its own name")
    todo = [k for k in keys if not already_done(runs[k])]  # a worker process costs seconds to start
    n = plan_workers([runs[k] for k in todo], workers)
    if n == 1:
        results = {(arm, seed): run(runs[arm, seed], arm=arm) for arm, seed in keys}
    else:
        results = dict(zip(todo, _side_by_side([runs[k] for k in todo], n, progress, desc)))
        for arm, seed in keys:
            spec = runs[arm, seed]
            result = results.setdefault((arm, seed), TrainResult.from_dir(spec.run_dir))
            if result.interrupted:
                raise TrainingInterrupted(f"run {spec.ref} stopped at its checkpoint; run it again and it continues "
                                          "from there")
            register(spec, result, arm=arm)
    return {(arm, seed): SweepRun(arm, seed, runs[arm, seed], results[arm, seed]) for arm, seed in keys}


def _worker(spec_dict: dict[str, Any], threads: int) -> str:
    """A worker process's job: one run in this process, ``threads`` torch threads, no progress bars of its own."""
    in_worker(threads)
    spec = RunSpec.from_dict(spec_dict)
    train_here(spec, progress=False)
    return str(spec.run_dir)


def _side_by_side(specs: list[RunSpec], workers: int, progress: bool, desc: str) -> list[TrainResult]:
    """Train ``specs`` in ``workers`` spawned processes (longest first); the last ones, with fewer runs left beside
    them, get more threads."""
    # The data folder is built (or checked) here, once: workers only read it.
    for scale, out, seed in {(s.scale, str(Path(s.output_dir).resolve()), corpus_seed_of(s)) for s in specs}:
        prepare(scale, out, seed=seed, progress=False)
    order = sorted(range(len(specs)), key=lambda i: -budget_of(specs[i]).steps)
    budget = max(torch.get_num_threads(), workers)
    pool = mp.get_context("spawn").Pool(workers)
    try:
        pending = {i: pool.apply_async(_worker, (specs[i].to_dict(), max(1, budget // min(workers, len(specs) - j))))
                   for j, i in enumerate(order)}
        wait_with_progress(desc, [(specs[i].run_dir, budget_of(specs[i]).steps, r) for i, r in pending.items()],
                           progress)
        for r in pending.values():
            r.get()  # a worker's error surfaces here, with its traceback
    finally:
        pool.terminate()
        pool.join()
    return [TrainResult.from_dir(s.run_dir) for s in specs]


def wait_with_progress(desc: str, pending: list[tuple[Path, int, Any]], progress: bool) -> None:
    """Wait for worker results ``(run folder, steps, AsyncResult)`` under one bar over the steps of all runs, read
    from the runs' own ``metrics.jsonl`` (flushed about once a second)."""
    total = sum(steps for _, steps, _ in pending)
    with tqdm(total=total, desc=f"{desc}: steps of {len(pending)} runs", disable=not progress, mininterval=1.0,
              dynamic_ncols=True) as bar:
        while True:
            done = sum(res.ready() for _, _, res in pending)
            logged = sum(min(_steps_logged(run_dir), steps) for run_dir, steps, _ in pending)
            bar.update(min(logged, total) - bar.n)
            bar.set_postfix(runs_done=f"{done}/{len(pending)}", refresh=False)
            if done == len(pending):
                break
            next(res for _, _, res in pending if not res.ready()).wait(1.0)
        bar.update(total - bar.n)


def _steps_logged(run_dir: Path) -> int:
    try:
        return (run_dir / "metrics.jsonl").read_text().count('"kind": "train"')
    except OSError:
        return 0
