"""Side-by-side worker processes on a CPU: how many, and a map over them.

At the offline scales' sizes a model is too small for several torch threads to help one process much (measured on
this book's 2-core machine: one pretraining process with two threads made 15.2k tokens/s, two one-thread processes
10.2k + 9.4k), so independent jobs (the runs of a sweep, the evaluations of several checkpoints) run in spawned
one-thread processes instead. On a GPU they run here, one after another.
"""
from __future__ import annotations

import multiprocessing as mp
from typing import Any, Callable, Sequence

import torch

from smolbook.errors import SmolbookError
from smolbook.quiet import quiet_libraries


def worker_count(device: str, n_jobs: int, workers: int | None = None) -> int:
    """How many processes run ``n_jobs`` jobs side by side: ``workers`` when given, else on a CPU one per torch
    thread of this process (``OMP_NUM_THREADS`` or the cores), at most one per job; 1 elsewhere (jobs run here).
    The one rule of the sweep, the ablations' runs and the chat evaluations."""
    if workers is not None:
        if int(workers) < 1:
            raise SmolbookError(f"workers must be at least 1, got {workers}")
        return min(int(workers), max(1, n_jobs))
    return max(1, min(torch.get_num_threads(), n_jobs)) if device == "cpu" else 1


def in_worker(threads: int) -> None:
    """Set up a spawned worker process: ``threads`` torch threads, libraries quiet (its parent shows the progress)."""
    quiet_libraries()
    torch.set_num_threads(threads)


def _call_with_threads(fn: Callable[..., Any], threads: int, args: tuple) -> Any:
    in_worker(threads)
    return fn(*args)


def map_in_workers(fn: Callable[..., Any], jobs: Sequence[tuple], workers: int) -> list[Any]:
    """``[fn(*job) for job in jobs]`` in ``workers`` spawned processes of ``threads // workers`` torch threads each
    (``fn`` and the jobs must pickle: a module-level function and plain values); results in the jobs' order.
    With one worker it runs here."""
    if workers <= 1 or len(jobs) <= 1:
        return [fn(*job) for job in jobs]
    threads = max(1, max(torch.get_num_threads(), workers) // workers)
    with mp.get_context("spawn").Pool(workers) as pool:
        return pool.starmap(_call_with_threads, [(fn, threads, tuple(job)) for job in jobs])
