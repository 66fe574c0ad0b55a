"""RULER-style long-context probes, built from the book's own tokenizer and held-out corpus.

RULER (Hsieh et al., 2024) scores a model on synthetic retrieval at a chosen context length: a
haystack of filler text with "needles" (key/value statements) hidden in it, then a query. This
module generates those tasks at any length, deterministically from a seed, and scores them two ways:

* greedy decoding of the answer (``model.generate``) and exact match, RULER's own metric;
* teacher-forced per-token accuracy and loss on the answer, which moves earlier at tiny scale, and
  ``forced_exact_match`` (every answer token is the argmax given the true prefix), which equals greedy
  exact match without a decode loop (tests/evaluate/test_ruler.py checks the two agree).

Both are compared with a *control*: the same prompts scored against another sample's answer. A
probe whose accuracy does not beat its control is at chance, and a chapter must report it as
inconclusive rather than tune it until it moves (:func:`probe_moved`).

Two more probes sit beside it:

* :func:`copy_samples` / :func:`score_copy`: a random passage repeated later, loss and accuracy on
  the repeat as a function of distance and of position, including beyond the training length;
* :func:`loss_by_position`: next-token loss against position on long held-out windows.

On the tiny book's runs (a ~1M-parameter model, a few million tokens) random key -> value retrieval
and copying of random-token passages stayed at chance; they are kept for ``small`` and reported
with their numbers. The probes that move at tiny are in-distribution ones
(:mod:`smolbook.evaluate.longcontext`: cloze at a distance, facts restated far apart).

Why hand-written: RULER's reference code and lighteval's long-context tasks need the hub (their
tokenizers, essays and word lists) and a server; the book must run offline with its own tokenizer.
"""
from __future__ import annotations

import copy
import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from smolbook.data import PreparedData
from smolbook.errors import SmolbookError


TASKS = ("single_needle", "multi_key", "multi_value", "variable_tracking")
CONTEXT_MULTIPLES = (1, 2, 4, 8)
_WORD = re.compile(r"[A-Za-z]{4,10}")


class TooShort(SmolbookError):
    """A prompt length too short to hold a task's needles and query."""


# ------------------------------------------------------------------------------------------
# The haystack: filler tokens and a word pool from held-out text
# ------------------------------------------------------------------------------------------
class Haystack:
    """Filler tokens (held-out text tokenized with the book's tokenizer) and words to use as keys.

    Texts are joined with blank lines into one stream with no end-of-document tokens, so a haystack
    reads as a single long document: a model trained with intra-document masking has never attended
    across an end-of-document token, and the probe should not test that.
    """

    def __init__(self, tokenizer: Any, texts: Iterable[str]):
        self.tokenizer = tokenizer
        texts = [t for t in texts if t and t.strip()]
        if not texts:
            raise SmolbookError("ruler: no filler text given; pass held-out documents (e.g. Haystack.from_data(data))")
        ids: list[int] = []
        for enc in self._encode_many([t + "\n\n" for t in texts]):
            ids.extend(enc)
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        self.ids = [i for i in ids if i not in special]
        if len(self.ids) < 16:
            raise SmolbookError(f"ruler: filler text is only {len(self.ids)} tokens; give it more held-out documents")
        # Tokens that occur in the filler: random passages for the copy probe are drawn from these,
        # so they are in-distribution tokens, just in an order never seen.
        self.token_pool = sorted(set(self.ids))
        self.words = sorted({w.lower() for t in texts for w in _WORD.findall(t)})
        if len(self.words) < 8:
            raise SmolbookError("ruler: filler text has fewer than 8 distinct words to use as keys; give it more text")

    @classmethod
    def from_data(cls, data: PreparedData, max_docs_per_domain: int | None = None) -> "Haystack":
        """A haystack from ``prepare(...)``'s held-out documents (``data.valid[domain]['text']``), all domains."""
        texts: list[str] = []
        for domain in sorted(data.valid):
            col = data.valid[domain]["text"]
            texts.extend(col if max_docs_per_domain is None else col[:max_docs_per_domain])
        return cls(data.tokenizer, texts)

    def _encode_many(self, texts: list[str]) -> list[list[int]]:
        # The fast backend directly: no "longer than model_max_length" warning for long documents.
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is not None:
            return [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]
        return [list(x) for x in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def encode(self, text: str) -> list[int]:
        return self._encode_many([text])[0]

    def filler(self, rng: random.Random, n: int) -> list[int]:
        """``n`` consecutive filler tokens from a random offset (wrapping round a short stream)."""
        if n <= 0:
            return []
        start = rng.randrange(len(self.ids))
        reps = math.ceil((start + n) / len(self.ids))
        return (self.ids * reps)[start:start + n]


@dataclass(frozen=True)
class ProbeSample:
    """One probe prompt of exactly ``length`` tokens, and the answer that should follow it."""

    task: str
    length: int
    prompt_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]
    answer: str
    needle_starts: tuple[int, ...]  # token offsets of the needles in the prompt (their depths)


def _value(rng: random.Random) -> str:
    return str(rng.randrange(10000, 100000))


def _varname(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))


def _task_pieces(task: str, rng: random.Random, words: Sequence[str]) -> tuple[list[list[str]], list[str], list[str]]:
    """(needles, query, answer) as lists of text pieces. Each piece is tokenized on its own so the
    answer's tokens appear verbatim in the prompt, whatever the tokenizer's merges."""
    if task in ("single_needle", "multi_key"):
        keys = rng.sample(list(words), 1 if task == "single_needle" else 3)
        values = [_value(rng) for _ in keys]
        needles = [[" The magic number for", f" {k}", " is", f" {v}", "."] for k, v in zip(keys, values)]
        target = rng.randrange(len(keys))
        return needles, [" The magic number for", f" {keys[target]}", " is"], [f" {values[target]}"]
    if task == "multi_value":
        key = rng.choice(list(words))
        values = [_value(rng) for _ in range(3)]
        needles = [[" The magic number for", f" {key}", " is", f" {v}", "."] for v in values]
        answer: list[str] = []
        for i, v in enumerate(values):
            answer += ([","] if i else []) + [f" {v}"]
        return needles, [" The magic numbers for", f" {key}", " are"], answer
    if task == "variable_tracking":
        value = _value(rng)
        names = []
        while len(names) < 3:
            n = _varname(rng)
            if n not in names:
                names.append(n)
        needles = [[" VAR", f" {names[0]}", " =", f" {value}", "."]]
        needles += [[" VAR", f" {b}", " =", f" {a}", "."] for a, b in zip(names, names[1:])]
        return needles, [" Variables equal to", f" {value}", " are"], [f" {n}" for n in names]
    raise SmolbookError(f"ruler: unknown task '{task}'; choose one of {', '.join(TASKS)}")


def make_samples(haystack: Haystack, task: str, length: int, n: int, seed: int = 0) -> list[ProbeSample]:
    """``n`` prompts of task ``task``, each exactly ``length`` tokens, deterministic from ``seed``.

    Needles go at random depths in the filler (in order, so a variable chain reads forwards);
    the query ends the prompt and the answer is what should come next.
    """
    if task not in TASKS:
        raise SmolbookError(f"ruler: unknown task '{task}'; choose one of {', '.join(TASKS)}")
    if n < 1:
        raise SmolbookError(f"ruler: need at least one sample, got n={n}")
    rng = random.Random(f"ruler/{task}/{length}/{seed}")  # str seeds hash with sha512: stable across runs
    enc = haystack.encode
    out = []
    for _ in range(n):
        needles, query, answer = _task_pieces(task, rng, haystack.words)
        needle_ids = [sum((enc(p) for p in nd), []) for nd in needles]
        query_ids = sum((enc(p) for p in query), [])
        answer_ids = sum((enc(p) for p in answer), [])
        n_filler = length - sum(map(len, needle_ids)) - len(query_ids)
        if n_filler < 0:
            raise TooShort(f"ruler: task '{task}' needs at least {length - n_filler} prompt tokens, "
                                f"length {length} is too short; use a longer length or a simpler task")
        filler = haystack.filler(rng, n_filler)
        cuts = sorted(rng.randint(0, n_filler) for _ in needle_ids)
        prompt: list[int] = []
        starts = []
        prev = 0
        for cut, nid in zip(cuts, needle_ids):
            prompt += filler[prev:cut]
            starts.append(len(prompt))
            prompt += nid
            prev = cut
        prompt += filler[prev:] + query_ids
        assert len(prompt) == length
        out.append(ProbeSample(task, length, tuple(prompt), tuple(answer_ids), "".join(answer), tuple(starts)))
    return out


# ------------------------------------------------------------------------------------------
# Scoring
# ------------------------------------------------------------------------------------------
@dataclass
class ProbeScore:
    """Scores of one (task, length) cell; ``control_*`` score the same prompts against other samples' answers."""

    task: str
    length: int
    n: int
    exact_match: float | None  # greedy decoding, exact match (None when not generated)
    forced_exact_match: float  # every answer token is the argmax given the true prefix (= greedy exact match, no decode loop)
    token_accuracy: float  # teacher-forced argmax == answer token, mean over answer tokens of each sample
    answer_loss: float  # teacher-forced cross-entropy on the answer tokens (nats/token)
    control_token_accuracy: float
    control_answer_loss: float
    accuracy_gain_se: float  # standard error of the paired per-sample accuracy gain over the control

    @property
    def moved(self) -> bool:
        return probe_moved(self)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"moved": self.moved}


def probe_moved(score: ProbeScore, min_gain: float = 0.05) -> bool:
    """The rule for "off chance": teacher-forced accuracy beats its shuffled-answer control by more
    than ``min_gain`` absolute and by more than two standard errors of the paired difference."""
    gain = score.token_accuracy - score.control_token_accuracy
    return gain > min_gain and gain > 2 * score.accuracy_gain_se


def _device(model: Any) -> torch.device:
    return next(model.parameters()).device


def _pad_id(model: Any) -> int:
    pad = getattr(model.config, "pad_token_id", None)
    if pad is None:
        pad = getattr(model.config, "eos_token_id", None)
    if isinstance(pad, (list, tuple)):
        pad = pad[0]
    return int(pad) if pad is not None else 0


@torch.no_grad()
def _answer_scores(model: Any, prompts: list[tuple[int, ...]], *answer_sets: list[tuple[int, ...]]
                   ) -> list[tuple[list[float], list[float], list[float]]]:
    """Per-sample teacher-forced (accuracy, loss, all-correct) of each set of answers after ``prompts`` (all one
    length). The prompts run once and their KV cache is reused for every answer set: the control costs only
    its answer tokens, not a second pass over a long haystack."""
    pad = _pad_id(model)
    dev = _device(model)
    prompt = torch.tensor([list(p) for p in prompts], device=dev)
    out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
    first, cache = out.logits[:, -1:].float(), out.cache
    results = []
    for answers in answer_sets:
        k = max(len(a) for a in answers)
        target = torch.tensor([list(a) + [pad] * (k - len(a)) for a in answers], device=dev)
        logits = first
        if k > 1:  # the answer's own tokens, read on top of a copy of the prompt's cache
            rest = model(input_ids=target[:, :-1], cache=copy.deepcopy(cache), use_cache=True).logits.float()
            logits = torch.cat([first, rest], dim=1)
        mask = torch.tensor([[j < len(a) for j in range(k)] for a in answers], device=dev)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1), reduction="none").view_as(target)
        correct = (logits.argmax(-1) == target).float()
        n = mask.sum(1)
        hits = (correct * mask).sum(1)
        results.append(((hits / n).tolist(), ((loss * mask).sum(1) / n).tolist(), (hits == n).float().tolist()))
    return results


@torch.no_grad()
def _greedy_exact(model: Any, prompts: list[tuple[int, ...]], answers: list[tuple[int, ...]]) -> list[float]:
    k = max(len(a) for a in answers)
    pad = _pad_id(model)
    ids = torch.tensor([list(p) for p in prompts], device=_device(model))
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=k, do_sample=False,
                         pad_token_id=pad)[:, ids.size(1):].tolist()
    return [float(o[:len(a)] == list(a)) for o, a in zip(out, answers)]


def score(model: Any, samples: Sequence[ProbeSample], batch_size: int = 8, generate: bool = True,
          progress: bool = True) -> ProbeScore:
    """Score one (task, length) cell: greedy exact match (when ``generate``), teacher-forced accuracy
    and loss, and the same against a control of shuffled answers (sample i scored on answer i+1)."""
    if len(samples) < 2:
        raise SmolbookError("ruler: scoring needs at least 2 samples (the control pairs each prompt with another's answer)")
    if len({(s.task, s.length) for s in samples}) != 1:
        raise SmolbookError("ruler: score() takes samples of one task and one length; group them first")
    was_training = model.training
    model.eval()
    answers = [s.answer_ids for s in samples]
    control = answers[1:] + answers[:1]
    acc, loss, cacc, closs, em, fem = [], [], [], [], [], []
    batches = range(0, len(samples), batch_size)
    for i in tqdm(batches, desc=f"ruler {samples[0].task}@{samples[0].length}", disable=not progress, leave=False):
        p = [s.prompt_ids for s in samples[i:i + batch_size]]
        (a, lo, ex), (ca, cl, _) = _answer_scores(model, p, answers[i:i + batch_size], control[i:i + batch_size])
        acc += a; loss += lo; cacc += ca; closs += cl; fem += ex  # noqa: E702
        if generate:
            em += _greedy_exact(model, p, answers[i:i + batch_size])
    model.train(was_training)
    n = len(samples)
    diff = [x - y for x, y in zip(acc, cacc)]
    mean_diff = sum(diff) / n
    se = math.sqrt(sum((d - mean_diff) ** 2 for d in diff) / (n - 1) / n)
    mean = lambda xs: float(sum(xs) / len(xs))  # noqa: E731
    return ProbeScore(samples[0].task, samples[0].length, n, mean(em) if generate else None, mean(fem), mean(acc),
                      mean(loss), mean(cacc), mean(closs), se)


def run_probe(model: Any, haystack: Haystack, base_length: int, *, multiples: Sequence[int] = CONTEXT_MULTIPLES,
              tasks: Sequence[str] = TASKS, n: int = 32, seed: int = 0, batch_size: int = 8,
              generate: bool = True, progress: bool = True) -> list[dict[str, Any]]:
    """The probe at ``base_length`` × each multiple (the training context is ``base_length``).

    Returns one row per (task, length): the :class:`ProbeScore` fields plus ``multiple`` and ``moved``.
    Cells too short for a task's needles (smoke's tiny context) are left out, with a note.
    """
    rows, skipped = [], []
    cells = [(t, m) for t in tasks for m in multiples]
    for task, m in tqdm(cells, desc="ruler probe", disable=not progress):
        try:
            samples = make_samples(haystack, task, base_length * m, n, seed)
        except TooShort:  # smoke's 64-token context cannot hold three needles: leave that cell out
            skipped.append(f"{task}@{base_length * m}")
            continue
        s = score(model, samples, batch_size=batch_size, generate=generate, progress=False)
        rows.append(s.as_dict() | {"multiple": m})
    if skipped:
        tqdm.write(f"ruler: left out (context too short for the task's needles): {', '.join(skipped)}")
    return rows


# ------------------------------------------------------------------------------------------
# What a tiny model learns: copying at a distance, loss against position
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CopySample:
    """``prefix | passage | gap filler | passage``: the second passage can only be predicted by copying."""

    distance: int  # filler tokens between the end of the first passage and the start of the repeat
    ids: tuple[int, ...]
    first_start: int
    second_start: int
    passage_len: int


def copy_samples(haystack: Haystack, distances: Sequence[int], *, passage_len: int = 32, prefix_len: int = 16,
                 n: int = 16, seed: int = 0) -> list[CopySample]:
    """``n`` copy-at-a-distance sequences per distance. The passage is random tokens from the filler's
    own token set (in-distribution tokens, never-seen order), so only copying predicts the repeat."""
    if passage_len < 2:
        raise SmolbookError(f"ruler: copy passage must be at least 2 tokens, got {passage_len}")
    out = []
    for d in distances:
        if d < 0:
            raise SmolbookError(f"ruler: copy distance must be >= 0, got {d}")
        rng = random.Random(f"copy/{d}/{passage_len}/{prefix_len}/{seed}")
        for _ in range(n):
            # distinct tokens (when the pool allows) so each position of the repeat has one unambiguous source
            passage = (rng.sample(haystack.token_pool, passage_len) if passage_len <= len(haystack.token_pool)
                       else [rng.choice(haystack.token_pool) for _ in range(passage_len)])
            ids = haystack.filler(rng, prefix_len) + passage + haystack.filler(rng, d) + passage
            out.append(CopySample(d, tuple(ids), prefix_len, prefix_len + passage_len + d, passage_len))
    return out


@torch.no_grad()
def _token_losses(model: Any, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-position next-token (loss, correct) for a batch of equal-length sequences: [B, T-1] each."""
    logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()
    target = ids[:, 1:]
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1), reduction="none").view_as(target)
    return loss, (logits.argmax(-1) == target).float()


def score_copy(model: Any, samples: Sequence[CopySample], batch_size: int = 8, progress: bool = True) -> list[dict[str, Any]]:
    """Per distance: loss and accuracy on the repeated passage and (the control) on its first occurrence.

    The first token of each occurrence is left out: nothing announces that a passage starts.
    ``end_position`` is where the repeat ends, to compare with the training length.
    """
    was_training = model.training
    model.eval()
    by_d: dict[int, list[CopySample]] = {}
    for s in samples:
        by_d.setdefault(s.distance, []).append(s)
    rows = []
    for d, group in tqdm(sorted(by_d.items()), desc="copy probe", disable=not progress):
        sums = {"repeat_loss": 0.0, "first_loss": 0.0, "repeat_accuracy": 0.0, "first_accuracy": 0.0}
        for i in range(0, len(group), batch_size):
            chunk = group[i:i + batch_size]
            ids = torch.tensor([list(s.ids) for s in chunk], device=_device(model))
            loss, correct = _token_losses(model, ids)
            s0 = chunk[0]
            # position t of loss predicts token t+1: tokens start+1 .. start+P-1 of each occurrence
            first = slice(s0.first_start, s0.first_start + s0.passage_len - 1)
            second = slice(s0.second_start, s0.second_start + s0.passage_len - 1)
            sums["first_loss"] += loss[:, first].mean(1).sum().item()
            sums["repeat_loss"] += loss[:, second].mean(1).sum().item()
            sums["first_accuracy"] += correct[:, first].mean(1).sum().item()
            sums["repeat_accuracy"] += correct[:, second].mean(1).sum().item()
        s0 = group[0]
        rows.append({"distance": d, "end_position": s0.second_start + s0.passage_len, "n": len(group)}
                    | {k: v / len(group) for k, v in sums.items()})
    model.train(was_training)
    return rows


def loss_by_position(model: Any, haystack: Haystack, length: int, *, n: int = 8, seed: int = 0, batch_size: int = 4,
                     bins: int = 32, progress: bool = True) -> dict[str, list[float]]:
    """Mean next-token loss against position on ``n`` windows of ``length`` held-out tokens, in ``bins``
    equal bins. Positions past the training length show whether the model extrapolates."""
    if length < 2 or bins < 1:
        raise SmolbookError(f"ruler: loss_by_position needs length >= 2 and bins >= 1 (got {length}, {bins})")
    rng = random.Random(f"lossbypos/{length}/{seed}")
    windows = [haystack.filler(rng, length) for _ in range(n)]
    was_training = model.training
    model.eval()
    total = torch.zeros(length - 1)
    for i in tqdm(range(0, n, batch_size), desc=f"loss by position @{length}", disable=not progress, leave=False):
        ids = torch.tensor(windows[i:i + batch_size], device=_device(model))
        total += _token_losses(model, ids)[0].sum(0).cpu()
    model.train(was_training)
    mean = total / n
    edges = [round(j * (length - 1) / bins) for j in range(bins + 1)]
    pos, loss = [], []
    for a, b in zip(edges, edges[1:]):
        if b > a:
            pos.append((a + b - 1) / 2 + 1)  # loss index t scores the token at position t+1
            loss.append(mean[a:b].mean().item())
    return {"position": pos, "loss": loss}


def plot_probe(rows: Sequence[dict[str, Any]], metric: str = "token_accuracy", label: str = "", ax: Any = None,
               **plot_kw: Any) -> Any:
    """Plot ``metric`` against context multiple, one line per task (dashed: the shuffled-answer control)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.2))
    for task in dict.fromkeys(r["task"] for r in rows):
        rs = sorted((r for r in rows if r["task"] == task), key=lambda r: r["multiple"])
        xs = [r["multiple"] for r in rs]
        (line,) = ax.plot(xs, [r[metric] for r in rs], marker="o", label=f"{label} {task}".strip(), **plot_kw)
        control = {"token_accuracy": "control_token_accuracy", "answer_loss": "control_answer_loss"}.get(metric)
        if control:
            ax.plot(xs, [r[control] for r in rs], ls=":", color=line.get_color())
    ax.set_xscale("log", base=2)
    ax.set_xlabel("context length / training length")
    ax.set_ylabel(metric.replace("_", " "))
    return ax
