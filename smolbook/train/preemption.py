"""Preemption: how a training process learns that its SLURM job must stop soon.

A job submitted by ``smolbook submit`` asks SLURM for a signal some minutes before its time limit
(``--signal=B:USR1@SECONDS``). That signal reaches only the batch script; the training ranks run on many nodes,
under ``srun``/``torchrun`` or inside a notebook kernel, and no single signal reaches them all reliably. So the
script touches a *stop file* on the shared filesystem (its path in ``SMOLBOOK_STOP_FILE``) and every rank watches
for it: the training loop then does what it does on SIGTERM — finishes the step, saves a checkpoint on all ranks
at the same step and returns ``interrupted``. The script then requeues the job, which resumes.
"""
from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP_FILE_ENV = "SMOLBOOK_STOP_FILE"


@contextmanager
def watch_stop_file(flag: dict[str, int], poll_s: float = 1.0) -> Iterator[None]:
    """While the block runs, set ``flag["signal"]`` to SIGUSR1 once the file named by ``SMOLBOOK_STOP_FILE`` exists.

    Polled from a daemon thread once a second (one ``stat`` on the shared filesystem): the loop checks the flag
    once per step and agrees on the stop across ranks, so a rank that sees the file a second late costs nothing.
    Does nothing when the variable is unset (every run outside a submitted job).
    """
    path = os.environ.get(STOP_FILE_ENV)
    if not path:
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if os.path.exists(path):
                flag["signal"] = flag["signal"] or int(signal.SIGUSR1)
                return
            done.wait(poll_s)

    thread = threading.Thread(target=watch, name="smolbook-stop-file", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
