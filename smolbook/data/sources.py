"""Where each recipe dataset's documents come from.

* small/full: the hub dataset itself, streamed:
  ``datasets.load_dataset(hub_id, subset, split="train", streaming=True)`` and its text column.
* smoke/tiny: the offline domain standing in for the dataset's category (``OFFLINE_STAND_IN``).

Both hand out token ids through the same small interface (:class:`TokenSource`: ``take(n)`` and an
exact ``state_dict``), so the mixture sampler never knows which one it reads.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

import numpy as np

from smolbook.data.products import PreparedData
from smolbook.errors import SmolbookError
from smolbook.scales import load_scales


# The recipe's categories and the offline domain standing in for each (one domain per category).
OFFLINE_STAND_IN = {
    "web": "web",
    "multilingual-web": "multilingual-web",
    "code": "code",
    "math": "math",
    "reasoning": "reasoning",
}


def offline_scales() -> list[str]:
    """The scales that need no hub (from the scales table)."""
    return [name for name, sc in load_scales().items() if sc.offline]


def stand_in(category: str) -> str:
    """The offline domain for a recipe category."""
    if category not in OFFLINE_STAND_IN:
        raise SmolbookError(f"unknown dataset category '{category}': expected one of {', '.join(OFFLINE_STAND_IN)}")
    return OFFLINE_STAND_IN[category]


@dataclass(frozen=True)
class SourceSpec:
    """One entry of a stage mixture: a dataset name, its weight, its category and where it lives."""

    name: str
    weight: float
    category: str
    hub_id: str | None = None
    subset: str | None = None
    text_field: str = "text"

    @classmethod
    def from_entry(cls, entry: Any) -> "SourceSpec":
        """From a ``smolbook.recipe`` DatasetEntry (or anything with the same attributes)."""
        return cls(entry.name, float(entry.weight), entry.category, getattr(entry, "hub_id", None),
                   getattr(entry, "subset", None), getattr(entry, "text_field", None) or "text")


class TokenSource(Protocol):
    def take(self, n: int) -> tuple[np.ndarray, list[int]]:
        """The next ``n`` token ids and the offsets (within them) where a document begins."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class HubUnreachable(SmolbookError):
    """The hub (or the dataset's repo or config) could not be read: trying another dataset will not help."""


def _hub_error(spec: SourceSpec, e: BaseException) -> SmolbookError:
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:240]
    sub = f", subset '{spec.subset}'" if spec.subset else ""
    return HubUnreachable(
        f"cannot stream dataset '{spec.name}' ({spec.hub_id}{sub}) from the Hugging Face hub: "
        f"{type(e).__name__}: {reason}. The small and full scales stream the recipe's datasets from the hub; "
        f"without it, run an offline scale ({', '.join(offline_scales())}), which generates its own corpus."
    )


def open_hub_dataset(spec: SourceSpec):
    """``datasets.load_dataset(hub_id, subset, split="train", streaming=True)``, checked: the first
    row is read so that an unreachable hub or a missing text column fails here, with a clear message."""
    import datasets

    if not spec.hub_id:
        raise SmolbookError(f"dataset '{spec.name}' has no public hub id in the recipe: drop it from the mixture "
                            f"or point its hub_id at a copy you have")
    try:
        ds = datasets.load_dataset(spec.hub_id, spec.subset, split="train", streaming=True)
        first = next(iter(ds), None)
    except SmolbookError:
        raise
    except Exception as e:  # connection, offline mode, gated repo, missing config: one clear message
        raise _hub_error(spec, e) from None
    if first is None:
        raise SmolbookError(f"dataset '{spec.name}' ({spec.hub_id}) has no rows in its train split")
    if spec.text_field not in first:
        raise SmolbookError(f"dataset '{spec.name}' ({spec.hub_id}) has no column '{spec.text_field}' "
                            f"(columns: {', '.join(first)}); fix text_field in the recipe")
    return ds


def as_text(value: Any, tokenizer: Any = None) -> str:
    """A row's text: strings as they are; a conversation (list of {role, content}) rendered with the
    tokenizer's chat template (the recipe's ChatML mid-training data), or joined when there is none."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(m, dict) and "content" in m for m in value):
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(value, tokenize=False)
        return "\n".join(str(m["content"]) for m in value)
    return str(value)


def iter_texts(spec: SourceSpec) -> Iterator[str]:
    """The documents of a hub dataset as strings (streamed)."""
    for row in open_hub_dataset(spec):
        yield as_text(row[spec.text_field])


class HubTokenSource:
    """Tokens of a streamed hub dataset, each document followed by eos; resumable exactly.

    Exact resume uses the streaming dataset's own ``state_dict`` (datasets >= 2.18), taken just
    before the current document was read, plus the offset inside that document.
    """

    def __init__(self, spec: SourceSpec, tokenizer: Any, eos_id: int, upsample_long: tuple[int, int] | None = None):
        self.spec, self.tokenizer, self.eos_id = spec, tokenizer, eos_id
        # A stream cannot be re-drawn at random: a long document is served ``factor`` times in a row instead.
        self.upsample_long, self._replays = upsample_long, 0
        self.ds = open_hub_dataset(spec)
        self.epoch = 0
        self._start_doc()

    def _start_doc(self, ds_state: dict | None = None) -> None:
        if ds_state is not None:
            self.ds.load_state_dict(ds_state)
        self._it = iter(self.ds)
        self._next_doc()

    def _next_doc(self) -> None:
        if self._replays > 0:  # upsampling: the same long document again
            self._replays -= 1
            self._off = 0
            return
        for _ in range(2):
            self._ds_state = copy.deepcopy(self.ds.state_dict())
            try:
                row = next(self._it)
                break
            except StopIteration:  # an epoch ends: start over
                self.epoch += 1
                self.ds.set_epoch(self.epoch)
                self._it = iter(self.ds)
            except Exception as e:
                raise _hub_error(self.spec, e) from None
        else:
            raise SmolbookError(f"dataset '{self.spec.name}' yielded no documents")
        ids = self.tokenizer(as_text(row[self.spec.text_field], self.tokenizer), add_special_tokens=False)["input_ids"]
        self._doc = np.asarray([*ids, self.eos_id], dtype=np.int64)
        self._off = 0
        if self.upsample_long is not None and len(self._doc) >= self.upsample_long[0]:
            self._replays = int(self.upsample_long[1]) - 1

    def take(self, n: int) -> tuple[np.ndarray, list[int]]:
        out, starts, filled = np.empty(n, dtype=np.int64), [], 0
        while filled < n:
            if self._off == 0:
                starts.append(filled)
            k = min(n - filled, len(self._doc) - self._off)
            out[filled:filled + k] = self._doc[self._off:self._off + k]
            filled, self._off = filled + k, self._off + k
            if self._off == len(self._doc):
                self._next_doc()
        return out, starts

    def state_dict(self) -> dict:
        return {"ds": copy.deepcopy(self._ds_state), "offset": self._off, "epoch": self.epoch, "replays": self._replays}

    def load_state_dict(self, state: dict) -> None:
        self.epoch = state["epoch"]
        self.ds.set_epoch(self.epoch)
        self._start_doc(state["ds"])
        self._off, self._replays = state["offset"], int(state.get("replays", 0))


def dataset_texts(entry: Any, data: PreparedData) -> Iterator[str]:
    """The documents of one recipe dataset at ``data``'s scale: streamed from the hub at small/full,
    the offline domain standing in for its category at smoke/tiny."""
    spec = entry if isinstance(entry, SourceSpec) else SourceSpec.from_entry(entry)
    if data.scale.offline:
        yield from data.train[stand_in(spec.category)]["text"]
    else:
        yield from iter_texts(spec)
