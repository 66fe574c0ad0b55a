"""Dual-mode SFT as chapter 11 runs it: the mixture's adjustments, the teacher's traces for a domain that lacks
them, the run specs (the recipe arm and the control arms), what the chapter shows of packing (BFD fill, the loss
mask of one packed row), the arms' held-out scores and what each of the chapter's claims is judged on.

The recipe's SFT set had no reasoning traces for some domains; Qwen3-32B wrote them in think mode from the prompts
of the non-reasoning data. Here one domain (``lacking``) loses its think-mode rows, and :func:`teacher_rows` has
the teacher answer the prompts of its no_think rows in think mode, keeping only correct answers; the SFT arms train
with or without them (``conversations`` builder options ``without_traces`` and ``extra_rows``).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pandas as pd

from smolbook.claims import Check, Claim
from smolbook.data import PreparedData
from smolbook.data.chat import KINDS, prompt_messages, render_row, shared_chat_data, template_kwargs
from smolbook.data.conversations import MODES
from smolbook.data.hub_chat import open_chat_dataset, released_source
from smolbook.errors import SmolbookError
from smolbook.evaluate.chat import answer_loss, chat_scores, items_in
from smolbook.midtraining import REASONING_KINDS
from smolbook.recipe import load_post_training
from smolbook.scales import Budget, Scale, get_scale
from smolbook.teacher import filter_correct
from smolbook.train.spec import BudgetSpec, DataSpec, ModelSpec, RunSpec
from smolbook.train.trl import chat_tokenizer  # noqa: F401  (the tokenizer the SFT trainer reads: the chapter uses it)


MULTI_STEP_KINDS = REASONING_KINDS  # problems whose answer needs more than one step: the kinds mid-training reasons on
MID, LONG_CONTEXT = "chapter:09_midtraining", "chapter:08_long_context"  # the recipe's start, and the control's
# control arm -> (run name, start, with the teacher's traces): each differs from the short recipe arm in one thing
CONTROL_ARMS = {"short recipe": ("short-recipe", MID, True),
                "no teacher": ("short-no-teacher", MID, False),
                "from 08": ("short-from08", LONG_CONTEXT, True)}
RECIPE_COLUMNS = ["checkpoint", "mode", "format_ok", "answer_em", "ifeval_prompt_strict", "tool_call_match",
                  "language_match", "tokens_per_s"]  # what the chapter's table shows of the recipe arm's scores
MASK_CHECK = Check("Loss on assistant turns only: the tool result and user turns are masked",
                   "blog, Supervised finetuning")


def recipe_line(scale: Scale) -> str:
    """The recipe's SFT beside the scale's, on one line: what the chapter shrinks, and by how much."""
    pt, b = load_post_training(), scale.budget("sft")
    return (f"recipe: {pt.value('sft', 'tokens'):,} tokens x {pt.value('sft', 'epochs')} epochs, "
            f"{pt.value('sft', 'packing')} packing, loss {pt.value('sft', 'loss')}; {scale.name}: {b.tokens:,} tokens "
            f"x {b.epochs} epochs in rows of {b.seq_len}, {b.steps} steps per run, lr {b.learning_rate:g}")


def teacher_rows(chat: Any, kind: str, teacher: Any, limit: int | None = None) -> tuple[list[dict], dict]:
    """The teacher's think-mode traces for the prompts of ``kind``'s no_think training rows, kept when correct:
    (rows, report with generated / kept / dropped counts, seconds and tokens/s where the teacher counts tokens)."""
    prompts = [dict(r) for r in chat.train[kind] if r["mode"] == "no_think"][:limit]
    if not prompts:
        raise SmolbookError(f"no no_think prompts of kind {kind!r} for the teacher to answer")
    t0 = time.perf_counter()
    completions = teacher.generate(prompts, "think")
    seconds = time.perf_counter() - t0
    kept, report = filter_correct(prompts, completions, "think")
    stats = getattr(teacher, "stats", None) or {}
    report |= {"teacher": teacher.name, "generated": len(prompts), "seconds": round(seconds, 3),
               "tokens_per_s": stats.get("tokens_per_s")}
    return kept, report


def save_rows(rows: Sequence[dict], path: str | Path) -> Path:
    """Conversations as JSONL (the ``extra_rows`` option of the ``conversations`` builder reads them back)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def load_rows(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise SmolbookError(f"extra_rows: no file {path}; write it with smolbook.sft.save_rows first")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def adjust_mixture(rows: Any, options: dict, seed: int) -> Any:
    """The offline mixture with ``options.without_traces`` kinds' think rows dropped and ``options.extra_rows``
    (a JSONL file of conversations, e.g. the teacher's traces) added, shuffled again."""
    drop = set(options.get("without_traces", ()))
    extra = options.get("extra_rows")
    if not drop and not extra:
        return rows
    keep = [i for i, (k, m) in enumerate(zip(rows["kind"], rows["mode"])) if not (k in drop and m == "think")]
    out = rows.select(keep)
    if extra:
        columns = out.column_names
        added = [{c: r.get(c) for c in columns} for r in load_rows(extra)]
        out = datasets.concatenate_datasets([out, datasets.Dataset.from_list(added, features=out.features)])
    return out.shuffle(seed=seed)


def epoch_subset(rows: Any, tokens: int, n_tokens: Callable[[dict], int], min_rows: int = 1) -> Any:
    """The first rows of ``rows`` holding ``tokens`` tokens (and at least ``min_rows``): one epoch of the scale's
    budget (TRL then repeats it for the recipe's epochs within the run's steps)."""
    total, n = 0, 0
    for row in rows:
        if total >= tokens and n >= min_rows:
            break
        total += n_tokens(row)
        n += 1
    return rows.select(range(n))


def conversations_stream(spec: Any, data: PreparedData, budget: Budget) -> Any:
    """The ``conversations`` data builder, the dual-mode SFT mixture: offline, the generated conversations of
    ``options.kinds`` (every kind by default) with think-mode conversations kept at ``options.think_ratio`` of the
    no_think tokens (the recipe's 0.8B : 1B); online, the released SFT mixture streamed from the hub."""
    if not get_scale(spec.scale).offline:
        return open_chat_dataset(released_source("sft"), streaming=True, seed=spec.seed)
    opts = spec.data.options
    pt = load_post_training()
    ratio = float(opts.get("think_ratio", pt.value("sft", "reasoning_tokens") / pt.value("sft", "non_reasoning_tokens")))
    mix = shared_chat_data(spec.scale, data.seed).mixture(tuple(opts.get("kinds", KINDS)), seed=spec.seed)
    # options.without_traces drops a domain's think rows, options.extra_rows adds conversations (a teacher's traces)
    mix = adjust_mixture(mix, opts, spec.seed)
    n_tokens = lambda row: len(data.tokenizer(render_row(row, data.tokenizer), verbose=False)["input_ids"])  # noqa: E731
    # One epoch is the scale's SFT tokens; TRL repeats it for the recipe's epochs within the run's steps. Rows are
    # counted on a prefix of four epochs' size (the mixture is shuffled) rather than over the whole mixture.
    epoch = budget.tokens
    mix = epoch_subset(mix, 4 * epoch, n_tokens, min_rows=16)
    return epoch_subset(balance_modes(mix, ratio, n_tokens), epoch, n_tokens)


def balance_modes(rows: Any, think_ratio: float, n_tokens: Callable[[dict], int]) -> Any:
    """Keep every no_think row and the first think rows up to ``think_ratio`` x the no_think tokens (the recipe sets
    its mixture in tokens: 0.8B reasoning to 1B non-reasoning)."""
    if think_ratio < 0:
        raise SmolbookError(f"think_ratio must be >= 0, got {think_ratio}")
    budget = think_ratio * sum(n_tokens(r) for r in rows if r["mode"] == "no_think")
    keep, used = [], 0
    for i, r in enumerate(rows):
        if r["mode"] == "think":
            n = n_tokens(r)
            if used + n > budget:
                continue
            used += n
        keep.append(i)
    return rows.select(keep)


def sft_spec(chapter: str, name: str, source: str, scale: str, output_dir: Any, seed: int,
             options: dict | None = None, steps: int | None = None, checkpoint_every: int | None = None,
             final: bool = True) -> Any:
    """The run spec of one SFT run (TRL ``SFTTrainer``: BFD packing, assistant-only loss) from ``source``;
    ``checkpoint_every`` keeps a checkpoint every so many steps (a learning curve evaluates them); ``final=False``
    for a control arm or another seed, so that ``start_from`` the chapter returns its own model."""
    return RunSpec(chapter=chapter, name=name, scale=scale, output_dir=str(output_dir), phase="sft", trainer="sft",
                   seed=seed, model=ModelSpec(checkpoint=source), data=DataSpec(options=dict(options or {})),
                   budget=BudgetSpec(steps=steps), checkpoint_every=checkpoint_every,
                   keep_checkpoints=checkpoint_every is not None, final=final)


def packing_fill(conversations: Any, tokenizer: Any, seq_len: int) -> dict[str, Any]:
    """How full the rows are when ``conversations`` are packed with TRL's BFD (``trl.data_utils.pack_dataset``) and
    when each is padded to its own row: tokens, rows and the share of row positions holding a token."""
    import pyarrow as pa
    from trl.data_utils import _pack_bfd  # the function TRL's pack_dataset(strategy="bfd") maps over the dataset

    ids = [tokenizer(render_row(r, tokenizer), add_special_tokens=False, verbose=False)["input_ids"][:seq_len]
           for r in conversations]
    tokens = sum(map(len, ids))
    packed = _pack_bfd(pa.table({"input_ids": ids}), seq_len)
    lengths = [len(x) for x in packed.column("input_ids").to_pylist()]
    return {"conversations": len(ids), "tokens": tokens, "seq_len": seq_len,
            "bfd_rows": len(lengths), "bfd_fill": tokens / (len(lengths) * seq_len),
            "padded_rows": len(ids), "padded_fill": tokens / (len(ids) * seq_len),
            "bfd_row_tokens": lengths}


def loss_mask(row: dict, tokenizer: Any) -> tuple[list[str], list[int], list[str]]:
    """One conversation as the SFT trainer sees it: its tokens, the assistant mask (1: in the loss) that TRL's
    ``assistant_only_loss`` reads from the template's generation blocks, and each token's role."""
    kwargs = template_kwargs(row)
    tokenizer.model_max_length = max(tokenizer.model_max_length, 1 << 30)  # long rows only warn; this just reads them
    enc = tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True, **kwargs)
    ids = enc["input_ids"]
    pieces = [tokenizer.decode([t]) for t in ids]
    # The template writes tool results as user turns: the k-th user/assistant header is the k-th non-system message.
    turns = iter(m["role"] for m in row["messages"] if m["role"] != "system")
    roles, role, header = [], "system", None
    for p in pieces:
        if p == "<|im_start|>":
            header = ""
        elif header is not None:
            header += p
            if "\n" in header:
                name = header.split("\n")[0].strip()
                role = next(turns, name) if name in ("user", "assistant") else name
                header = None
        roles.append(role)
    return pieces, list(enc["assistant_masks"]), roles


def generate_in_both_modes(checkpoint: str | Path, row: dict, max_new_tokens: int = 128) -> dict[str, str]:
    """One held-out prompt answered in each mode by the checkpoint loaded with plain transformers
    (``AutoModelForCausalLM``/``AutoTokenizer``, its own chat template, greedy, stopping at its eos ``<|im_end|>``)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(checkpoint))
    model = AutoModelForCausalLM.from_pretrained(str(checkpoint)).eval()
    out = {}
    for mode in ("think", "no_think"):
        text = tok.apply_chat_template(prompt_messages(row), tokenize=False, add_generation_prompt=True,
                                       **template_kwargs(row, mode))
        ids = tok(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            gen = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        out[mode] = tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=False)
    return out


def describe_fill(fill: dict[str, Any]) -> str:
    """One line on how full :func:`packing_fill`'s rows are, BFD against one conversation per padded row."""
    return (f"one epoch: {fill['conversations']} conversations, {fill['tokens']:,} tokens; BFD {fill['bfd_rows']} rows "
            f"({fill['bfd_fill']:.1%} full), padded {fill['padded_rows']} rows ({fill['padded_fill']:.1%} full)")


def assistant_only_check(mask: Sequence[int], roles: Sequence[str]) -> tuple[Check, str, bool]:
    """The implementation check on :func:`loss_mask`'s output, as ``Chapter.check`` takes it: some tokens are in the
    loss, and none of the user's or the tool's is."""
    in_loss_tool = sum(m for m, r in zip(mask, roles) if r == "tool")
    measured = f"{sum(mask)} of {len(mask)} tokens in the loss; tool tokens in it: {in_loss_tool}"
    return MASK_CHECK, measured, sum(mask) > 0 and not any(m for m, r in zip(mask, roles) if r in ("tool", "user"))


def control_steps(steps: int, share: float) -> int:
    """The control arms' budget: ``share`` of the recipe arm's steps, at least one."""
    return max(1, round(steps * share))


def recipe_specs(chapter: str, scale: str, output_dir: Any, seeds: Sequence[int], main_seed: int,
                 options: dict) -> dict[tuple[str, int], Any]:
    """The recipe arm (09's model, ``options`` with the teacher's traces) on every seed at the scale's SFT budget,
    keyed ``("recipe", seed)`` for :func:`smolbook.train.sweep`. The main seed is the chapter's final model and keeps
    a checkpoint every fifth of its steps for the learning curve; the other seeds keep only their final model."""
    curve_every = max(1, get_scale(scale).budget("sft").steps // 5)
    return {("recipe", k): sft_spec(chapter, "sft" if k == main_seed else f"sft-seed{k}", MID, scale, output_dir, k,
                                    options, checkpoint_every=curve_every if k == main_seed else None,
                                    final=k == main_seed)
            for k in seeds}


def control_specs(chapter: str, scale: str, output_dir: Any, seeds: Sequence[int], options: dict,
                  steps: int) -> dict[tuple[str, int], Any]:
    """The :data:`CONTROL_ARMS` on every seed at the shorter budget ``steps``, keyed ``(arm, seed)``: the short recipe
    arm, the same without the teacher's traces (``options`` less ``extra_rows``), and the same from 08's model, so
    that each controlled claim compares two arms of one budget and one data order per seed."""
    no_traces = {k: v for k, v in options.items() if k != "extra_rows"}
    return {(arm, k): sft_spec(chapter, f"{name}-seed{k}", source, scale, output_dir, k,
                               options if traces else no_traces, steps=steps, final=False)
            for arm, (name, source, traces) in CONTROL_ARMS.items() for k in seeds}


def runs_line(rows: Sequence[dict], budget: Any, recipe_runs: int, recipe_seconds: float, control_runs: int,
              control_steps: int, control_seconds: float) -> str:
    """One line on the SFT runs: the recipe arm's steps, tokens (and the share of the packed rows' positions they
    fill), loss and time, then the control arms' count and time. ``rows`` is the main run's training log."""
    capacity = rows[-1]["step"] * budget.rows_per_step * budget.seq_len
    return (f"recipe arm: {recipe_runs} runs of {rows[-1]['step']} steps in {recipe_seconds:.0f} s, "
            f"{rows[-1]['tokens']:,} tokens trained per run ({rows[-1]['tokens'] / capacity:.1%} of the packed rows' "
            f"positions), loss {rows[0]['loss']:.2f} -> {rows[-1]['loss']:.2f}; control arms: {control_runs} runs of "
            f"{control_steps} steps in {control_seconds:.0f} s")


@dataclass
class ArmScores:
    """What the SFT arms scored on held-out conversations: the tables the chapter's figure, numbers and verdicts
    read. ``recipe``: one record per recipe seed and mode on every kind; ``controls``: think-mode scores per control
    checkpoint (``"<arm> seed <k>"``) on the lacking domain and the multi-step kinds; ``loss``: the loss of the
    correct think-mode answer per (arm, seed, probe); ``probes``: the held-out rows of each probe."""

    recipe: pd.DataFrame
    controls: pd.DataFrame
    loss: dict[tuple[str, int, str], float]
    probes: dict[str, Any]
    lacking: str

    def by_mode(self, mode: str) -> pd.DataFrame:
        """The recipe arm's records in ``mode``, one per checkpoint (``"recipe seed <k>"``)."""
        return self.recipe[self.recipe["mode"] == mode].set_index("checkpoint")

    def per_kind(self, kinds: Sequence[str] = KINDS) -> pd.DataFrame:
        """The recipe arm's score per kind (rows ``correct/<kind>``) and mode (columns), mean over seeds."""
        return self.recipe.groupby("mode")[[f"correct/{k}" for k in kinds]].mean().T

    def control_em(self, arm: str, kinds: Sequence[str], seeds: Sequence[int]) -> list[float]:
        """Per seed, a control arm's exact match in think mode averaged over ``kinds``."""
        return [self.controls.loc[f"{arm} seed {k}", [f"correct/{x}" for x in kinds]].mean() for k in seeds]


# (control arm, probe) pairs whose answer loss the controlled claims read
LOSS_PROBES = (("short recipe", "lacking"), ("no teacher", "lacking"), ("short recipe", "multi"), ("from 08", "multi"))


def evaluate_arms(recipe_runs: Mapping[tuple[str, int], Any], control_runs: Mapping[tuple[str, int], Any], chat: Any,
                  every: Any, lacking: str, seeds: Sequence[int], per_kind: int, long_tokens: int,
                  short_tokens: int) -> ArmScores:
    """Held-out scores of every arm, generated through each checkpoint's own template: the recipe arm on ``every``
    in both modes (answers up to ``long_tokens``); the control arms, in think mode (up to ``short_tokens``), on the
    ``lacking`` domain and the multi-step kinds, by exact match and by the loss of the correct answer, which moves
    before exact match does."""
    recipe = pd.DataFrame(chat_scores({f"recipe seed {k}": recipe_runs["recipe", k].checkpoint for k in seeds}, every,
                                      modes=MODES, max_new_tokens=long_tokens))
    probes = {"lacking": chat.heldout_set((lacking,), per_kind=2 * per_kind),
              "multi": chat.heldout_set(MULTI_STEP_KINDS, per_kind=per_kind)}
    controls = pd.DataFrame(chat_scores({f"{arm} seed {k}": control_runs[arm, k].checkpoint for arm, k in control_runs},
                                        datasets.concatenate_datasets([probes["lacking"], probes["multi"]]),
                                        modes=("think",), max_new_tokens=short_tokens)).set_index("checkpoint")
    loss = {(arm, k, probe): answer_loss(control_runs[arm, k].checkpoint, probes[probe])
            for arm, probe in LOSS_PROBES for k in seeds}
    return ArmScores(recipe, controls, loss, probes, lacking)


def claims(lacking: str) -> dict[str, Claim]:
    """The chapter's claims with their margins, fixed before any run: both modes work, thinking helps on multi-step
    problems, the teacher's traces help the ``lacking`` domain, and mid-training helps SFT."""
    return {
        "think_format": Claim("Think mode works: a closed think block, then the answer", "blog, Chat template",
                              "format adherence, think mode", "better", margin=0.3, higher_is_better=True, chance=0.0,
                              accuracy=True),
        "no_think_format": Claim("No_think mode works: an answer with no reasoning", "blog, Chat template",
                                 "format adherence, no_think mode", "better", margin=0.3, higher_is_better=True,
                                 chance=0.0, accuracy=True),
        "think_helps": Claim("Think mode beats no_think on multi-step problems", "blog, Supervised finetuning",
                             "exact match, multi-step kinds", "better", margin=0.02, higher_is_better=True, chance=0.0,
                             accuracy=True),
        "teacher": Claim(f"The teacher's traces help the domain that lacked them ({lacking}, think mode)",
                         "blog, Synthetic data generation", f"exact match, {lacking}, think mode", "better",
                         margin=0.02, higher_is_better=True, chance=0.0, accuracy=True),
        "teacher_loss": Claim(f"The teacher's traces make correct think-mode answers of the domain that lacked them "
                              f"({lacking}) more likely", "blog, Synthetic data generation",
                              f"loss of the reference think-mode answer, {lacking} (nats per token)", "better",
                              margin=0.05),
        "mid_helps": Claim("Mid-training helps SFT: the same SFT from the mid-trained model beats it from 08's model",
                           "blog, Mid-training", "exact match, multi-step kinds, think mode", "better", margin=0.02,
                           higher_is_better=True, chance=0.0, accuracy=True),
        "mid_loss": Claim("Mid-training helps SFT, in loss: correct think-mode answers to multi-step problems are more "
                          "likely after SFT from 09's model than from 08's", "blog, Mid-training",
                          "loss of the reference think-mode answer, multi-step kinds (nats per token)", "better",
                          margin=0.05),
    }


def judge_args(scores: ArmScores, before: pd.DataFrame, every: Any, seeds: Sequence[int],
               short: int) -> dict[str, dict[str, Any]]:
    """What each of :func:`claims` is judged on (``Chapter.judge``'s arguments), in the chapter's pairing: format per
    mode against 09's model before SFT (``before``, indexed by mode); think against no_think paired by seed on the
    multi-step kinds; the teacher's traces and mid-training paired by seed between control arms of ``short`` steps."""
    ids = [f"recipe seed {k}" for k in seeds]
    think, no_think = scores.by_mode("think"), scores.by_mode("no_think")

    def multi_em(df: pd.DataFrame) -> list[float]:
        return [df.loc[i, [f"correct/{k}" for k in MULTI_STEP_KINDS]].mean() for i in ids]

    def loss(arm: str, probe: str) -> list[float]:
        return [scores.loss[arm, k, probe] for k in seeds]

    lacking_items, multi_items = items_in(scores.probes["lacking"], "think"), items_in(scores.probes["multi"], "think")
    teacher = dict(baseline_name="without traces", recipe_name="with the teacher's traces", items=lacking_items,
                   note=f"control arms: {short} steps")
    mid = dict(baseline_name="SFT from 08", recipe_name="SFT from 09", items=multi_items,
               note=f"control arms: {short} steps")
    out = {f"{mode}_format": dict(baseline=before.loc[mode, "format_ok"],
                                  recipe=scores.by_mode(mode).loc[ids, "format_ok"].tolist(),
                                  baseline_name="09 (before SFT)", recipe_name="SFT", items=items_in(every, mode))
           for mode in ("think", "no_think")}
    out["think_helps"] = dict(baseline=multi_em(no_think), recipe=multi_em(think), baseline_name="no_think",
                              recipe_name="think", items=items_in(every, "think", MULTI_STEP_KINDS))
    out["teacher"] = dict(baseline=scores.control_em("no teacher", [scores.lacking], seeds),
                          recipe=scores.control_em("short recipe", [scores.lacking], seeds), **teacher)
    out["teacher_loss"] = dict(baseline=loss("no teacher", "lacking"), recipe=loss("short recipe", "lacking"), **teacher)
    out["mid_loss"] = dict(baseline=loss("from 08", "multi"), recipe=loss("short recipe", "multi"), **mid)
    out["mid_helps"] = dict(baseline=scores.control_em("from 08", MULTI_STEP_KINDS, seeds),
                            recipe=scores.control_em("short recipe", MULTI_STEP_KINDS, seeds), **mid)
    return out
