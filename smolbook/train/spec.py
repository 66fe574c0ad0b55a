"""``RunSpec``: one description of every training run of the book, round-tripping through YAML.

Pretraining, the long-context stages, mid-training, SFT and preference training are all a RunSpec: where the
model comes from (a fresh preset, or a checkpoint — a path or ``chapter:NN_name[/name]``), what changes in it
(RoPE theta, YaRN), the data (recipe stages by name, or a named builder), the budget, the schedule, the optimizer
state (carried from the checkpoint or reset), precision, seed, resume and the trainer. ``None`` fields take the
scale's and the recipe's values for the run's ``phase`` when the run is resolved (:mod:`smolbook.train.run`).

    spec = RunSpec(chapter="08_long_context", name="lc-32k", phase="lc-32k", scale="tiny",
                   model=ModelSpec(checkpoint="chapter:07_pretraining"), data=DataSpec(stages=["lc-32k"]))
    spec.save("lc32k.yaml"); RunSpec.load("lc32k.yaml") == spec     # True
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import ConfigDict, Strict, TypeAdapter, ValidationError

from smolbook.errors import SmolbookError
from smolbook.validation import problems
from smolbook.scales import PHASES, SCALE_NAMES

TRAINERS = ("pretrain", "sft", "dpo")
# The data builder a trainer reads when the spec names none (smolbook.train.run.DATA_BUILDERS).
DEFAULT_BUILDERS = {"pretrain": "stages", "sft": "conversations", "dpo": "preference-pairs"}
RUN_PHASES = ("pretraining", *PHASES)
RESUME = ("auto", True, False)
OPTIMIZER_STATES = ("reset", "carry")
SCHEDULE_KINDS = ("wsd", "cosine")
PRECISIONS = ("auto", "fp32", "bf16")
# What a pretraining-loop run evaluates at each interval: the book's held-out loss and tasks, or an ablation's lighter
# set (held-out loss, cloze, embedding norm). Named by module: the evaluation layer sits above the trainer (it scores
# what the trainer makes), so the trainer imports it only when a run asks (smolbook.train.run.named).
EVALUATIONS = {"heldout": "smolbook.evaluate.heldout:heldout_evaluator",
               "ablation": "smolbook.evaluate.heldout:ablation_evaluator"}
# The optimizer settings a run may change from the recipe's (TrainConfig fields): what an ablation arm flips.
OPTIM_FIELDS = ("weight_decay", "embedding_weight_decay", "betas", "eps", "grad_clip")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
Count = Annotated[int, Strict()]  # a whole number in a spec file (``true`` is not 1)
# A spec read from YAML is validated by pydantic (types, nested sections, unknown fields) from these annotations;
# the rules between fields are RunSpec.__post_init__'s, which a spec built in code runs too.
_NO_UNKNOWN_FIELDS = ConfigDict(extra="forbid")


class SpecError(SmolbookError, ValueError):
    """A malformed run spec: the message names the field and what to write instead."""


@dataclass
class ModelSpec:
    """Where the model comes from and what changes in it.

    Exactly one of ``preset`` (a fresh model: a scale name or ``smollm3-3b``; ``None`` with no checkpoint means the
    run's scale) and ``checkpoint`` (a folder, or ``chapter:NN_name[/name]`` for a checkpoint an earlier chapter
    registered). ``config`` overrides ``smollm3_config`` for a preset (e.g. ``no_rope_layer_interval: 0``).
    ``rope_theta`` / ``yarn_factor`` / ``original_max_position_embeddings`` reload the checkpoint with new rotary
    settings (:func:`smolbook.model.load_with_rope`); ``max_position_embeddings`` is the new context length.
    """

    __pydantic_config__ = _NO_UNKNOWN_FIELDS

    preset: str | None = None
    checkpoint: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    rope_theta: float | None = None
    yarn_factor: float | None = None
    original_max_position_embeddings: Count | None = None
    max_position_embeddings: Count | None = None


@dataclass
class DataSpec:
    """The data: a named builder and its options. ``None``: the trainer's (``stages``, the recipe's stage mixtures
    packed into rows, for ``pretrain``; ``conversations`` for ``sft``; ``preference-pairs`` for ``dpo``)."""

    __pydantic_config__ = _NO_UNKNOWN_FIELDS

    builder: str | None = None
    stages: list[str] = field(default_factory=list)
    doc_masking: bool = True
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class BudgetSpec:
    """How much: ``tokens`` or ``steps`` (not both), row length and rows per step. ``None``: the scale's budget."""

    __pydantic_config__ = _NO_UNKNOWN_FIELDS

    tokens: Count | None = None
    steps: Count | None = None
    seq_len: Count | None = None
    rows_per_step: Count | None = None


@dataclass
class ScheduleSpec:
    """The learning-rate schedule; ``None`` fields come from the recipe for the run's phase (pretraining: WSD with
    the decay stage's share; long context: cosine after the recipe's warm-up share). ``decay_fraction: 0`` with
    ``kind: wsd`` is a constant learning rate after warm-up."""

    __pydantic_config__ = _NO_UNKNOWN_FIELDS

    kind: str | None = None
    learning_rate: float | None = None
    warmup_steps: Count | None = None
    decay_fraction: float | None = None


@dataclass
class RunSpec:
    """One training run. ``chapter``/``name`` place it: ``output_dir/<chapter>/<name>/`` holds its metrics and
    checkpoints, and its final checkpoint is registered as ``chapter:<chapter>/<name>``."""

    __pydantic_config__ = _NO_UNKNOWN_FIELDS

    chapter: str
    name: str
    scale: str = "tiny"
    output_dir: str = "runs/tiny"
    phase: str = "pretraining"
    trainer: str = "pretrain"
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    budget: BudgetSpec = field(default_factory=BudgetSpec)
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    optimizer_state: str | None = None  # carry | reset; None: the recipe's (lc-32k carries, lc-64k restarts)
    optim: dict[str, Any] = field(default_factory=dict)  # OPTIM_FIELDS overrides, e.g. embedding_weight_decay: true
    precision: str = "auto"
    seed: Count = 0  # the run's own randomness: initialisation and data order
    # The seed of the book's generated corpus (and tokenizer) that the run reads from ``output_dir/data``. ``None``:
    # the corpus already there (whatever seed built it), else ``seed``. A run's ``seed`` must never rebuild the
    # shared data folder under another corpus: seed 1 of an arm would then train on another tokenizer and world.
    corpus_seed: Count | None = None
    resume: str | bool = "auto"
    evaluate: bool = True
    evaluation: str = "heldout"  # one of EVALUATIONS
    eval_every: Count | None = None
    checkpoint_every: Count | None = None
    keep_checkpoints: bool = False  # keep every checkpoint the run writes (a learning curve evaluates them)
    register_stages: bool = False  # also register the checkpoint at the end of every data stage (pretraining)
    # Register the final checkpoint as the chapter's final one (what ``start_from(chapter)`` returns); a control
    # arm, another seed or an intermediate stage sets False so it never stands in for the chapter's model.
    final: bool = True
    # Continue another run's checkpoint (model, optimizer, data position, step); with that run's seed the branch
    # sees exactly its tokens, with another seed it draws the same mixture's documents afresh (a replicate).
    branch_from: str | None = None

    def __post_init__(self) -> None:
        problems = []
        for key in ("chapter", "name"):
            v = getattr(self, key)
            if not isinstance(v, str) or not _NAME.match(v):
                problems.append(f"{key} must be a name of letters, digits, '_', '-' or '.' (no spaces), got {v!r}")
        if self.scale not in SCALE_NAMES:
            problems.append(f"scale must be one of {', '.join(SCALE_NAMES)}, got {self.scale!r}")
        if self.phase not in RUN_PHASES:
            problems.append(f"phase must be one of {', '.join(RUN_PHASES)}, got {self.phase!r}")
        if self.trainer not in TRAINERS:
            problems.append(f"trainer must be one of {', '.join(TRAINERS)}, got {self.trainer!r}")
        if self.optimizer_state is not None and self.optimizer_state not in OPTIMIZER_STATES:
            problems.append(f"optimizer_state must be one of {', '.join(OPTIMIZER_STATES)}, got {self.optimizer_state!r}")
        unknown_optim = sorted(set(self.optim) - set(OPTIM_FIELDS))
        if unknown_optim:
            problems.append(f"optim: unknown setting(s) {', '.join(unknown_optim)}; a run may change "
                            f"{', '.join(OPTIM_FIELDS)}")
        if self.evaluation not in EVALUATIONS:
            problems.append(f"evaluation must be one of {', '.join(EVALUATIONS)}, got {self.evaluation!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        for key in ("seed", "corpus_seed"):
            v = getattr(self, key)
            if (v is not None or key == "seed") and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                problems.append(f"{key} must be a non-negative integer, got {v!r}")
        if self.resume not in RESUME:
            problems.append(f"resume must be 'auto', true or false, got {self.resume!r}")
        m = self.model
        if m.preset is not None and m.checkpoint is not None:
            problems.append("model: give a preset (a fresh model) or a checkpoint, not both")
        if m.checkpoint is None and (m.rope_theta or m.yarn_factor):
            problems.append("model: rope_theta / yarn_factor change a checkpoint's rotary settings: give a checkpoint")
        if m.checkpoint is not None and m.config:
            problems.append("model: config overrides build a fresh preset; a checkpoint keeps its own config")
        if self.optimizer_state == "carry" and m.checkpoint is None:
            problems.append("optimizer_state 'carry' needs a model checkpoint to carry the optimizer state from")
        if self.branch_from is not None and (m.checkpoint is not None or m.preset is not None or m.config):
            problems.append("branch_from continues another run's checkpoint as it is: give no model preset, checkpoint "
                            "or config")
        if self.budget.tokens is not None and self.budget.steps is not None:
            problems.append("budget: give tokens or steps, not both")
        for key in ("tokens", "steps", "seq_len", "rows_per_step"):
            v = getattr(self.budget, key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                problems.append(f"budget.{key} must be a positive integer, got {v!r}")
        if self.schedule.kind is not None and self.schedule.kind not in SCHEDULE_KINDS:
            problems.append(f"schedule.kind must be one of {', '.join(SCHEDULE_KINDS)}, got {self.schedule.kind!r}")
        if self.builder == "stages" and not self.data.stages and self.phase not in ("pretraining", "lc-32k", "lc-64k"):
            problems.append(f"data: the 'stages' builder needs data.stages for phase '{self.phase}'")
        if self.trainer in ("sft", "dpo") and self.model.checkpoint is None:
            problems.append(f"trainer '{self.trainer}' fine-tunes a checkpoint: give model.checkpoint")
        if self.trainer in ("sft", "dpo") and self.branch_from is not None:
            problems.append(f"branch_from continues a pretraining-loop run; trainer '{self.trainer}' resumes with resume")
        if problems:
            raise SpecError("bad run spec: " + "; ".join(problems))

    # -- YAML ------------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Any, where: str = "run spec") -> "RunSpec":
        """Build a spec from plain data (a YAML file's), naming any unknown, missing or mistyped field."""
        if not isinstance(raw, dict):
            raise SpecError(f"{where}: expected a mapping, got {type(raw).__name__}")
        try:
            return _ADAPTER.validate_python(raw)
        except ValidationError as e:
            # A rule between fields (__post_init__) already says what to write instead: raise it as it is.
            own = [x["ctx"]["error"] for x in e.errors() if isinstance(x.get("ctx", {}).get("error"), SpecError)]
            if own:
                raise own[0] from None
            raise SpecError(f"{where}: " + "; ".join(problems(e))) from None

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml())
        return path

    @classmethod
    def load(cls, path: str | Path) -> "RunSpec":
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text())
        except OSError as e:
            raise SpecError(f"cannot read run spec {path}: {e.strerror or e}") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise SpecError(f"run spec {path} is not valid YAML{where}: {getattr(e, 'problem', None) or e}") from None
        return cls.from_dict(raw, where=f"run spec {path.name}")

    # -- where it writes -------------------------------------------------------------------------------------------
    @property
    def builder(self) -> str:
        """The data builder this run reads (the spec's, else its trainer's default)."""
        return self.data.builder or DEFAULT_BUILDERS.get(self.trainer, "stages")

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.chapter / self.name

    @property
    def ref(self) -> str:
        """How later specs name this run's final checkpoint."""
        return f"chapter:{self.chapter}/{self.name}"


_ADAPTER = TypeAdapter(RunSpec)
