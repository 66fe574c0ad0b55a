"""The library's part of every fingerprint: a hash of its own source and data files.

A chapter's result and a training run's both depend on the library as much as on their own inputs, so the
runner's notebook fingerprints and :func:`smolbook.train.run`'s run fingerprints both fold this in: after a library
edit, everything it may touch reruns.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def library_hash() -> str:
    """Hash of the library's ``.py``, ``.yaml`` and ``.jinja`` files (paths and bytes)."""
    h = hashlib.sha256()
    for p in sorted(PACKAGE_DIR.rglob("*")):
        if p.is_file() and p.suffix in (".py", ".yaml", ".jinja") and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(PACKAGE_DIR)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()
