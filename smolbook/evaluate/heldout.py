"""Cheap evaluation during pretraining: per-domain validation loss and the offline corpus' held-out tasks.

* validation loss: mean next-token loss over held-out documents of each domain (``data.valid``, packed by
  ``smolbook.data.validation_batches``);
* ``cloze`` (4 choices): the choice whose tokens get the lowest mean loss after the prompt (lm-eval's ``acc``
  scoring with length normalisation);
* ``arithmetic`` / ``code_output`` / ``translation``: the answer teacher-forced after the prompt. ``exact``
  counts examples whose every answer token is the model's argmax given the true prefix, which is exactly
  "greedy decoding of len(answer) tokens reproduces the answer", at the cost of one forward pass instead of a
  decode loop; ``token_acc`` is the per-token answer accuracy, which moves earlier at small scale.

Everything is scored in packed rows: examples are concatenated with position_ids restarting at 0 and no
attention mask, so transformers keeps them apart (the same intra-document masking as training) and a batch of
short examples costs one forward pass. Why hand-written: lighteval (chapter 14) needs a served model and its
own task registry; these scores run every few hundred steps inside the training loop, in-process, on the
book's own tokenizer and corpus.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import torch

from smolbook.data import DOMAINS, PreparedData
from smolbook.data.mixture import validation_batches
from smolbook.errors import SmolbookError
from smolbook.scales import Scale, get_scale


GENERATION_TASKS = ("arithmetic", "code_output", "translation")
Item = tuple[list[int], int]  # (token ids, index of the first scored token)


def _encode(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    if not texts:
        return []
    return tokenizer(list(texts), add_special_tokens=False)["input_ids"]


def _fit(ids: list[int], start: int, seq_len: int) -> Item:
    """Keep the scored tail: drop tokens from the left when an item is longer than a row."""
    if len(ids) > seq_len:
        cut = len(ids) - seq_len
        ids, start = ids[cut:], max(1, start - cut)
    return ids, max(1, start)


@torch.no_grad()
def score_items(model: torch.nn.Module, items: Sequence[Item], seq_len: int, rows_per_batch: int = 8
                ) -> list[tuple[float, int, int]]:
    """For each item, (sum of next-token losses, number of scored tokens, number the model's argmax gets right)
    over the tokens from its start index on, scored in packed rows of ``seq_len``."""
    device = next(model.parameters()).device
    items = [_fit(list(ids), start, seq_len) for ids, start in items]
    # First-fit in order: fills rows densely enough for short evaluation examples.
    rows: list[list[tuple[int, int]]] = [[]]
    used = [0]
    for i, (ids, _) in enumerate(items):
        if used[-1] + len(ids) > seq_len:
            rows.append([])
            used.append(0)
        rows[-1].append((i, used[-1]))
        used[-1] += len(ids)
    results: list[tuple[float, int, int]] = [(0.0, 0, 0)] * len(items)
    was_training = model.training
    model.eval()
    for b in range(0, len(rows), rows_per_batch):
        chunk = rows[b:b + rows_per_batch]
        width = max(max(off + len(items[i][0]) for i, off in row) for row in chunk)
        input_ids = torch.zeros(len(chunk), width, dtype=torch.long)
        position_ids = torch.zeros(len(chunk), width, dtype=torch.long)
        for r, row in enumerate(chunk):
            end = 0
            for i, off in row:
                ids = items[i][0]
                input_ids[r, off:off + len(ids)] = torch.tensor(ids)
                position_ids[r, off:off + len(ids)] = torch.arange(len(ids))
                end = off + len(ids)
            position_ids[r, end:] = torch.arange(width - end)  # padding: its own segment, never scored
        logits = model(input_ids=input_ids.to(device), position_ids=position_ids.to(device), use_cache=False).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        pred = logits.argmax(-1)
        for r, row in enumerate(chunk):
            for i, off in row:
                ids, start = items[i]
                tgt = torch.tensor(ids[start:], device=device)
                at = torch.arange(off + start - 1, off + len(ids) - 1, device=device)  # logits predicting tgt
                nll = -logp[r, at, tgt].sum().item()
                results[i] = (nll, len(tgt), int((pred[r, at] == tgt).sum()))
    model.train(was_training)
    return results


@torch.no_grad()
def validation_loss(model: torch.nn.Module, batches: Sequence[dict[str, torch.Tensor]]) -> float:
    """Token-weighted mean next-token loss over packed held-out batches (``smolbook.data.validation_batches``)."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    for b in batches:
        n = int((b["labels"][:, 1:] != -100).sum())
        # num_items_in_batch=1 turns transformers' mean into a token sum, so batches weigh by their tokens.
        out = model(input_ids=b["input_ids"].to(device), position_ids=b["position_ids"].to(device),
                    labels=b["labels"].to(device), use_cache=False, num_items_in_batch=1)
        total, count = total + float(out.loss), count + n
    model.train(was_training)
    if count == 0:
        raise SmolbookError("validation_loss: the batches hold no labelled tokens")
    return total / count


def cloze_accuracy(model: torch.nn.Module, tokenizer: Any, rows: Sequence[dict], seq_len: int,
                   rows_per_batch: int = 8) -> float:
    """Fraction of rows whose lowest-mean-loss choice is the answer (``label`` index, or the ``answer`` text)."""
    items, owners = [], []
    prompts = _encode(tokenizer, [r["prompt"] for r in rows])
    for k, (row, p) in enumerate(zip(rows, prompts)):
        for c in _encode(tokenizer, list(row["choices"])):
            items.append((p + c, len(p)))
            owners.append(k)
    res = score_items(model, items, seq_len, rows_per_batch)
    best: dict[int, tuple[float, int]] = {}
    counters: dict[int, int] = {}
    for k, (nll, n, _) in zip(owners, res):
        j = counters.get(k, 0)
        counters[k] = j + 1
        if k not in best or nll / max(n, 1) < best[k][0]:
            best[k] = (nll / max(n, 1), j)
    correct = 0
    for k, row in enumerate(rows):
        label = row["label"] if "label" in row else list(row["choices"]).index(row["answer"])
        correct += int(best[k][1] == label)
    return correct / len(rows)


def answer_accuracy(model: torch.nn.Module, tokenizer: Any, rows: Sequence[dict], seq_len: int,
                    rows_per_batch: int = 8) -> dict[str, float]:
    """``exact`` (= greedy decoding reproduces the answer) and ``token_acc`` of answers teacher-forced after prompts."""
    prompts = _encode(tokenizer, [r["prompt"] for r in rows])
    answers = _encode(tokenizer, [r["answer"] for r in rows])
    res = score_items(model, [(p + a, len(p)) for p, a in zip(prompts, answers)], seq_len, rows_per_batch)
    exact = sum(int(ok == n) for _, n, ok in res) / len(res)
    return {"exact": exact, "token_acc": sum(r[2] for r in res) / max(1, sum(r[1] for r in res)),
            "answer_loss": sum(r[0] for r in res) / max(1, sum(r[1] for r in res))}


def _rows(ds: Any, n: int | None) -> list[dict]:
    if isinstance(ds, list):
        return ds[:n] if n is not None else ds
    m = len(ds) if n is None else min(n, len(ds))
    return [ds[i] for i in range(m)]


def heldout_evaluator(data: PreparedData, scale: str | Scale, max_examples: int | None = None,
                      max_valid_rows: int | None = None, rows_per_batch: int = 8) -> Callable[[torch.nn.Module], dict]:
    """An ``eval_fn(model) -> metrics`` for the trainer: ``valid_loss/<domain>``, ``valid_loss`` (mean over
    domains), ``acc/cloze``, ``acc/<task>`` (exact match) and ``token_acc/<task>`` for the generation tasks.

    Kept cheap: at most ``max_examples`` per task (default: the scale's ``eval_examples_per_task``, capped at 48)
    and ``max_valid_rows`` packed rows of held-out documents per domain (default 32), the same rows at every
    evaluation (packed once, here, by ``smolbook.data.validation_batches``).
    """
    s = get_scale(scale)
    n_ex = min(s.eval_examples_per_task, 48) if max_examples is None else max_examples
    n_rows = 32 if max_valid_rows is None else max_valid_rows
    tok, seq_len = data.tokenizer, s.seq_len
    have = getattr(data, "tokens", {}).get("valid", {})
    valid = {d: validation_batches(data, d, seq_len, rows_per_batch, max_batches=max(1, n_rows // rows_per_batch))
             for d in DOMAINS if d in have}
    tasks = {t: _rows(ds, n_ex) for t, ds in getattr(data, "evals", {}).items() if n_ex > 0}

    def eval_fn(model: torch.nn.Module) -> dict[str, float]:
        out: dict[str, float] = {}
        for d, batches in valid.items():
            out[f"valid_loss/{d}"] = validation_loss(model, batches)
        if valid:
            out["valid_loss"] = sum(out[f"valid_loss/{d}"] for d in valid) / len(valid)
        for t, rows in tasks.items():
            if not rows:
                continue
            if "choices" in rows[0]:
                out[f"acc/{t}"] = cloze_accuracy(model, tok, rows, seq_len, rows_per_batch)
            else:
                r = answer_accuracy(model, tok, rows, seq_len, rows_per_batch)
                out[f"acc/{t}"], out[f"token_acc/{t}"] = r["exact"], r["token_acc"]
        return out

    return eval_fn


ABLATION_VALID_ROWS = 16  # packed held-out rows per domain at each of an ablation's evaluations
ABLATION_CLOZE_ROWS = 48  # held-out cloze rows scored at every validation (in-context retrieval as it emerges)


def embedding_norm(model: torch.nn.Module) -> float:
    """Mean L2 norm of the token-embedding rows (with tied embeddings, also the output projection)."""
    w = model.get_input_embeddings().weight.detach().float()
    return float(w.norm(dim=-1).mean())


def ablation_evaluator(data: PreparedData, scale: str | Scale, max_valid_rows: int = ABLATION_VALID_ROWS,
                       cloze_rows: int = ABLATION_CLOZE_ROWS) -> Callable[[torch.nn.Module], dict]:
    """What every ablation run logs at each evaluation (``RunSpec.evaluation: ablation``): the embedding norm,
    held-out validation loss (``max_valid_rows`` rows per domain, no generation tasks: they cost more than the
    short runs they measure) and held-out cloze accuracy on the first ``cloze_rows`` cloze rows."""
    s = get_scale(scale)
    heldout = heldout_evaluator(data, s, max_examples=0, max_valid_rows=max_valid_rows)
    rows = list(getattr(data, "evals", {}).get("cloze", []))[:cloze_rows]

    def eval_fn(model: torch.nn.Module) -> dict:
        out = {"embedding_norm": embedding_norm(model), **heldout(model)}
        if rows:
            out["acc/cloze"] = cloze_accuracy(model, data.tokenizer, rows, s.seq_len)
        return out

    return eval_fn
