"""The long-context report: what a model does with text far back in its context, at chosen context lengths.

One call, :func:`long_context_report`, scores a model at each length of ``lengths`` (chapter 08 passes 1x..16x
the base length of several checkpoints; the ablations pass 1x, 2x, 4x):

* **cloze at a distance**: a held-out person's short biography (never in training), then held-out web text as
  filler, then the question "In summary, <name> was born in" with 4 choices (chance 0.25). The fact sits
  about ``length`` tokens before the question. *Control*: the same prompt with another held-out person's
  biography in its place, so the fact is absent (what the model guesses from priors alone).
* **facts restated far apart**: on the same prompts, the loss (nats/token) on the true continuation, with the
  fact and without it (the control); the *gain* is how much the fact, ``length`` tokens back, helps.
* **loss by position**: next-token loss against position on long windows of held-out text; *control*: the
  loss within the training length.
* **synthetic probes** (``synthetic=True``): copying a random-token passage and RULER one-hop key -> value
  retrieval, each with its control (first occurrence; another sample's answer). They did not move at tiny on
  this book's runs and are kept for ``small``; their numbers are reported either way.

Every prompt is one stream of text with no end-of-document token, as in the RULER haystack, and uses held-out
people and held-out text only.
"""
from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM

from smolbook.data import PreparedData
from smolbook.errors import SmolbookError
from smolbook.evaluate import ruler
from smolbook.scales import Scale, get_scale


SUMMARY = "\n\nIn summary, "  # the query of the corpus' cloze evaluation (smolbook.data.text.cloze_eval)


def _cloze_parts(row: dict) -> tuple[str, str]:
    """(fact document, question stem) of a cloze evaluation row."""
    if SUMMARY not in row["prompt"]:
        raise SmolbookError("long-context report: a cloze row's prompt lacks its 'In summary, ' question; "
                            "rebuild the data with the current generator (prepare(..., force) or a new output dir)")
    doc, stem = row["prompt"].rsplit(SUMMARY, 1)
    return doc, SUMMARY + stem


def _name(doc: str) -> str:
    return doc.split("\n", 1)[0].lstrip("# ").strip()


def _filler(hay: ruler.Haystack, texts: list[str], avoid: str, rng: random.Random, n: int) -> list[int]:
    """``n`` tokens of held-out text that never names ``avoid`` (the person asked about)."""
    out: list[int] = []
    pool = [t for t in texts if avoid not in t]
    while len(out) < n:
        out += hay.encode(rng.choice(pool) + "\n\n")
    return out[:n]


class ClozeItems:
    """The cloze rows of ``data`` tokenized once: fact documents, questions, choices, labels, and the filler text."""

    def __init__(self, data: PreparedData, n: int):
        rows = list(data.evals["cloze"])[:n]
        if len(rows) < 2:
            raise SmolbookError("long-context report: needs at least 2 cloze rows (data.evals['cloze'])")
        self.texts = list(data.valid["web"]["text"])
        self.hay = ruler.Haystack(data.tokenizer, self.texts)
        parts = [_cloze_parts(r) for r in rows]
        self.names = [_name(d) for d, _ in parts]
        self.docs = [self.hay.encode(d) for d, _ in parts]
        self.queries = [self.hay.encode(q) for _, q in parts]
        self.choices = [[self.hay.encode(c) for c in r["choices"]] for r in rows]
        self.labels = [int(r["label"]) for r in rows]

    def prompts(self, length: int, seed: int = 0) -> tuple[list[list[int]], list[list[int]], list[int]] | None:
        """(prompts with the fact, control prompts without it, distances) of exactly ``length`` tokens each, or
        None when ``length`` cannot hold a biography and its question.

        A prompt is: the fact's biography, filler up to the longer of the two biographies, filler for the rest,
        the question. The control puts another held-out person's biography in the same slot, so both prompts
        ask the same question at the same place and differ only in whether the fact is there."""
        rng = random.Random(f"cloze-distance/{length}/{seed}")
        prompts, controls, dist = [], [], []
        for i, (d, q) in enumerate(zip(self.docs, self.queries)):
            other = self.docs[(i + 1 + rng.randrange(len(self.docs) - 1)) % len(self.docs)]
            k = max(len(d), len(other))
            gap = length - k - len(q)
            if gap < 0:
                return None
            fill = _filler(self.hay, self.texts, self.names[i], rng, gap + k)
            prompts.append(d + fill[:k - len(d)] + fill[k:] + q)
            controls.append(other + fill[:k - len(other)] + fill[k:] + q)
            dist.append(length - len(q) - len(d))
        return prompts, controls, dist


def cloze_at_distance(model: Any, data: PreparedData, lengths: Sequence[int], *, n: int = 64, seed: int = 0,
                      batch_size: int = 8, control: bool = True, progress: bool = False) -> list[dict[str, Any]]:
    """Per length: cloze accuracy and answer loss with the fact ~``length`` tokens back, and with it absent.

    Rows: ``length``, ``distance`` (mean tokens between the fact document and the question), ``n``,
    ``accuracy``, ``control_accuracy``, ``answer_loss``, ``control_answer_loss``, ``gain`` (control loss minus
    loss: what the far-away fact is worth, in nats/token). Lengths too short for a biography are left out.
    ``control=False`` skips the fact-absent prompts (half the cost; their columns are NaN): for comparisons of
    several checkpoints on the same prompts, where the control of one report already says where chance lies.
    """
    items = ClozeItems(data, n)
    out = []
    for length in tqdm(lengths, desc="cloze at a distance", disable=not progress):
        made = items.prompts(length, seed)
        if made is None:
            continue
        prompts, controls, dist = made
        acc, cacc, loss, closs = [], [], [], []
        for a in range(0, len(prompts), batch_size):
            sl = slice(a, a + batch_size)
            idx = range(a, min(a + batch_size, len(prompts)))
            sets = [[tuple(items.choices[i][c]) for i in idx] for c in range(4)]
            arms = ((prompts[sl], acc, loss), (controls[sl], cacc, closs)) if control else ((prompts[sl], acc, loss),)
            for ps, acc_l, loss_l in arms:
                per_choice = [s[1] for s in ruler._answer_scores(model, [tuple(p) for p in ps], *sets)]
                for b, lab in enumerate(items.labels[sl]):
                    losses = [per_choice[c][b] for c in range(4)]  # mean loss of each choice's tokens
                    acc_l.append(float(min(range(4), key=losses.__getitem__) == lab))
                    loss_l.append(losses[lab])
        nan = float("nan")
        cacc_m, closs_m = (statistics.fmean(cacc), statistics.fmean(closs)) if control else (nan, nan)
        out.append({"length": length, "distance": statistics.fmean(dist), "n": len(prompts),
                    "accuracy": statistics.fmean(acc), "control_accuracy": cacc_m,
                    "answer_loss": statistics.fmean(loss), "control_answer_loss": closs_m,
                    "gain": closs_m - statistics.fmean(loss)})
    return out


def long_context_report(model: Any, data: PreparedData, scale: str | Scale, lengths: Sequence[int] | None = None, *,
                        n: int = 64, seed: int = 0, synthetic: bool = True, control: bool = True,
                        loss_length: int | None = None, loss_windows: int = 8, progress: bool = False
                        ) -> dict[str, Any]:
    """Every long-context probe of this module on ``model`` at each of ``lengths`` (default: 1x, 2x, 4x the
    scale's training length), with controls and summaries.

    Cost grows with the prompt tokens (``n`` x ``lengths``, twice with ``control``), and attention with their
    square: a verdict that compares checkpoints can pass ``control=False`` and only the lengths it reads.
    Loss by position runs on ``loss_windows`` windows of ``loss_length`` tokens (default: the longest length).

    Summaries compare within the training length (``length <= seq_len``) and beyond it: ``cloze_within``,
    ``cloze_beyond`` (mean accuracy over the lengths beyond), ``cloze_control_beyond``, ``restate_gain_beyond``,
    ``loss_within``, ``loss_beyond``; and for the synthetic probes ``copy_beyond`` / ``ruler_beyond`` with
    ``ruler_moved`` (any cell off its control by the rule of :func:`smolbook.evaluate.ruler.probe_moved`).
    """
    s = get_scale(scale)
    L = s.seq_len
    lengths = sorted(lengths or (L, 2 * L, 4 * L))
    was_training = model.training
    model.eval()
    rep: dict[str, Any] = {"lengths": list(lengths), "train_length": L}
    rep["cloze"] = cloze_at_distance(model, data, lengths, n=n, seed=seed, control=control, progress=progress)
    within = [r for r in rep["cloze"] if r["length"] <= L]
    beyond = [r for r in rep["cloze"] if r["length"] > L]
    mean = lambda rows, k: statistics.fmean(r[k] for r in rows) if rows else float("nan")  # noqa: E731
    rep |= {"cloze_within": mean(within, "accuracy"), "cloze_beyond": mean(beyond, "accuracy"),
            "cloze_control_beyond": mean(beyond, "control_accuracy"), "restate_gain_within": mean(within, "gain"),
            "restate_gain_beyond": mean(beyond, "gain")}
    hay = ruler.Haystack.from_data(data)
    lbp = ruler.loss_by_position(model, hay, loss_length or max(lengths), n=loss_windows, seed=seed, batch_size=2,
                                 bins=32, progress=False)
    rep["loss_by_position"] = lbp
    rep["loss_within"] = statistics.fmean(lo for p, lo in zip(lbp["position"], lbp["loss"]) if p < L)
    far = [lo for p, lo in zip(lbp["position"], lbp["loss"]) if p >= L]
    rep["loss_beyond"] = statistics.fmean(far) if far else float("nan")
    if synthetic:
        passage, prefix = max(8, L // 8), max(4, L // 16)
        gaps = sorted({max(0, m - 2 * passage - prefix) for m in lengths})
        copy = ruler.copy_samples(hay, gaps, passage_len=passage, prefix_len=prefix, n=8, seed=seed)
        rep["copy"] = ruler.score_copy(model, copy, batch_size=4, progress=False)
        rep["ruler"] = ruler.run_probe(model, hay, L, multiples=sorted({max(1, m // L) for m in lengths}),
                                       tasks=("single_needle",), n=16, seed=seed, batch_size=8, generate=False,
                                       progress=False)
        cb = [c for c in rep["copy"] if c["end_position"] > L]
        rb = [r for r in rep["ruler"] if r["multiple"] > 1]
        rep |= {"copy_beyond": mean(cb, "repeat_accuracy"), "copy_control_beyond": mean(cb, "first_accuracy"),
                "ruler_beyond": mean(rb, "token_accuracy"), "ruler_control_beyond": mean(rb, "control_token_accuracy"),
                "ruler_moved": any(r["moved"] for r in rep["ruler"])}
    model.train(was_training)
    return rep


PANELS = {  # name: (title, y label, x label)
    "cloze": ("cloze at a distance (grey: chance)", "accuracy (4 choices)", "context / base length"),
    "gain": ("what the far fact is worth", "answer loss gain (nats/token)", "context / base length"),
    "loss": ("loss against position", "next-token loss", "position / base length"),
}


def plot_report(reports: dict[str, Sequence[dict[str, Any]]], axes: Sequence[Any] | None = None,
                panels: Sequence[str] = ("cloze", "gain", "loss")) -> Any:
    """One line per label (the mean over its reports, e.g. seeds) in each of ``panels``: ``cloze`` accuracy against
    the fact's distance (dotted: the control without the fact, when the reports ran it), the restated fact's loss
    ``gain``, and ``loss`` against position. Distances and positions are in units of the base length (the scale's
    training length, dashed). A label's reports may hold different cloze lengths (a verdict probe beside a full
    report): its line has the lengths they share."""
    import matplotlib.pyplot as plt

    unknown = [p for p in panels if p not in PANELS]
    if unknown:
        raise SmolbookError(f"plot_report: unknown panel(s) {unknown}; choose from {', '.join(PANELS)}")
    if axes is None:
        _, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6))
    ax_of = dict(zip(panels, axes))
    controls = False
    for i, (label, reps) in enumerate(reports.items()):
        if not reps:
            continue
        c = f"C{i}"
        L = reps[0]["train_length"]
        lengths = sorted(set.intersection(*({row["length"] for row in r["cloze"]} for r in reps)))

        def mean(key: str) -> list[float]:
            return [statistics.fmean(row[key] for r in reps for row in r["cloze"] if row["length"] == n) for n in lengths]

        xs = [n / L for n in lengths]
        if "cloze" in ax_of:
            ax_of["cloze"].plot(xs, mean("accuracy"), "o-", color=c, label=label)
            control = mean("control_accuracy")
            if all(math.isfinite(v) for v in control):
                ax_of["cloze"].plot(xs, control, ":", color=c)
                controls = True
        if "gain" in ax_of:
            ax_of["gain"].plot(xs, mean("gain"), "o-", color=c, label=label)
        if "loss" in ax_of:
            lb = [r["loss_by_position"] for r in reps]
            n = min(len(x["loss"]) for x in lb)
            ax_of["loss"].plot([p / L for p in lb[0]["position"][:n]],
                               [statistics.fmean(x["loss"][j] for x in lb) for j in range(n)], color=c, label=label)
    for name, ax in ax_of.items():
        title, ylabel, xlabel = PANELS[name]
        ax.axvline(1.0, color="grey", ls="--", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set(title=title, ylabel=ylabel, xlabel=xlabel)
        ax.title.set_fontsize(10)
        ax.legend(fontsize=8)
    if "cloze" in ax_of:
        ax_of["cloze"].axhline(0.25, color="grey", lw=0.6)
        if controls:
            ax_of["cloze"].set_title("cloze at a distance (dotted: fact absent; grey: chance)", fontsize=10)
    return axes


# -- reading reports (chapters 08, 09, 12, 13 and 14 read long context the same way) -----------------------------
def reports(checkpoints: dict[str, Path], data: PreparedData, scale: str, lengths: Sequence[int], *, n: int, seed: int = 0,
            synthetic: bool = False, **options: Any) -> dict[str, dict[str, Any]]:
    """The long-context report of each checkpoint (label -> report), loaded with plain transformers; ``options``
    go to :func:`long_context_report` (``control``, ``loss_length``, ...)."""
    out = {}
    for label, path in checkpoints.items():
        model = AutoModelForCausalLM.from_pretrained(path).eval()
        out[label] = long_context_report(model, data, scale, lengths, n=n, seed=seed, synthetic=synthetic, **options)
        del model
    return out


def copying(model: Any, data: PreparedData, scale: str | Scale, *, n: int = 32, seed: int = 0) -> dict[str, float]:
    """Whether the model copies within its training length: a passage of random in-distribution tokens (an eighth
    of the base length), a short gap of held-out text, the passage again; top-1 accuracy on the repeat against the
    first occurrence (the control: what the model predicts without a copy to read). Copying a span it has just
    read is what a tool call needs to pass a new name or number from the question into its arguments."""
    L = get_scale(scale).seq_len
    passage, prefix = max(8, L // 8), max(4, L // 16)
    gap = max(0, L // 2 - 2 * passage - prefix)
    hay = ruler.Haystack.from_data(data)
    row = ruler.score_copy(model, ruler.copy_samples(hay, [gap], passage_len=passage, prefix_len=prefix, n=n, seed=seed),
                           batch_size=8, progress=False)[0]
    return {"repeat_accuracy": row["repeat_accuracy"], "first_accuracy": row["first_accuracy"],
            "repeat_loss": row["repeat_loss"], "first_loss": row["first_loss"], "passage": passage, "items": n}


def cloze_at(report: dict[str, Any], lengths: Sequence[int], key: str = "accuracy") -> float:
    """Mean of a cloze-at-a-distance column over the rows of ``lengths`` (rows the report could build)."""
    rows = [r for r in report["cloze"] if r["length"] in set(lengths)]
    return statistics.fmean(r[key] for r in rows) if rows else float("nan")


def nearest_cloze_length(data: PreparedData, scale: str) -> int:
    """The shortest multiple (1, 2, 4, ...) of the scale's base length whose rows hold a cloze prompt (a biography,
    filler and its question): where later chapters read long context, because chapter 08's extended model is above
    chance there and at chance far beyond it at ``tiny`` (smoke's 64-token rows hold no prompt)."""
    base = get_scale(scale).seq_len
    items = ClozeItems(data, n=2)
    for m in (1, 2, 4, 8, 16):
        if items.prompts(m * base) is not None:
            return m * base
    raise SmolbookError(f"no cloze prompt fits in {16 * base} tokens at scale {scale}")


def cloze_items(report: dict[str, Any], lengths: Sequence[int]) -> int:
    """How many cloze prompts the report scored at ``lengths`` (the items behind :func:`cloze_at`)."""
    return sum(int(r["n"]) for r in report["cloze"] if r["length"] in set(lengths))


def loss_between(report: dict[str, Any], start: int, end: int) -> float:
    """Mean next-token loss of the report's loss-by-position bins whose position lies in [start, end)."""
    lbp = report["loss_by_position"]
    vals = [lo for p, lo in zip(lbp["position"], lbp["loss"]) if start <= p < end]
    return statistics.fmean(vals) if vals else float("nan")
