"""The scales table: one place that sizes every notebook (``smoke``, ``tiny``, ``small``, ``full``).

The table lives in ``scales.yaml`` beside this module and is validated when loaded (pydantic models of the
file's entries, :class:`ScaleEntry`, then the checks between fields), so a malformed entry fails with a message
naming the scale and the field rather than deep inside a training loop. It holds only what a scale chooses (sizes, budgets, devices); the recipe's shape and
numbers come from the recipe data (:mod:`smolbook.recipe`): the query heads per KV head, the NoPE
interval, RoPE theta per stage, the long-context lengths as multiples of the base length, the stage
shares, and at ``full`` (``model: recipe`` and fields written ``recipe``) the released 3B itself.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from smolbook.errors import SmolbookError
from smolbook.recipe import ModelSize, load_post_training, load_recipe
from smolbook.validation import validate

SCALES_FILE = Path(__file__).with_name("scales.yaml")
SCALE_NAMES = ("smoke", "tiny", "gpu", "small", "full")  # gpu: offline, one CUDA GPU (no hub)
DEFAULT_SCALE = "tiny"
# Post-training phases the table budgets (the long-context stages are budgeted by their recipe stage names).
LONG_CONTEXT_STAGES = ("lc-32k", "lc-64k")
PHASES = (*LONG_CONTEXT_STAGES, "mid_training", "sft", "preference")
# Scale fields ``full`` may write as ``recipe``: taken from the released pretraining run.
RECIPE_FIELDS = ("seq_len", "micro_batch_size", "global_batch_size", "pretrain_tokens", "learning_rate", "warmup_steps")
# The sizes a scale's ``model`` entry must set: the recipe's field list (num_key_value_heads may follow the recipe).
MODEL_SIZE_FIELDS = tuple(f.name for f in fields(ModelSize) if f.name != "num_key_value_heads")


class ScaleError(SmolbookError, ValueError):
    """An unknown scale or a malformed scales table."""


@dataclass(frozen=True)
class ModelShape(ModelSize):
    """A scale's model: the recipe's size fields, with the layout the scale takes from the recipe."""

    no_rope_layer_interval: int
    rope_theta: float
    rope_theta_long: tuple[float, float]

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


@dataclass(frozen=True)
class Budget:
    """How much one training run or phase trains: its steps, rows and row length, learning rate and schedule. The one
    budget type of the book: the scales table's budget of a phase (:meth:`Scale.budget`) and the budget a run spec
    resolves to (:func:`smolbook.train.run.budget_of`: the spec's own values over the scale's) are both one.

    ``tokens`` is per epoch (``steps`` cover all ``epochs``); ``rows_per_step`` x ``seq_len`` keeps the tokens per step
    of pretraining, as the recipe does for its long-context stages; ``learning_rate`` is the scale's pretraining rate
    times the recipe's ratio where the recipe gives one (long context: 2e-5 / 2e-4), else the scale's ``lr_ratio``.
    ``decay_fraction`` is the share of steps in a WSD decay (``None``: the recipe's).
    """

    phase: str
    tokens: int
    epochs: int
    seq_len: int
    rows_per_step: int
    learning_rate: float
    warmup_steps: int
    schedule: str
    lr_source: str
    steps: int
    decay_fraction: float | None = None


PositiveInt = Annotated[int, Field(strict=True, ge=1)]
NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]
Recipe = Literal["recipe"]  # a field ``full`` takes from the released run


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Evaluation(_Entry):
    """How much each chapter's held-out evaluations read at a scale: items per probe and new tokens per answer
    (a smoke-sized scale proves the code path with a few; the offline scales' sizes are what their verdicts need)."""

    probe_items: PositiveInt               # 08, 09: cloze prompts per length of the long-context probe
    lc_probe_items: PositiveInt            # 12, 13: cloze prompts at the base length (more: their arms differ less)
    midtraining_chat_items: PositiveInt    # 09: held-out conversations per kind
    trace_tokens: PositiveInt              # 09: new tokens per think-mode answer (the longest trace is ~100 tokens)
    chat_items: PositiveInt                # 11: held-out conversations per kind
    chat_tokens: PositiveInt               # 11: new tokens per answer (IFEval answers run long)
    short_chat_tokens: PositiveInt         # 11: new tokens per answer of the control arms (math, code, facts, multi-turn)
    task_items: PositiveInt                # 12, 13: held-out conversations per task kind
    task_tokens: PositiveInt               # 12, 13: new tokens per task answer
    agent_items: PositiveInt               # 15: held-out tool questions per style
    agent_tokens: PositiveInt              # 15: new tokens per agent turn


_ModelEntryBase = create_model("_ModelEntryBase", __base__=_Entry,
                               **{name: (PositiveInt, ...) for name in MODEL_SIZE_FIELDS})


class ModelEntry(_ModelEntryBase):
    """A scale's model in the table: its sizes (:class:`smolbook.recipe.ModelSize`'s fields); the recipe gives the rest
    (4 query heads per KV head, NoPE every 4th layer, RoPE theta per stage) unless ``num_key_value_heads`` /
    ``no_rope_layer_interval`` say otherwise."""

    num_key_value_heads: PositiveInt | None = None
    no_rope_layer_interval: PositiveInt | None = None


class BudgetEntry(_Entry):
    """One phase's budget in the table: tokens per epoch (``recipe``: the recipe's), and for a post-training phase
    its row length, learning-rate ratio and, where the scale departs from the recipe, epochs and warm-up share."""

    tokens: PositiveInt | Recipe
    epochs: PositiveInt | None = None
    seq_len: PositiveInt | Recipe | None = None
    lr_ratio: Annotated[float, Field(gt=0)] | None = None
    warmup_fraction: Annotated[float, Field(ge=0, lt=1)] | None = None


class ScaleEntry(_Entry):
    """One scale as ``scales.yaml`` writes it (fields written ``recipe`` are read from the released run)."""

    where: str
    offline: Annotated[bool, Field(strict=True)]
    device: Literal["cpu", "cuda"]
    launcher: Literal["inprocess", "accelerate", "slurm"]
    tokenizer: str
    model: ModelEntry | Recipe
    seq_len: PositiveInt | Recipe
    micro_batch_size: PositiveInt | Recipe
    global_batch_size: PositiveInt | Recipe
    pretrain_tokens: PositiveInt | Recipe
    ablation_tokens: PositiveInt
    learning_rate: Annotated[float, Field(gt=0)] | Recipe
    warmup_steps: PositiveInt | Recipe
    eval_every_steps: PositiveInt
    seeds: Annotated[list[NonNegativeInt], Field(min_length=1)]
    corpus_docs_per_domain: NonNegativeInt
    eval_examples_per_task: NonNegativeInt
    evaluation: Evaluation
    budgets: dict[Literal[PHASES], BudgetEntry]  # type: ignore[valid-type]

    @field_validator("budgets")
    @classmethod
    def _every_phase(cls, budgets: dict[str, BudgetEntry]) -> dict[str, BudgetEntry]:
        missing = [p for p in PHASES if p not in budgets]
        if missing:
            raise ValueError(f"need every phase ({', '.join(PHASES)}); missing {', '.join(missing)}")
        return budgets


@dataclass(frozen=True)
class Scale:
    """Sizes for one scale. ``seq_len`` stands for the recipe's 4k; ``long_context`` for 32k and 64k."""

    name: str
    where: str
    offline: bool
    device: str
    launcher: str
    tokenizer: str
    model: ModelShape
    seq_len: int
    long_context: tuple[int, int]  # derived: the recipe's 32k and 64k as multiples of seq_len
    micro_batch_size: int
    global_batch_size: int
    pretrain_tokens: int
    ablation_tokens: int
    learning_rate: float
    warmup_steps: int
    eval_every_steps: int
    seeds: tuple[int, ...]
    corpus_docs_per_domain: int
    eval_examples_per_task: int
    evaluation: Evaluation
    budgets: dict[str, Budget]

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch_size * self.seq_len

    @property
    def pretrain_steps(self) -> int:
        return max(1, self.pretrain_tokens // self.tokens_per_step)

    @property
    def ablation_steps(self) -> int:
        return max(1, self.ablation_tokens // self.tokens_per_step)

    def stage_step_boundaries(self) -> dict[str, tuple[int, int]]:
        """Step interval ``[start, end)`` of each pretraining stage, at the shares the released configs ran."""
        return split_steps(self.pretrain_steps, pretraining_shares())

    def stage_token_boundaries(self) -> dict[str, tuple[int, int]]:
        """Token interval ``[start, end)`` of each pretraining stage (whole steps of ``tokens_per_step``)."""
        return {k: (a * self.tokens_per_step, b * self.tokens_per_step) for k, (a, b) in self.stage_step_boundaries().items()}

    def lr_decay_fraction(self) -> float:
        """Share of the pretraining steps in the learning-rate decay: exactly the decay stage's steps, since the
        configs start the decay with that stage (``lr_decay_starting_step`` = its first step)."""
        a, b = self.stage_step_boundaries()[load_recipe().lr_decay_stage()]
        return (b - a) / self.pretrain_steps

    def budget(self, phase: str) -> Budget:
        """The budget of a phase after pretraining (``lc-32k``, ``lc-64k``, ``mid_training``, ``sft``, ``preference``)."""
        if phase not in self.budgets:
            raise ScaleError(f"scale '{self.name}' has no budget for '{phase}': choose one of {', '.join(self.budgets)}")
        return self.budgets[phase]


def pretraining_shares() -> dict[str, float]:
    """Each pretraining stage's share of the steps, from the recipe (0.731 / 0.158 / 0.111)."""
    return load_recipe().pretraining_step_shares()


def split_steps(steps: int, shares: dict[str, float]) -> dict[str, tuple[int, int]]:
    """Cut ``steps`` into consecutive ``[start, end)`` intervals at cumulative ``shares`` (rounded to whole steps;
    the last interval ends at ``steps``). The one rounding rule of stage boundaries, used by the scales and the
    data stream alike, so the learning-rate decay and the decay mixture start at the same step."""
    total = sum(shares.values())
    out, cum, start = {}, 0.0, 0
    names = list(shares)
    for i, name in enumerate(names):
        cum += shares[name]
        end = steps if i == len(names) - 1 else round(steps * cum / total)
        out[name] = (start, max(start, end))
        start = out[name][1]
    return out


def _fail(scale: str, msg: str) -> ScaleError:
    return ScaleError(f"scales table {SCALES_FILE.name}, scale '{scale}': {msg}")


def _model_shape(name: str, entry: ModelEntry | str) -> ModelShape:
    """A scale's model: ``recipe`` (the released 3B) or its sizes, with the recipe's shape for the rest."""
    r = load_recipe()
    a = r.architecture
    size = {k: getattr(a if entry == "recipe" else entry, k) for k in MODEL_SIZE_FIELDS}
    heads_per_kv = a.num_attention_heads // a.num_key_value_heads
    kv = getattr(entry, "num_key_value_heads", None) or max(1, size["num_attention_heads"] // heads_per_kv)
    interval = getattr(entry, "no_rope_layer_interval", None) or a.no_rope_layer
    return ModelShape(**size, num_key_value_heads=kv, no_rope_layer_interval=interval, rope_theta=a.rope_theta,
                      rope_theta_long=tuple(r.runs[st].rope_theta for st in LONG_CONTEXT_STAGES))


def _budgets(name: str, entries: dict[str, BudgetEntry], scale_kw: dict, long_context: tuple[int, ...]
             ) -> dict[str, Budget]:
    """Each phase's budget: tokens (and for post-training phases seq_len and lr_ratio) from the table; epochs,
    schedule, warm-up share and long-context learning rates from the recipe."""
    r, pt = load_recipe(), load_post_training()
    tokens_per_step = scale_kw["global_batch_size"] * scale_kw["seq_len"]
    base_lr = scale_kw["learning_rate"]
    pre = r.runs["pretraining"].schedule
    out = {}
    for phase in PHASES:
        b = entries[phase]
        if phase in LONG_CONTEXT_STAGES:
            run = r.runs[phase]
            seq = long_context[LONG_CONTEXT_STAGES.index(phase)]
            tokens = run.tokens if b.tokens == "recipe" else b.tokens
            lr, lr_source = base_lr * run.schedule.learning_rate / pre.learning_rate, \
                f"recipe ratio {run.schedule.learning_rate:g} / {pre.learning_rate:g}"
            warm_share, schedule, epochs = run.schedule.lr_warmup_steps / run.schedule.train_steps, \
                run.schedule.lr_decay_style, 1
        else:
            section = {"mid_training": "mid_training", "sft": "sft", "preference": "apo"}[phase]
            if b.lr_ratio is None:
                raise _fail(name, f"budgets.{phase}: needs lr_ratio (times the pretraining rate: the recipe states no "
                                  "learning rate for this phase)")
            if b.tokens == "recipe" and phase == "preference":
                raise _fail(name, "budgets.preference.tokens: the recipe states no token count for this phase: "
                                  "give a number")
            tokens = pt.value(section, "tokens_per_epoch" if phase == "mid_training" else "tokens") \
                if b.tokens == "recipe" else b.tokens
            if b.seq_len == "recipe" and phase != "preference":
                raise _fail(name, f"budgets.{phase}.seq_len: 'recipe' only for preference (the APO data's 24k cap)")
            seq = pt.value("apo", "max_tokens") if b.seq_len == "recipe" else (b.seq_len or scale_kw["seq_len"])
            epochs = b.epochs or (pt.value(section, "epochs") if phase != "preference" else 1)
            lr, lr_source = base_lr * b.lr_ratio, f"scale choice: {b.lr_ratio:g} x pretraining " \
                "(the recipe states no learning rate)"
            warm_share, schedule = 0.05 if b.warmup_fraction is None else b.warmup_fraction, "cosine"
        rows = max(1, tokens_per_step // seq)
        steps = max(1, epochs * tokens // (rows * seq))
        out[phase] = Budget(phase=phase, tokens=int(tokens), epochs=int(epochs), seq_len=int(seq), rows_per_step=rows,
                            learning_rate=lr, warmup_steps=min(steps - 1, round(warm_share * steps)) if steps > 1 else 0,
                            schedule=schedule, lr_source=lr_source, steps=steps)
    return out


def _build(name: str, raw: Any) -> Scale:
    entry = validate(ScaleEntry, raw, f"scales table {SCALES_FILE.name}, scale '{name}'", ScaleError)
    r = load_recipe()
    pre = r.runs["pretraining"]
    from_recipe = {"seq_len": pre.sequence_length, "micro_batch_size": pre.micro_batch_size,
                   "global_batch_size": pre.sequences_per_step, "pretrain_tokens": pre.tokens,
                   "learning_rate": pre.schedule.learning_rate, "warmup_steps": pre.schedule.lr_warmup_steps}
    kw = {k: getattr(entry, k) for k in ScaleEntry.model_fields if k not in ("model", "budgets")}
    kw |= {k: from_recipe[k] for k in RECIPE_FIELDS if kw[k] == "recipe"}
    kw["seeds"] = tuple(entry.seeds)
    kw["learning_rate"] = float(kw["learning_rate"])
    # The long-context lengths keep the recipe's multiples of the base length (4k -> 32k -> 64k: x8, then x2).
    long_context = tuple(kw["seq_len"] * r.runs[st].sequence_length // pre.sequence_length for st in LONG_CONTEXT_STAGES)
    scale = Scale(name=name, long_context=long_context, model=_model_shape(name, entry.model),
                  budgets=_budgets(name, entry.budgets, kw, long_context), **kw)
    _validate(scale)
    return scale


def _validate(s: Scale) -> None:
    m = s.model
    checks = [
        (m.hidden_size % m.num_attention_heads == 0, "hidden_size must be divisible by num_attention_heads"),
        (m.num_attention_heads % m.num_key_value_heads == 0, "num_attention_heads must be a multiple of num_key_value_heads"),
        (m.num_hidden_layers % m.no_rope_layer_interval == 0, "num_hidden_layers must be a multiple of no_rope_layer_interval"),
        (s.global_batch_size % s.micro_batch_size == 0, "global_batch_size must be a multiple of micro_batch_size"),
        (not s.offline or s.corpus_docs_per_domain > 0, "an offline scale needs corpus_docs_per_domain > 0"),
    ]
    if s.name != "smoke":  # smoke has 2 layers only; from tiny up the recipe keeps its shape
        checks += [
            (m.num_attention_heads // m.num_key_value_heads == 4, "the recipe's shape: 4 query heads per KV head"),
            (m.no_rope_layer_interval == 4, "the recipe's shape: NoPE every 4th layer"),
        ]
    for ok, msg in checks:
        if not ok:
            raise _fail(s.name, msg)


def load_scales(path: str | Path = SCALES_FILE) -> dict[str, Scale]:
    """Load and validate a scales table (the package's own by default)."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        raise ScaleError(f"scales table {path}: not valid YAML ({e})") from None
    if not isinstance(raw, dict):
        raise ScaleError(f"scales table {path}: expected a mapping of scale name -> fields")
    return {name: _build(name, entry) for name, entry in raw.items()}


@lru_cache(maxsize=1)
def _table() -> dict[str, Scale]:
    return load_scales()


def get_scale(name: str | Scale) -> Scale:
    """The :class:`Scale` called ``name``; a clear error listing the valid names otherwise."""
    if isinstance(name, Scale):
        return name
    table = _table()
    if name not in table:
        raise ScaleError(f"unknown scale '{name}': choose one of {', '.join(table)}")
    return table[name]


def departures(scale: str | Scale) -> list[dict[str, Any]]:
    """Where a scale departs from the recipe's proportions, computed: each phase's tokens (times epochs) as a share
    of pretraining, in the recipe and at this scale. At tiny the recipe's 50B of 11T tokens would be two steps, so
    the long-context and post-training phases get a larger share; this table says by how much."""
    s = get_scale(scale)
    r, pt = load_recipe(), load_post_training()
    pre_tokens = r.runs["pretraining"].tokens
    recipe_tokens = {"lc-32k": r.runs["lc-32k"].tokens, "lc-64k": r.runs["lc-64k"].tokens,
                     "mid_training": pt.value("mid_training", "tokens"),
                     "sft": pt.value("sft", "tokens") * pt.value("sft", "epochs"), "preference": None}
    rows = []
    for phase in PHASES:
        b = s.budget(phase)
        ours = b.tokens * b.epochs / s.pretrain_tokens
        ref = recipe_tokens[phase]
        rows.append({"phase": phase, "recipe tokens": ref, "recipe share of pretraining": None if ref is None else ref / pre_tokens,
                     f"{s.name} tokens": b.tokens * b.epochs, f"{s.name} share of pretraining": ours,
                     "x recipe share": None if ref is None else ours / (ref / pre_tokens), "steps": b.steps,
                     "seq_len": b.seq_len, "learning rate": b.learning_rate, "learning rate from": b.lr_source})
    return rows
