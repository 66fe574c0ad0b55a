"""The pretraining data stream: stage mixtures interleaved by weight, packed into rows, resumable.

How sources are interleaved follows nanotron/Megatron blended datasets: every row of ``seq_len``
tokens comes from one source, and the next row goes to the source whose share of the rows so far
lags its target share the most. That keeps token shares on target at every prefix of the stream
(a random draw per row would wander by several points over a few hundred rows) and makes the
position in the mixture a handful of counters, which is what makes exact resume cheap. The seed
shuffles document order within each source (a fresh permutation every epoch).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from smolbook.data.packing import pack_documents, positions_for
from smolbook.data.products import PreparedData, TokenDocs
from smolbook.data.sources import HubTokenSource, SourceSpec, stand_in
from smolbook.errors import SmolbookError
from smolbook.recipe import load_recipe
from smolbook.scales import pretraining_shares, split_steps


PRETRAINING_STAGES = ("stable", "stable-2", "decay")


class OfflineTokenSource:
    """Tokens of one offline domain in a seeded order, reshuffled every epoch; resumable exactly.

    ``upsample_long=(min_tokens, factor)`` draws every document of at least ``min_tokens`` tokens ``factor`` times
    per epoch (long-document upsampling, the long-context ablation the SmolLM3 team ran and did not keep).
    """

    def __init__(self, docs: TokenDocs, seed: int, key: str, upsample_long: tuple[int, int] | None = None):
        if len(docs) == 0:
            raise SmolbookError(f"offline domain '{key}' has no documents: rebuild the corpus (prepare)")
        self.docs, self.seed, self.key = docs, seed, key
        self._salt = zlib.crc32(key.encode())  # stable per domain (str hash is salted per process)
        self._pool = np.arange(len(docs))
        if upsample_long is not None:
            min_tokens, factor = (int(x) for x in upsample_long)
            long = np.flatnonzero(docs.lengths >= min_tokens)
            self._pool = np.concatenate([self._pool, *([long] * max(0, factor - 1))])
        self.epoch, self.pos, self.off = 0, 0, 0
        self._order = self._perm(0)

    def _perm(self, epoch: int) -> np.ndarray:
        return self._pool[np.random.default_rng([self.seed, self._salt, epoch]).permutation(len(self._pool))]

    def take(self, n: int) -> tuple[np.ndarray, list[int]]:
        out, starts, filled = np.empty(n, dtype=np.int64), [], 0
        while filled < n:
            doc = self.docs.doc(self._order[self.pos])
            if self.off == 0:
                starts.append(filled)
            k = min(n - filled, len(doc) - self.off)
            out[filled:filled + k] = doc[self.off:self.off + k]
            filled, self.off = filled + k, self.off + k
            if self.off == len(doc):
                self.pos, self.off = self.pos + 1, 0
                if self.pos == len(self._order):
                    self.epoch, self.pos = self.epoch + 1, 0
                    self._order = self._perm(self.epoch)
        return out, starts

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos, "off": self.off}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos, self.off = int(state["epoch"]), int(state["pos"]), int(state["off"])
        self._order = self._perm(self.epoch)


class Mixture:
    """A stage's sources with weights normalised by their sum (kept: ``weight_sum``)."""

    def __init__(self, stage: str, sources: Sequence[SourceSpec]):
        if not sources:
            raise SmolbookError(f"stage '{stage}' has no datasets in its mixture")
        bad = [s.name for s in sources if not (s.weight >= 0)]
        if bad:
            raise SmolbookError(f"stage '{stage}': negative or NaN weight for {', '.join(bad)}")
        self.stage, self.sources = stage, list(sources)
        self.weight_sum = float(sum(s.weight for s in sources))
        if self.weight_sum <= 0:
            raise SmolbookError(f"stage '{stage}': mixture weights sum to {self.weight_sum}; need a positive sum")
        self.shares = np.array([s.weight / self.weight_sum for s in sources])

    def next_source(self, counts: np.ndarray) -> int:
        """Megatron's blending rule: the source whose row count lags its target most (ties: first)."""
        return int(np.argmax(self.shares * (counts.sum() + 1) - counts))

    def category_shares(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for s, w in zip(self.sources, self.shares):
            out[s.category] = out.get(s.category, 0.0) + float(w)
        return out


def recipe_mixture(stage: str) -> list[SourceSpec]:
    """The stage's datasets and weights from the recipe (``smolbook.recipe``)."""
    return [SourceSpec.from_entry(e) for e in load_recipe().stage(stage).datasets]


def default_boundaries(stages: Sequence[str], token_budget: int, tokens_per_batch: int = 1) -> dict[str, tuple[int, int]]:
    """Token interval of each stage, in whole batches: the pretraining stages at the shares the released configs
    ran (0.731 / 0.158 / 0.111 of the steps, whatever the scale); other stage lists share the budget equally."""
    shares = pretraining_shares()
    known = all(s in shares for s in stages)
    steps = max(1, token_budget // tokens_per_batch)
    split = split_steps(steps, {s: (shares[s] if known else 1.0) for s in stages})
    out = {s: (a * tokens_per_batch, b * tokens_per_batch) for s, (a, b) in split.items()}
    last = stages[-1]
    out[last] = (out[last][0], max(out[last][1], token_budget))  # a budget not a whole number of batches ends in the last stage
    return out


class PretrainStream:
    """Batches of packed rows drawn from the stages' mixtures: ``input_ids``, ``position_ids``, ``labels``.

    Offline scales read each dataset's stand-in domain (datasets of one category share that
    domain's stream, so the domain shares equal the stage's category shares); online scales stream
    every dataset from the hub. ``stream.state_dict()`` / ``load_state_dict`` resume exactly.
    ``mixtures`` (stage -> list of SourceSpec) overrides the recipe, e.g. for tests and ablations.
    """

    def __init__(self, data: PreparedData, stages: Sequence[str] = PRETRAINING_STAGES, token_budget: int | None = None,
                 seq_len: int | None = None, batch_size: int | None = None, seed: int = 0,
                 doc_masking: bool = True, boundaries: dict[str, tuple[int, int]] | None = None,
                 mixtures: dict[str, Sequence[SourceSpec]] | None = None,
                 upsample_long: tuple[int, int] | None = None, branch_reseeds: bool = False):
        scale = data.scale
        # A branch of another run (RunSpec.branch_from) that carries another seed: it continues that run's data
        # position (step, stage, rows per source) but draws its documents afresh under its own seed, so several
        # seeds branched from one checkpoint are replicates over different tokens of the same mixture.
        self.branch_reseeds = bool(branch_reseeds)
        self.data, self.seed, self.doc_masking = data, int(seed), bool(doc_masking)
        self.upsample_long = None if upsample_long is None else tuple(int(x) for x in upsample_long)
        self.stages = list(stages)
        if not self.stages:
            raise SmolbookError("PretrainStream needs at least one stage")
        self.seq_len = int(seq_len or scale.seq_len)
        self.batch_size = int(batch_size or scale.global_batch_size)
        self.token_budget = int(token_budget if token_budget is not None else scale.pretrain_tokens)
        if min(self.seq_len, self.batch_size, self.token_budget) <= 0:
            raise SmolbookError("seq_len, batch_size and token_budget must be positive")
        self.boundaries = dict(boundaries) if boundaries else \
            default_boundaries(self.stages, self.token_budget, self.seq_len * self.batch_size)
        missing = [s for s in self.stages if s not in self.boundaries]
        if missing:
            raise SmolbookError(f"boundaries give no token interval for stage(s) {', '.join(missing)}")
        self.mixtures = {s: Mixture(s, (mixtures or {}).get(s) or recipe_mixture(s)) for s in self.stages}
        self.offline = bool(scale.offline)
        self._sources: dict[str, Any] = {}
        self.tokens_per_batch = self.seq_len * self.batch_size
        self.n_batches = max(1, self.token_budget // self.tokens_per_batch)
        self._reset_counters()

    # -- bookkeeping -------------------------------------------------------------------
    def _reset_counters(self) -> None:
        self.batches = 0
        self.tokens_seen = 0
        self.stage = self.stages[0]
        self.rows = {s: np.zeros(len(m.sources), dtype=np.int64) for s, m in self.mixtures.items()}

    def _key(self, spec: SourceSpec) -> str:
        return stand_in(spec.category) if self.offline else spec.name

    def _source(self, spec: SourceSpec):
        key = self._key(spec)
        if key not in self._sources:
            if self.offline:
                if key not in self.data.tokens["train"]:
                    raise SmolbookError(f"offline domain '{key}' is missing from the prepared corpus")
                self._sources[key] = OfflineTokenSource(self.data.tokens["train"][key], self.seed, key,
                                                        upsample_long=self.upsample_long)
            else:
                tok = self.data.tokenizer
                self._sources[key] = HubTokenSource(spec, tok, tok.eos_token_id, upsample_long=self.upsample_long)
        return self._sources[key]

    def stage_at(self, token: int) -> str:
        for s in self.stages:
            a, b = self.boundaries[s]
            if a <= token < b:
                return s
        return self.stages[-1]

    # -- iteration ---------------------------------------------------------------------
    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self.batches >= self.n_batches:
            raise StopIteration
        ids = np.empty((self.batch_size, self.seq_len), dtype=np.int64)
        pos = np.empty_like(ids)
        for r in range(self.batch_size):
            stage = self.stage_at(self.tokens_seen)
            mix, counts = self.mixtures[stage], self.rows[stage]
            i = mix.next_source(counts)
            counts[i] += 1
            ids[r], starts = self._source(mix.sources[i]).take(self.seq_len)
            pos[r] = positions_for(starts, self.seq_len, self.doc_masking)
            self.tokens_seen += self.seq_len
            self.stage = stage
        self.batches += 1
        t = torch.from_numpy(ids)
        return {"input_ids": t, "position_ids": torch.from_numpy(pos), "labels": t.clone()}

    # -- reporting ---------------------------------------------------------------------
    def tokens_by(self, stage: str, by: str = "category") -> dict[str, int]:
        """Tokens served so far in ``stage`` per category (or per dataset name with by="name")."""
        out: dict[str, int] = {}
        for spec, n in zip(self.mixtures[stage].sources, self.rows[stage]):
            k = spec.category if by == "category" else spec.name
            out[k] = out.get(k, 0) + int(n) * self.seq_len
        return out

    def weight_sums(self) -> dict[str, float]:
        """Each stage's raw weight sum (the mixture is normalised by it)."""
        return {s: m.weight_sum for s, m in self.mixtures.items()}

    # -- exact resume -------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"version": 1, "seed": self.seed, "batches": self.batches, "tokens_seen": self.tokens_seen,
                "stage": self.stage, "rows": {s: c.tolist() for s, c in self.rows.items()},
                "sources": {k: src.state_dict() for k, src in self._sources.items()},
                "config": self._config()}

    def load_state_dict(self, state: dict) -> None:
        config = dict(state.get("config") or {})
        reseed = self.branch_reseeds and config.get("seed") != self.seed
        if reseed:
            config["seed"] = self.seed
        if state.get("version") != 1 or config != self._config():
            raise SmolbookError("stream state does not match this stream (different stages, budget, seq_len, "
                                "batch size, seed or masking): resume with the same PretrainStream arguments")
        self.batches, self.tokens_seen, self.stage = state["batches"], state["tokens_seen"], state["stage"]
        self.rows = {s: np.asarray(c, dtype=np.int64) for s, c in state["rows"].items()}
        specs = {self._key(sp): sp for m in self.mixtures.values() for sp in m.sources}
        self._sources = {}
        if reseed:  # same position in the mixture, documents drawn afresh under this stream's seed
            return
        for key, st in state["sources"].items():
            self._source(specs[key]).load_state_dict(st)

    def _config(self) -> dict:
        return {"stages": self.stages, "token_budget": self.token_budget, "seq_len": self.seq_len,
                "batch_size": self.batch_size, "seed": self.seed, "doc_masking": self.doc_masking,
                "upsample_long": None if self.upsample_long is None else list(self.upsample_long),
                "boundaries": {k: list(v) for k, v in self.boundaries.items()}}


def validation_batches(data: PreparedData, domain: str, seq_len: int | None = None, batch_size: int | None = None,
                       max_batches: int | None = None, doc_masking: bool = True) -> list[dict[str, torch.Tensor]]:
    """Held-out documents of ``domain`` (``data.tokens["valid"]``) packed in their fixed order, for a
    per-domain validation loss that is the same at every evaluation. The last row is padded
    (labels -100 there)."""
    if domain not in data.tokens.get("valid", {}):
        raise SmolbookError(f"no validation documents for domain '{domain}' (offline scales only): "
                            f"choose one of {', '.join(data.tokens.get('valid', {})) or 'none'}")
    td: TokenDocs = data.tokens["valid"][domain]
    seq_len = int(seq_len or data.scale.seq_len)
    batch_size = int(batch_size or data.scale.micro_batch_size)
    packed = pack_documents([td.doc(i) for i in range(len(td))], seq_len, doc_masking,
                            pad_id=data.tokenizer.pad_token_id)
    n = packed["input_ids"].shape[0]
    out = [{k: v[i:i + batch_size] for k, v in packed.items()} for i in range(0, n, batch_size)]
    return out[:max_batches] if max_batches else out
