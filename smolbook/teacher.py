"""A teacher writes assistant turns for prompts that lack them: ``generate(prompts, mode) -> completions``.

* :class:`SolverTeacher` (offline, every scale) writes the generator's own solution as a step-by-step
  trace (think mode) or a direct answer (no_think). With ``error_rate`` it slips on some answers: a weaker
  source, for preference pairs.
* :class:`ModelTeacher` runs a causal LM with the chat template: transformers' ``generate``, batched, or
  vLLM when it is installed and a GPU is there (``backend="auto"``); SmolLM3 used Qwen3-32B this way.

Prompts are rows of :mod:`smolbook.data.chat` (``messages``, ``chat_template_kwargs``, ``target_turn`` and
the solution columns): the teacher continues ``messages[:target_turn]``. :func:`teacher_traces` keeps only
completions that pass the one correctness filter (:func:`filter_correct`) and says how many it kept.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

from smolbook.chat import ToolCall, render_python_call, render_xml_call
from smolbook.data.chat import chat_dataset, prompt_messages, template_kwargs
from smolbook.data.conversations import MODES
from smolbook.data.tokenizer import load_tokenizer
from smolbook.errors import SmolbookError
from smolbook.evaluate.scoring import score_completion


class Teacher(Protocol):
    """Anything that completes chat prompts in a mode."""

    name: str

    def generate(self, prompts: Sequence[dict], mode: str) -> list[str]:
        """One completion (what follows the generation prompt) per prompt row."""
        ...


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise SmolbookError(f"mode {mode!r} is not one of {', '.join(MODES)}")


def _slip(value: str) -> str:
    """A wrong value of the same type: the next integer, or the name reversed."""
    try:
        return str(int(value) + 1)
    except ValueError:
        return value[::-1] if value[::-1] != value else value + "x"


def _slipped_answer(row: dict) -> str:
    answer = row["solution_answer"]
    if row.get("expected_call"):
        call = json.loads(row["expected_call"])
        args = {k: (v + 1 if isinstance(v, int) and not isinstance(v, bool) else _slip(str(v)))
                for k, v in call["arguments"].items()}
        render = render_python_call if row["kind"].endswith("python") else render_xml_call
        return render(ToolCall(call["name"], args))
    if row.get("instructions"):
        # No single slip breaks every IFEval instruction; this one breaks most (case, commas, endings, JSON).
        return answer.swapcase() + ", done"
    target = row["answer"]
    at = answer.rfind(target)
    return answer if at < 0 else answer[:at] + _slip(target) + answer[at + len(target):]


@dataclass
class SolverTeacher:
    """Writes the generator's own solution: ``<think>`` trace then answer, or the answer alone.

    ``error_rate`` is the share of prompts answered with one slip (a wrong number, name or argument):
    0 gives a teacher that is always right, more gives the weaker source of a preference pair.
    """

    error_rate: float = 0.0
    seed: int = 0
    name: str = "solver"

    def generate(self, prompts: Sequence[dict], mode: str) -> list[str]:
        _check_mode(mode)
        rng = random.Random(f"smolbook|solver|{self.seed}")
        out = []
        for row in prompts:
            answer = _slipped_answer(row) if rng.random() < self.error_rate else row["solution_answer"]
            out.append(f"<think>\n{row['solution_reasoning']}\n</think>\n{answer}" if mode == "think" else answer)
        return out


@dataclass
class ModelTeacher:
    """A causal LM (a checkpoint folder or a loaded model) completing prompts through its chat template.

    Greedy by default; ``sampling=True`` draws with the recipe's temperature 0.6 and top_p 0.95. After
    each call ``stats`` holds prompts, new tokens, seconds and tokens/s.
    """

    model: Any
    tokenizer: Any = None
    batch_size: int = 8
    max_new_tokens: int = 256
    sampling: bool = False
    temperature: float = 0.6
    top_p: float = 0.95
    backend: str = "auto"          # "auto" | "transformers" | "vllm"
    progress: bool = True
    name: str = "model"
    stats: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.backend not in ("auto", "transformers", "vllm"):
            raise SmolbookError(f"backend {self.backend!r} is not one of auto, transformers, vllm")
        if self.backend == "auto":
            self.backend = "vllm" if _vllm_usable(self.model) else "transformers"
        if self.tokenizer is None:
            if not isinstance(self.model, (str, Path)):
                raise SmolbookError("ModelTeacher needs a tokenizer when given a loaded model")
            self.tokenizer = load_tokenizer(self.model)
        if not getattr(self.tokenizer, "chat_template", None):
            raise SmolbookError("the teacher's tokenizer has no chat template; attach one with smolbook.chat.attach_template")
        if self.backend == "transformers" and isinstance(self.model, (str, Path)):
            from transformers import AutoModelForCausalLM
            self.model = AutoModelForCausalLM.from_pretrained(str(self.model))
        self._stop = self.tokenizer.convert_tokens_to_ids("<|im_end|>")

    def prompt_texts(self, prompts: Sequence[dict], mode: str) -> list[str]:
        """The rendered generation prompts (the chat template with ``add_generation_prompt``)."""
        _check_mode(mode)
        return [self.tokenizer.apply_chat_template(prompt_messages(r), tokenize=False, add_generation_prompt=True,
                                                   **template_kwargs(r, mode)) for r in prompts]

    def generate(self, prompts: Sequence[dict], mode: str) -> list[str]:
        texts = self.prompt_texts(prompts, mode)
        start = time.perf_counter()
        completions, new_tokens = (self._vllm(texts) if self.backend == "vllm" else self._transformers(texts))
        seconds = time.perf_counter() - start
        self.stats = {"prompts": len(texts), "new_tokens": new_tokens, "seconds": round(seconds, 3),
                      "tokens_per_s": round(new_tokens / seconds, 1) if seconds > 0 else None}
        return completions

    def _transformers(self, texts: list[str]) -> tuple[list[str], int]:
        import torch
        from tqdm.auto import tqdm

        tok, model = self.tokenizer, self.model
        tok.padding_side = "left"   # generation continues from the right end of every row
        if tok.pad_token_id is None:
            raise SmolbookError("the teacher's tokenizer has no pad token; batched generation needs one")
        model.eval()
        out, total = [], 0
        sampling = {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p} if self.sampling \
            else {"do_sample": False}
        batches = range(0, len(texts), self.batch_size)
        for i in tqdm(batches, desc=f"{self.name}: generating", disable=not self.progress, leave=False):
            enc = tok(texts[i:i + self.batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            enc = {k: v.to(model.device) for k, v in enc.items()}
            with torch.no_grad():
                ids = model.generate(**enc, max_new_tokens=self.max_new_tokens, eos_token_id=self._stop,
                                     pad_token_id=tok.pad_token_id, **sampling)
            for row in ids[:, enc["input_ids"].shape[1]:].tolist():
                kept = row[: row.index(self._stop) + 1] if self._stop in row else [t for t in row if t != tok.pad_token_id]
                total += len(kept)
                out.append(tok.decode(kept, skip_special_tokens=False).replace("<|im_end|>", ""))
        return out, total

    def _vllm(self, texts: list[str]) -> tuple[list[str], int]:  # pragma: no cover - needs vLLM and a GPU
        from vllm import LLM, SamplingParams

        if not hasattr(self, "_llm"):
            self._llm = LLM(model=str(self.model), tokenizer=str(self.model))
        params = SamplingParams(max_tokens=self.max_new_tokens, stop=["<|im_end|>"],
                                **({"temperature": self.temperature, "top_p": self.top_p} if self.sampling
                                   else {"temperature": 0.0}))
        results = self._llm.generate(texts, params, use_tqdm=self.progress)
        return [r.outputs[0].text for r in results], sum(len(r.outputs[0].token_ids) for r in results)


def _vllm_usable(model: Any) -> bool:
    import importlib.util
    if not isinstance(model, (str, Path)) or importlib.util.find_spec("vllm") is None:
        return False
    import torch
    return torch.cuda.is_available()


def filter_correct(prompts: Sequence[dict], completions: Sequence[str], mode: str) -> tuple[list[dict], dict]:
    """Keep the completions that are right (the chat evaluation's ``correct``) and well formed for ``mode``.

    Returns the kept rows (each a training conversation ending with the teacher's turn) and a report:
    how many were kept, and how many were dropped as unparsable, badly formatted or wrong. A completion
    that does not parse is dropped and counted, never raised.
    """
    if len(prompts) != len(completions):
        raise SmolbookError(f"{len(prompts)} prompts but {len(completions)} completions")
    kept, report = [], {"total": len(prompts), "kept": 0, "unparsable": 0, "bad_format": 0, "wrong": 0}
    for row, completion in zip(prompts, completions):
        s = score_completion(row, completion, mode)
        reason = "unparsable" if s["error"] else "bad_format" if not s["format_ok"] else None if s["correct"] else "wrong"
        if reason:
            report[reason] += 1
            continue
        kept.append({**row, "mode": mode, "messages": prompt_messages(row) + [{"role": "assistant", "content": completion}],
                     "chat_template_kwargs": {**row["chat_template_kwargs"], **template_kwargs(row, mode)}})
    report["kept"] = len(kept)
    return kept, report


def teacher_traces(teacher: Teacher, prompts: Sequence[dict], mode: str) -> tuple[Any, dict]:
    """Generate ``mode`` completions with ``teacher``, keep the correct ones: (dataset, report)."""
    rows = [dict(r) for r in prompts]
    kept, report = filter_correct(rows, teacher.generate(rows, mode), mode)
    report["teacher"] = teacher.name
    if not kept:
        raise SmolbookError(f"teacher {teacher.name!r} got none of {report['total']} prompts right in {mode} mode "
                            f"({report}); nothing to train on")
    return chat_dataset(kept, source=f"{teacher.name} traces"), report
