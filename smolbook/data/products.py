"""What ``prepare`` hands every later layer: the prepared data of one scale and seed, and its pre-tokenized documents.

They live apart from the builders (``build``, ``mixture``, ``sources``) so that every module that takes a
:class:`PreparedData` can name its type at module top without importing the code that makes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smolbook.scales import Scale


@dataclass
class TokenDocs:
    """Pre-tokenized documents: one flat id array (each document ends with eos) and offsets."""

    ids: np.ndarray       # int32 [total tokens]
    offsets: np.ndarray   # int64 [n_docs + 1]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def doc(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i]:self.offsets[i + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def n_tokens(self) -> int:
        return int(self.offsets[-1])


@dataclass
class PreparedData:
    """The data products of one scale and seed."""

    scale: Scale
    seed: int
    root: Path
    tokenizer: Any
    tokenizer_dir: Path
    train: dict[str, Any] = field(default_factory=dict)   # domain -> datasets.Dataset
    valid: dict[str, Any] = field(default_factory=dict)   # domain -> datasets.Dataset (held-out docs)
    evals: dict[str, Any] = field(default_factory=dict)   # task -> datasets.Dataset
    tokens: dict[str, dict[str, TokenDocs]] = field(default_factory=dict)  # split -> domain -> TokenDocs
    manifest: dict = field(default_factory=dict)
    from_cache: bool = False

    def sizes(self) -> dict[str, dict[str, int]]:
        """Documents and tokens per domain of the training split (as recorded in the manifest)."""
        return self.manifest.get("sizes", {}).get("train", {})
