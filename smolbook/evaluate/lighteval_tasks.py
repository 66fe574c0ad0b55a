"""The book's evaluations as lighteval custom tasks: one module, ``TASKS_TABLE`` as lighteval expects.

Base suite (the offline corpus' held-out tasks, :mod:`smolbook.evaluate.heldout`):

* ``book_cloze_cf`` — cloze in CF form (cloze formulation): each choice's log-likelihood after the prompt,
  normalised by its token count (lighteval's ``LogProbTokenNorm``, the book's ``cloze_accuracy``);
* ``book_cloze_mcf`` — the same items in MCF form (multiple-choice formulation): the choices listed as A–D
  after the prompt, the model scores the letters;
* ``book_arithmetic`` / ``book_code_output`` / ``book_translation`` — generative exact match: greedy decoding
  of as many tokens as the answer has reproduces the answer (the book's ``acc/<task>``).

Chat suite (the held-out conversations, :mod:`smolbook.evaluate.chat`): ``book_chat_think`` and
``book_chat_no_think`` generate through the chat template in each mode and score every completion with the
book's own ``score_completion`` (answer exact match, IFEval, tool calls, language, format).

The tasks read JSONL files that :func:`smolbook.evaluate.lighteval_run.write_task_data` writes (a folder per
task, ``test.jsonl`` in it: lighteval loads a local folder as a dataset, the split named after the file).
With the ``lighteval`` command line, point ``SMOLBOOK_LIGHTEVAL_DATA`` at that folder and pass this file as
``--custom-tasks``. Why hand-written: the book's tasks exist nowhere else; the metrics reuse lighteval's own
(``LoglikelihoodAcc``) where one fits and the book's scorers where the book defines the score.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from lighteval.metrics.metrics_sample import LoglikelihoodAcc, SampleLevelComputation
from lighteval.metrics.utils.metric_utils import SampleLevelMetric, SampleLevelMetricGrouping
from lighteval.tasks.lighteval_task import LightevalTaskConfig
from lighteval.tasks.requests import Doc, SamplingMethod

BASE_TASKS = ("book_cloze_cf", "book_cloze_mcf", "book_arithmetic", "book_code_output", "book_translation")
CHAT_TASKS = ("book_chat_think", "book_chat_no_think")
SUITES = {"base": BASE_TASKS, "chat": CHAT_TASKS}
# Where each task's items come from: a held-out evaluation of the corpus, or a mode of the chat held-out set.
SOURCES = {"book_cloze_cf": "cloze", "book_cloze_mcf": "cloze", "book_arithmetic": "arithmetic",
           "book_code_output": "code_output", "book_translation": "translation",
           "book_chat_think": "think", "book_chat_no_think": "no_think"}
CHAT_METRICS = ("answer_em", "ifeval_prompt_strict", "tool_call_match", "tool_call_validity", "language_match",
                "format_ok")
# The score that stands for a task in a one-number-per-task table.
MAIN_METRIC = {"book_cloze_cf": "acc", "book_cloze_mcf": "acc", "book_arithmetic": "em", "book_code_output": "em",
               "book_translation": "em", "book_chat_think": "correct", "book_chat_no_think": "correct"}
LETTERS = "ABCDEFGH"
STOP = "<|im_end|>"


# ── prompt functions: one JSONL line -> one lighteval Doc ──────────────────────────────────────

def cloze_cf(line: dict, task_name: str = "") -> Doc:
    """The prompt, then each choice as a continuation (its token count, written with the data, normalises it)."""
    return Doc(task_name=task_name, query=line["prompt"], choices=list(line["choices"]), gold_index=int(line["label"]),
               specific={"choice_tokens": [int(n) for n in line["choice_tokens"]]})


def cloze_mcf(line: dict, task_name: str = "") -> Doc:
    """The prompt, the choices listed as letters, then ``Answer:``; the continuations are the letters."""
    listed = "\n".join(f"{LETTERS[i]}. {c.strip()}" for i, c in enumerate(line["choices"]))
    query = f"{line['prompt']}\n{listed}\nAnswer:"
    return Doc(task_name=task_name, query=query, choices=[f" {LETTERS[i]}" for i in range(len(line["choices"]))],
               gold_index=int(line["label"]))


def generative(line: dict, task_name: str = "") -> Doc:
    """The prompt; the answer is the gold, its token ids (written with the data, by the model's tokenizer) are
    what the first generated tokens must be."""
    return Doc(task_name=task_name, query=line["prompt"], choices=[line["answer"]], gold_index=0,
               specific={"answer_ids": list(line["answer_ids"])})


def chat(line: dict, task_name: str = "") -> Doc:
    """The generation prompt the chat template rendered (``prompt``); the row itself rides along for scoring."""
    return Doc(task_name=task_name, query=line["prompt"], choices=[line["answer"]], gold_index=0,
               specific={"row": line["row"], "mode": line["mode"]})


# ── metrics ────────────────────────────────────────────────────────────────────────────

class FirstTokensExactMatch(SampleLevelComputation):
    """Exact match of the first generated tokens with the answer's tokens: greedy decoding of the answer's
    length reproduces it, which is the book's ``acc/<task>`` (no stop-sequence or whitespace conventions)."""

    def compute(self, doc: Doc, model_response, **kwargs) -> float:
        want = [int(t) for t in doc.specific["answer_ids"]]
        got = [int(t) for t in (model_response.output_tokens[0] if model_response.output_tokens else [])]
        return float(got[:len(want)] == want)


class TokenNormAcc(SampleLevelComputation):
    """Accuracy of the choice with the highest log-likelihood per token, the token counts being each choice's own
    (``choice_tokens``). lighteval 0.13's ``LogProbTokenNorm`` divides by ``len(output_tokens[i])``, and its
    transformers backend pads every choice's tokens to the longest choice's length (``pad_sequence``): every
    choice is divided by the same number, which is no length normalisation at all."""

    def compute(self, doc: Doc, model_response, **kwargs) -> int:
        counts = doc.specific["choice_tokens"]
        normed = [lp / max(1, n) for lp, n in zip(model_response.logprobs[:len(doc.choices)], counts)]
        return int(int(np.argmax(normed)) in ([doc.gold_index] if isinstance(doc.gold_index, int) else doc.gold_index))


class ChatScores(SampleLevelComputation):
    """The book's ``score_completion`` of a completion: every chat score that applies to the row, NaN where
    one does not apply (averaged over the rows it applies to, as ``smolbook.evaluate.chat.summarise`` does)."""

    def compute(self, doc: Doc, model_response, **kwargs) -> dict[str, float]:
        from smolbook.evaluate.scoring import TOOL_KINDS, score_completion

        row = json.loads(doc.specific["row"])
        completion = model_response.text[0].split(STOP)[0]
        s = score_completion(row, completion, doc.specific["mode"])
        tool = row["kind"] in TOOL_KINDS
        nan = math.nan
        return {"correct": float(s["correct"]),
                "answer_em": float(s["correct"]) if not tool and s["ifeval"] is None else nan,
                "ifeval_prompt_strict": float(all(s["ifeval"])) if s["ifeval"] is not None else nan,
                "tool_call_match": float(s["correct"]) if tool else nan,
                "tool_call_validity": float(s["tool_call_valid"]) if tool else nan,
                "language_match": nan if s["language_match"] is None else float(s["language_match"]),
                "format_ok": float(s["format_ok"])}


def nanmean(values) -> float:
    """Mean over the rows a score applies to (NaN marks the others); NaN when it applies to none."""
    kept = [float(v) for v in values if not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(kept)) if kept else math.nan


CLOZE_CF_ACC = SampleLevelMetric(metric_name="acc", sample_level_fn=TokenNormAcc(),
                                 category=SamplingMethod.LOGPROBS, corpus_level_fn=np.mean, higher_is_better=True)
CLOZE_MCF_ACC = SampleLevelMetric(metric_name="acc", sample_level_fn=LoglikelihoodAcc(logprob_normalization=None),
                                  category=SamplingMethod.LOGPROBS, corpus_level_fn=np.mean, higher_is_better=True)
EXACT = SampleLevelMetric(metric_name="em", sample_level_fn=FirstTokensExactMatch(), category=SamplingMethod.GENERATIVE,
                          corpus_level_fn=np.mean, higher_is_better=True)
_CHAT_NAMES = ["correct", *CHAT_METRICS]
CHAT = SampleLevelMetricGrouping(metric_name=_CHAT_NAMES, sample_level_fn=ChatScores(), category=SamplingMethod.GENERATIVE,
                                 corpus_level_fn={m: nanmean for m in _CHAT_NAMES},
                                 higher_is_better={m: True for m in _CHAT_NAMES})


# ── the table ───────────────────────────────────────────────────────────────────────────

def task_configs(data_dir: str | os.PathLike, generation_sizes: dict[str, int] | None = None,
                 chat_max_new_tokens: int = 256) -> list[LightevalTaskConfig]:
    """Every task of the book, reading ``data_dir/<task>/test.jsonl``. ``generation_sizes`` caps each
    generative task's decoding (its longest answer in tokens; written beside the data)."""
    data_dir = Path(data_dir)
    sizes = dict(generation_sizes or {})
    sizes_file = data_dir / "generation_sizes.json"
    if not sizes and sizes_file.is_file():
        sizes = json.loads(sizes_file.read_text())

    def cfg(name, prompt_fn, metric, **kw) -> LightevalTaskConfig:
        return LightevalTaskConfig(name=name, prompt_function=prompt_fn, hf_repo=str(data_dir / name),
                                   hf_subset="default", hf_avail_splits=["test"], evaluation_splits=["test"],
                                   few_shots_split=None, few_shots_select=None, metrics=[metric],
                                   stop_sequence=kw.pop("stop_sequence", []), version=0, **kw)

    out = [cfg("book_cloze_cf", cloze_cf, CLOZE_CF_ACC), cfg("book_cloze_mcf", cloze_mcf, CLOZE_MCF_ACC)]
    for name in ("book_arithmetic", "book_code_output", "book_translation"):
        out.append(cfg(name, generative, EXACT, generation_size=int(sizes.get(name, 32))))
    for name in CHAT_TASKS:
        out.append(cfg(name, chat, CHAT, generation_size=chat_max_new_tokens, stop_sequence=[STOP]))
    return out


TASKS_TABLE = task_configs(os.environ.get("SMOLBOOK_LIGHTEVAL_DATA", "lighteval_data"))
