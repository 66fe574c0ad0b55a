"""Reasoning mid-training data: think-mode conversations in ChatML, packed into full rows with each conversation
kept apart (position ids restart at every conversation), the loss on every token, repeated for the scale's epochs.

The recipe packs its 35B tokens of reasoning traces "wrapped": conversations one after another into full rows, a
conversation running on into the next row. TRL's ``packing_strategy="wrapped"`` does the same but leaves the
position ids running across conversations, so transformers attends from one conversation into the previous one;
the book's pretraining rows (:func:`smolbook.data.packing.pack_documents`) reset them at every document, which is
intra-document masking with no hand-written mask. That is the packing used here, and the pretraining loop trains
on it (trainer ``pretrain``, every token in the loss: the blog masks nothing in mid-training).

Offline the conversations are the teacher's think-mode traces for the training prompts of ``kinds``
(:class:`smolbook.teacher.SolverTeacher`, filtered for correctness); online, the released mid-training mixture
(smoltalk2 Mid) streamed from the hub, through the same packing.

Chapter 09 runs one such run per seed (:func:`seed_specs`) and reads each model in think mode on held-out problems
(:func:`think_scores`: exact match, and the loss of the correct answer,
:func:`smolbook.evaluate.chat.answer_loss`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import AutoConfig

from smolbook.data import PreparedData
from smolbook.data.chat import render_row, shared_chat_data
from smolbook.data.hub_chat import open_chat_dataset, released_source
from smolbook.data.packing import pack_documents
from smolbook.errors import SmolbookError
from smolbook.evaluate.chat import answer_loss, chat_scores
from smolbook.recipe import load_post_training
from smolbook.scales import Budget, Scale, get_scale
from smolbook.teacher import SolverTeacher, filter_correct
from smolbook.train.spec import DataSpec, ModelSpec, RunSpec


REASONING_KINDS = ("math", "code", "facts", "multiturn")  # the offline kinds whose traces are reasoning


def teacher_conversations(scale: str, seed: int, kinds: Sequence[str] = REASONING_KINDS,
                          corpus_seed: int | None = None) -> tuple[list[dict], dict]:
    """The teacher's think-mode traces for the training prompts of ``kinds`` (offline), kept when correct:
    (rows, the teacher's report)."""
    chat = shared_chat_data(scale, seed if corpus_seed is None else corpus_seed)
    prompts = [dict(r) for r in chat.mixture(tuple(kinds), seed=seed)]
    teacher = SolverTeacher(seed=seed)
    kept, report = filter_correct(prompts, teacher.generate(prompts, "think"), "think")
    report["teacher"] = teacher.name
    return kept, report


def tokenize_conversations(rows: Iterable[dict], tokenizer: Any, max_tokens: int) -> list[list[int]]:
    """Each conversation rendered in ChatML by the chat template in its mode and tokenized, until ``max_tokens``."""
    out, total = [], 0
    for row in rows:
        ids = tokenizer(render_row(row, tokenizer), add_special_tokens=False, verbose=False)["input_ids"]
        out.append(ids)
        total += len(ids)
        if total >= max_tokens:
            return out
    if total < max_tokens:
        print(f"mid-training data: {total:,} tokens of conversations for an epoch of {max_tokens:,}; the epoch "
              f"repeats them", flush=True)
    if not out:
        raise SmolbookError("mid-training data: no conversations to pack")
    return out


class ConversationStream:
    """Batches of rows packed from whole conversations (``input_ids``, ``position_ids`` restarting at every
    conversation, ``labels`` = every token), one shuffled pass over the conversations per epoch, resumable.

    ``tokens_per_epoch`` of conversations are packed ``epochs`` times, each epoch in a new order (seeded).
    """

    def __init__(self, conversations: Sequence[Sequence[int]], seq_len: int, batch_size: int, n_batches: int,
                 epochs: int, seed: int = 0, pad_id: int = 0):
        self.seq_len, self.batch_size, self.n_batches, self.seed = int(seq_len), int(batch_size), int(n_batches), seed
        self.epochs = max(1, int(epochs))
        per_epoch = -(-self.n_batches * self.batch_size // self.epochs)
        parts, self.fill = [], []
        for epoch in range(self.epochs):
            order = np.random.default_rng([seed, epoch]).permutation(len(conversations))
            docs = [conversations[i] for i in order]
            while sum(map(len, docs)) < per_epoch * self.seq_len:  # too few conversations: repeat the pass
                docs = docs + docs
            packed = pack_documents(docs, self.seq_len, doc_masking=True, drop_last=True, pad_id=pad_id)
            parts.append({k: v[:per_epoch] for k, v in packed.items()})
        self.rows = {k: torch.cat([p[k] for p in parts])[: self.n_batches * self.batch_size] for k in parts[0]}
        self.conversations = len(conversations)
        self.tokens_per_epoch = per_epoch * self.seq_len
        self.batches = 0
        self.stage = "mid_training"

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> "ConversationStream":
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        if self.batches >= self.n_batches:
            raise StopIteration
        a = self.batches * self.batch_size
        self.batches += 1
        return {k: v[a:a + self.batch_size] for k, v in self.rows.items()}

    def starts_per_row(self) -> list[int]:
        """How many conversations start in each row (a restart of the position ids)."""
        return (self.rows["position_ids"] == 0).sum(-1).tolist()

    def state_dict(self) -> dict:
        return {"version": 1, "batches": self.batches, "config": self._config()}

    def load_state_dict(self, state: dict) -> None:
        if state.get("version") != 1 or state.get("config") != self._config():
            raise SmolbookError("stream state does not match this conversation stream: resume with the same spec")
        self.batches = int(state["batches"])

    def _config(self) -> dict:
        return {"seq_len": self.seq_len, "batch_size": self.batch_size, "n_batches": self.n_batches,
                "epochs": self.epochs, "seed": self.seed, "conversations": self.conversations}


def reasoning_stream(spec: Any, data: PreparedData, budget: Budget) -> ConversationStream:
    """The ``reasoning-traces`` data builder: think-mode conversations of ``options.kinds`` (offline) or the released
    mixture (online) in ChatML, packed into full rows for trainer ``pretrain``, every token in the loss, position ids
    restarting at every conversation (not TRL's ``packing_strategy="wrapped"``: it packs the same way but does not
    reset positions, so packed conversations would attend to each other). One epoch = the scale's mid-training
    tokens, repeated for the recipe's epochs (the budget's steps cover them all)."""
    s = get_scale(spec.scale)
    epochs = budget.epochs
    n_batches = budget.steps
    per_epoch_tokens = -(-n_batches * budget.rows_per_step // epochs) * budget.seq_len
    if s.offline:
        rows, _ = teacher_conversations(spec.scale, spec.seed, spec.data.options.get("kinds", REASONING_KINDS),
                                        corpus_seed=data.seed)
    else:
        rows = open_chat_dataset(released_source("mid_training"), streaming=True, seed=spec.seed)
    tok = data.tokenizer
    convs = tokenize_conversations(rows, tok, per_epoch_tokens)
    return ConversationStream(convs, budget.seq_len, budget.rows_per_step, n_batches, epochs, seed=spec.seed,
                              pad_id=tok.pad_token_id or 0)


def mid_spec(chapter: str, name: str, source: str, scale: str, output_dir: Any, seed: int,
             max_position_embeddings: int | None = None, kinds: Sequence[str] | None = None,
             checkpoint_every: int | None = None) -> Any:
    """The run spec of one mid-training run: ``source`` (a checkpoint reference) continued on the reasoning traces,
    trainer ``pretrain`` with the scale's mid-training budget; the context length of the source is kept.
    ``checkpoint_every`` keeps a checkpoint every so many steps (a learning curve evaluates them)."""
    options = {} if kinds is None else {"kinds": list(kinds)}
    return RunSpec(chapter=chapter, name=name, scale=scale, output_dir=str(output_dir), phase="mid_training",
                   seed=seed, model=ModelSpec(checkpoint=source, max_position_embeddings=max_position_embeddings),
                   data=DataSpec(builder="reasoning-traces", options=options), evaluate=False,
                   checkpoint_every=checkpoint_every, keep_checkpoints=checkpoint_every is not None)


def recipe_line(scale: Scale) -> str:
    """The recipe's mid-training beside the scale's, on one line: what the chapter shrinks, and by how much."""
    pt, b = load_post_training(), scale.budget("mid_training")
    return (f"recipe: {pt.value('mid_training', 'tokens_per_epoch'):,} tokens x {pt.value('mid_training', 'epochs')} "
            f"epochs, {pt.value('mid_training', 'format')}, {pt.value('mid_training', 'packing')} packing; "
            f"{scale.name}: {b.tokens:,} tokens x {b.epochs} epochs in rows of {b.seq_len}, {b.steps} steps, "
            f"lr {b.learning_rate:g}")


def seed_specs(chapter: str, source: str, source_folder: str | Path, scale: str, output_dir: Any,
               seeds: Sequence[int], main_seed: int) -> dict[tuple[str, int], Any]:
    """One mid-training run per seed, keyed ``("mid", seed)`` for :func:`smolbook.train.sweep`: every seed continues
    the same ``source`` on the reasoning traces with the source's context length (read from ``source_folder``), so
    that the seeds differ only in their data order; the main seed is the chapter's model (``mid``) and keeps a
    checkpoint every quarter of its steps, the points of its learning curve."""
    context = AutoConfig.from_pretrained(source_folder).max_position_embeddings
    curve_every = max(1, get_scale(scale).budget("mid_training").steps // 4)
    return {("mid", k): mid_spec(chapter, "mid" if k == main_seed else f"mid-seed{k}", source, scale, output_dir, k,
                                 max_position_embeddings=context, kinds=REASONING_KINDS,
                                 checkpoint_every=curve_every if k == main_seed else None)
            for k in seeds}


def think_scores(checkpoints: Mapping[str, Any], rows: Any, max_new_tokens: int) -> list[dict[str, Any]]:
    """Each checkpoint (label -> folder) on held-out ``rows`` in think mode: the chat scores (exact match, format)
    and, as ``answer loss``, the loss of the correct answer (:func:`smolbook.evaluate.chat.answer_loss`), which moves before exact match
    does: one record per checkpoint."""
    records = chat_scores(dict(checkpoints), rows, modes=("think",), max_new_tokens=max_new_tokens)
    loss = {label: answer_loss(path, rows) for label, path in checkpoints.items()}
    for rec in records:
        rec["answer loss"] = loss[rec["checkpoint"]]
    return records


def think_table(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The columns of :func:`think_scores` records a reader compares, rounded: exact match, format, answer loss and
    exact match per reasoning kind, with the generation's speed."""
    cols = ["checkpoint", "answer_em", "format_ok", "answer loss", *[f"correct/{k}" for k in REASONING_KINDS],
            "tokens_per_s"]
    return pd.DataFrame(records)[cols].round(3)
