"""The SmolLM3 recipe as data: the schema of the transcription and its loader.

Architecture, optimizer, schedules, the five data stages and their mixtures are transcribed from the
released nanotron configs into ``smollm3.yaml`` beside this module; it is read and validated here (a
malformed entry fails with a message naming it). The library never reads the reference configs; only
the tests do (to check this transcription).

    r = load_recipe()
    r.stage("decay").category_shares()     # {'web': ..., 'multilingual-web': ..., ...}
    r.pretraining_step_shares()            # {'stable': 0.731, 'stable-2': 0.158, 'decay': 0.111}
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ConfigDict, TypeAdapter, ValidationError

from smolbook.errors import SmolbookError
from smolbook.recipe.facts import config_facts
from smolbook.recipe.units import SUFFIXES
from smolbook.validation import problems

RECIPE_FILE = Path(__file__).with_name("smollm3.yaml")
CATEGORIES = ("web", "multilingual-web", "code", "math", "reasoning")
# How the blog splits a stage's mixture; reasoning data is counted by its `counts_as`.
BLOG_BUCKETS = ("web", "code", "math")
COUNTS_AS = ("math", "code", "general")
HUB_ID_SOURCES = ("config-comment", "inferred", "unknown")
LEDGER_KINDS = ("compared", "blog-only", "config-only", "config-internal")
# Path components that name a storage format, not a dataset (a quirk of one read path).
STORAGE_WORDS = ("tokenized", "standard")


class RecipeError(SmolbookError, ValueError):
    """A malformed recipe file or a request for something the recipe does not hold."""


# ----------------------------------------------------------------------------- the facts
@dataclass(frozen=True)
class DatasetEntry:
    """One dataset of one stage's mixture."""

    name: str                      # last path component of the config's dataset_read_path entry
    weight: float                  # exactly as in the config (not normalised)
    hub_id: str | None
    subset: str | None
    category: str                  # one of CATEGORIES
    text_field: str
    hub_id_source: str             # config-comment | inferred | unknown
    counts_as: str | None = None   # reasoning data only: math | code | general
    config_comment_subset: str | None = None  # where the config comment names another subset
    note: str = ""

    @property
    def bucket(self) -> str:
        """The blog's bucket: web (incl. multilingual), code, math, or 'other' (general reasoning)."""
        if self.category in ("web", "multilingual-web"):
            return "web"
        if self.category == "reasoning":
            return self.counts_as if self.counts_as in BLOG_BUCKETS else "other"
        return self.category


@dataclass(frozen=True)
class ModelSize:
    """A decoder's sizes: the one field list the recipe's architecture and every scale's model share
    (:class:`smolbook.scales.ModelShape` adds what a scale derives from the recipe)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int


@dataclass(frozen=True)
class Architecture(ModelSize):
    config_file: str
    tie_word_embeddings: bool
    no_rope_layer: int
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    hidden_act: str
    attention_bias: bool
    init_std: float
    use_doc_masking: bool
    z_loss_enabled: bool
    dtype: str
    tokenizer: str

    def parameter_count(self) -> int:
        """Parameters of this decoder (Llama-style blocks, tied embeddings, no biases)."""
        h, kv = self.hidden_size, self.num_key_value_heads * (self.hidden_size // self.num_attention_heads)
        attn = 2 * h * h + 2 * h * kv
        mlp = 3 * h * self.intermediate_size
        per_layer = attn + mlp + 2 * h          # + two RMSNorm weights
        emb = self.vocab_size * h * (1 if self.tie_word_embeddings else 2)
        return emb + self.num_hidden_layers * per_layer + h   # + final norm


@dataclass(frozen=True)
class Optimizer:
    config_file: str
    name: str
    adam_beta1: float
    adam_beta2: float
    adam_eps: float
    weight_decay: float
    weight_decay_exclude_named_params: tuple[str, ...]
    clip_grad: float
    accumulate_grad_in_fp32: bool
    zero_stage: int

    @property
    def embedding_weight_decay(self) -> bool:
        """Whether the token embedding is decayed (False when an exclude pattern matches it)."""
        return not any(re.fullmatch(p, "model.token_position_embeddings.pp_block.token_embedding.weight")
                       for p in self.weight_decay_exclude_named_params)


@dataclass(frozen=True)
class Schedule:
    """nanotron's learning_rate_scheduler block (steps are nanotron's)."""

    learning_rate: float
    lr_warmup_steps: int
    lr_warmup_style: str
    lr_decay_starting_step: int
    lr_decay_steps: int
    lr_decay_style: str
    min_decay_lr: float
    train_steps: int

    @property
    def decay_fraction(self) -> float:
        return self.lr_decay_steps / self.train_steps

    def schedule_kwargs(self) -> dict:
        """Keyword arguments of :func:`smolbook.schedules.lr_multiplier` replaying this schedule."""
        return dict(warmup_steps=self.lr_warmup_steps, total_steps=self.train_steps,
                    decay_start=self.lr_decay_starting_step, decay_steps=self.lr_decay_steps,
                    style=self.lr_decay_style)

    def describe(self) -> str:
        return (f"peak {self.learning_rate:g}, {self.lr_warmup_style} warm-up {self.lr_warmup_steps:,} steps, "
                f"{self.lr_decay_style} decay from step {self.lr_decay_starting_step:,} over "
                f"{self.lr_decay_steps:,} steps to {self.min_decay_lr:g} ({self.train_steps:,} steps)")


@dataclass(frozen=True)
class Run:
    """One training run (one config lineage): batch, parallelism and schedule."""

    name: str
    config_file: str
    sequence_length: int
    rope_theta: float
    micro_batch_size: int
    batch_accumulation_per_replica: int
    dp: int
    tp: int
    pp: int
    context_parallel_size: int
    schedule: Schedule
    load_optimizer: bool        # checkpoints.load_optimizer: carry the optimizer state into this run (false: restart it)

    @property
    def sequences_per_step(self) -> int:
        return self.micro_batch_size * self.dp * self.batch_accumulation_per_replica

    @property
    def tokens_per_step(self) -> int:
        """Global batch in tokens: micro_batch x dp x grad_accum x seq_len."""
        return self.sequences_per_step * self.sequence_length

    @property
    def gpus(self) -> int:
        return self.dp * self.tp * self.pp * self.context_parallel_size

    @property
    def tokens(self) -> int:
        return self.schedule.train_steps * self.tokens_per_step


@dataclass(frozen=True)
class Stage:
    """One data stage: its run, its steps and its mixture."""

    name: str
    config_name: str
    config_file: str
    run: Run
    start_step: int        # nanotron's start_training_step (1-based)
    end_step: int          # last step of the stage (inclusive)
    datasets: tuple[DatasetEntry, ...]

    @property
    def seq_len(self) -> int:
        return self.run.sequence_length

    @property
    def rope_theta(self) -> float:
        return self.run.rope_theta

    @property
    def learning_rate(self) -> float:
        return self.run.schedule.learning_rate

    @property
    def weight_sum(self) -> float:
        return math.fsum(d.weight for d in self.datasets)

    @property
    def steps(self) -> int:
        return self.end_step - self.start_step + 1

    @property
    def start_tokens(self) -> int:
        """Tokens seen by the run before this stage starts."""
        return (self.start_step - 1) * self.run.tokens_per_step

    @property
    def end_tokens(self) -> int:
        return self.end_step * self.run.tokens_per_step

    @property
    def tokens(self) -> int:
        return self.steps * self.run.tokens_per_step

    def probabilities(self) -> dict[str, float]:
        """Sampling probability of each dataset: the weights normalised by their sum."""
        total = self.weight_sum
        return {d.name: d.weight / total for d in self.datasets}

    def category_shares(self) -> dict[str, float]:
        """Share of each category in CATEGORIES, normalised by the weight sum."""
        total = self.weight_sum
        return {c: math.fsum(d.weight for d in self.datasets if d.category == c) / total for c in CATEGORIES}

    def bucket_shares(self) -> dict[str, float]:
        """Shares in the blog's split: web (incl. multilingual), code, math, and 'other' (the residual:
        general reasoning/instruction data the blog's three buckets do not name)."""
        total = self.weight_sum
        return {b: math.fsum(d.weight for d in self.datasets if d.bucket == b) / total
                for b in (*BLOG_BUCKETS, "other")}

    def dataset(self, name: str) -> DatasetEntry:
        for d in self.datasets:
            if d.name == name:
                return d
        raise RecipeError(f"stage '{self.name}' has no dataset '{name}'")


@dataclass(frozen=True)
class BlogFact:
    group: str
    topic: str
    says: str
    stated: str
    value: Any                 # parsed from `stated`
    tolerance: float           # 0 for exact settings
    why: str
    config: str | None         # key into config_facts(), None where the configs are silent
    exact: bool


@dataclass(frozen=True)
class Recipe:
    """The whole transcription: use :func:`load_recipe`."""

    architecture: Architecture
    optimizer: Optimizer
    runs: dict[str, Run]
    stages: tuple[Stage, ...]
    blog_facts: tuple[BlogFact, ...]
    blog_source: str
    config_only: tuple[tuple[str, str], ...]
    source_file: str = field(default=str(RECIPE_FILE))

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def stage(self, name: str) -> Stage:
        """The stage called ``name``; a clear error listing the valid names otherwise."""
        for s in self.stages:
            if s.name == name:
                return s
        raise RecipeError(f"unknown stage '{name}': choose one of {', '.join(self.stage_names)}")

    def all_datasets(self) -> dict[str, DatasetEntry]:
        """Every dataset name over all stages (the entry of its first occurrence)."""
        out: dict[str, DatasetEntry] = {}
        for s in self.stages:
            for d in s.datasets:
                out.setdefault(d.name, d)
        return out

    @property
    def pretraining_stages(self) -> list[Stage]:
        return [s for s in self.stages if s.run.name == "pretraining"]

    def pretraining_step_shares(self) -> dict[str, float]:
        """Share of the pretraining run's steps in each of its stages, as the released configs ran them
        (stable-2 from step 3,450,001, decay from 4,198,001 of 4,720,000: 0.731 / 0.158 / 0.111).
        Every scale splits its pretraining at these shares; the blog's 8 : 2 : 1.1 is a ledger row."""
        total = self.runs["pretraining"].schedule.train_steps
        return {s.name: s.steps / total for s in self.pretraining_stages}

    def lr_decay_stage(self) -> str:
        """The pretraining stage whose first step is the learning-rate decay's first step (the configs start
        the decay with the decay stage: ``lr_decay_starting_step`` = its ``start_training_step``)."""
        sch = self.runs["pretraining"].schedule
        for s in self.pretraining_stages:
            if s.start_step == sch.lr_decay_starting_step:
                return s.name
        raise RecipeError(f"no pretraining stage starts at lr_decay_starting_step {sch.lr_decay_starting_step}")


# ----------------------------------------------------------------------------- loading
def _fail(where: str, msg: str) -> RecipeError:
    return RecipeError(f"{where}: {msg}")   # load_recipe_file prefixes the file name


# The file's entries are these dataclasses, validated by pydantic from their annotations (missing, unknown and
# mistyped fields); the rules between fields and entries are _load's.
for _cls in (DatasetEntry, Architecture, Optimizer, Schedule, Run):
    _cls.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]


def _entry(where: str, raw: Any, cls: type, **given: Any) -> Any:
    """``cls`` from the file's mapping ``raw`` and the fields the loader fills in itself (``given``)."""
    if not isinstance(raw, dict):
        raise _fail(where, "expected a mapping")
    try:
        return TypeAdapter(cls).validate_python({**raw, **given})
    except ValidationError as e:
        raise _fail(where, "; ".join(problems(e))) from None


def _parse_stated(where: str, stated: Any, exact: bool) -> Any:
    """'11.2T' -> 1.12e13, '85%' -> 0.85, '4' -> 4.0, 'true' -> True, 'linear' -> 'linear'."""
    s = str(stated).strip()
    if s in ("true", "false"):
        return s == "true"
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kMBT%]?)", s)
    if m:
        return float(m.group(1)) * SUFFIXES[m.group(2)]
    if not exact:
        raise _fail(where, f"stated value '{s}' is not a number (write e.g. 11.2T, 50B, 85%)")
    return s


def _build_dataset(where: str, name: str, weight: Any, catalog: dict) -> DatasetEntry:
    if name not in catalog:
        raise _fail(where, f"dataset '{name}' is not in the datasets catalog")
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
        raise _fail(where, f"dataset '{name}': weight must be a number >= 0, got {weight!r}")
    entry = _entry(f"datasets.{name}", catalog[name], DatasetEntry, name=name, weight=float(weight))
    if entry.category not in CATEGORIES:
        raise _fail(f"datasets.{name}", f"category '{entry.category}' is not one of {', '.join(CATEGORIES)}")
    if entry.hub_id_source not in HUB_ID_SOURCES:
        raise _fail(f"datasets.{name}", f"hub_id_source must be one of {', '.join(HUB_ID_SOURCES)}")
    if (entry.hub_id is None) != (entry.hub_id_source == "unknown"):
        raise _fail(f"datasets.{name}", "hub_id is null exactly when hub_id_source is 'unknown'")
    if (entry.category == "reasoning") != (entry.counts_as is not None) or \
            (entry.counts_as is not None and entry.counts_as not in COUNTS_AS):
        raise _fail(f"datasets.{name}", f"reasoning data (and only it) needs counts_as in {', '.join(COUNTS_AS)}")
    if not isinstance(entry.text_field, str) or not entry.text_field:
        raise _fail(f"datasets.{name}", "text_field must be a column name")
    return entry


def load_recipe_file(path: str | Path) -> Recipe:
    """Load and validate a recipe file (see ``recipe_smollm3.yaml`` for its layout)."""
    try:
        return _load(path)
    except RecipeError as e:
        raise RecipeError(f"recipe file {Path(path).name}, {e}") from None


def _load(path: str | Path) -> Recipe:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise RecipeError(f"cannot read it as YAML ({e})") from None
    if not isinstance(raw, dict):
        raise RecipeError("expected a mapping at the top")
    need = ("architecture", "optimizer", "runs", "stages", "datasets", "mixtures", "blog", "config_only")
    missing = [k for k in need if k not in raw]
    if missing:
        raise _fail("top level", f"missing section(s): {', '.join(missing)}")

    arch = _entry("architecture", raw["architecture"], Architecture)
    opt = _entry("optimizer", raw["optimizer"], Optimizer)

    runs: dict[str, Run] = {}
    if not isinstance(raw["runs"], dict) or not raw["runs"]:
        raise _fail("runs", "expected a mapping of run name -> run")
    for rname, rraw in raw["runs"].items():
        where = f"runs.{rname}"
        if not isinstance(rraw, dict):
            raise _fail(where, "expected a mapping")
        par = rraw.get("parallelism")
        pkw = {k: par.get(k) if isinstance(par, dict) else None for k in ("dp", "tp", "pp", "context_parallel_size")}
        if not isinstance(par, dict) or set(par) != set(pkw):
            raise _fail(where, f"parallelism must hold exactly {', '.join(pkw)}")
        run = _entry(where, {k: v for k, v in rraw.items() if k != "parallelism"}, Run, name=rname, **pkw)
        sch = run.schedule
        if min(run.sequence_length, run.micro_batch_size, run.batch_accumulation_per_replica, run.dp, run.tp,
               run.pp, run.context_parallel_size, sch.train_steps) < 1:
            raise _fail(where, "sizes and step counts must be >= 1")
        if sch.lr_decay_style not in ("linear", "cosine") or sch.lr_warmup_style != "linear":
            raise _fail(where, "schedule: warm-up must be linear and decay linear or cosine")
        if not 0 <= sch.lr_warmup_steps <= sch.lr_decay_starting_step <= sch.train_steps:
            raise _fail(where, "schedule: need 0 <= lr_warmup_steps <= lr_decay_starting_step <= train_steps")
        runs[rname] = run

    catalog = raw["datasets"]
    mixtures = raw["mixtures"]
    if not isinstance(catalog, dict) or not isinstance(mixtures, dict):
        raise _fail("datasets/mixtures", "expected mappings")
    if not isinstance(raw["stages"], list) or not raw["stages"]:
        raise _fail("stages", "expected a list of stages")
    stage_raws = []
    for i, sraw in enumerate(raw["stages"]):
        where = f"stages[{i}]"
        if not isinstance(sraw, dict) or set(sraw) != {"name", "config_name", "config_file", "run", "start_training_step"}:
            raise _fail(where, "needs exactly name, config_name, config_file, run, start_training_step")
        if sraw["run"] not in runs:
            raise _fail(where, f"run '{sraw['run']}' is not one of {', '.join(runs)}")
        if not isinstance(sraw["start_training_step"], int) or sraw["start_training_step"] < 1:
            raise _fail(where, "start_training_step must be an integer >= 1")
        stage_raws.append(sraw)
    names = [s["name"] for s in stage_raws]
    if len(set(names)) != len(names):
        raise _fail("stages", "stage names must be unique")
    if set(mixtures) != set(names):
        raise _fail("mixtures", f"need exactly one mixture per stage ({', '.join(names)}), got {', '.join(mixtures)}")

    stages = []
    for i, sraw in enumerate(stage_raws):
        run = runs[sraw["run"]]
        later = [s for s in stage_raws[i + 1:] if s["run"] == sraw["run"]]
        end = later[0]["start_training_step"] - 1 if later else run.schedule.train_steps
        if end < sraw["start_training_step"]:
            raise _fail(f"stages[{i}]", "stages of one run must start in increasing step order")
        mix = mixtures[sraw["name"]]
        if not isinstance(mix, list) or not mix:
            raise _fail(f"mixtures.{sraw['name']}", "expected a non-empty list of [name, weight]")
        entries = []
        for j, item in enumerate(mix):
            where = f"mixtures.{sraw['name']}[{j}]"
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
                raise _fail(where, f"expected [name, weight], got {item!r}")
            entries.append(_build_dataset(where, item[0], item[1], catalog))
        if len({d.name for d in entries}) != len(entries):
            raise _fail(f"mixtures.{sraw['name']}", "a dataset appears twice")
        stages.append(Stage(name=sraw["name"], config_name=str(sraw["config_name"]), config_file=sraw["config_file"],
                            run=run, start_step=sraw["start_training_step"], end_step=end, datasets=tuple(entries)))
    unused = set(catalog) - {d.name for s in stages for d in s.datasets}
    if unused:
        raise _fail("datasets", f"catalog entries used by no stage: {', '.join(sorted(unused))}")

    blog = raw["blog"]
    if not isinstance(blog, dict) or not isinstance(blog.get("facts"), list) or not blog.get("source"):
        raise _fail("blog", "needs a source and a list of facts")
    facts = []
    for i, fraw in enumerate(blog["facts"]):
        where = f"blog.facts[{i}]"
        if not isinstance(fraw, dict):
            raise _fail(where, "expected a mapping")
        allowed, needed = {"group", "topic", "says", "stated", "config", "tolerance", "why", "exact"}, \
            {"group", "topic", "says", "stated", "config"}
        if set(fraw) - allowed or needed - set(fraw):
            raise _fail(where, f"needs {', '.join(sorted(needed))} (and optionally exact, or a tolerance and why); "
                               f"got {', '.join(sorted(fraw))}")
        fkw = fraw
        exact = bool(fkw.get("exact", False))
        if exact == ("tolerance" in fkw):
            raise _fail(where, "give either exact: true or a tolerance (with why)")
        value = _parse_stated(where, fkw["stated"], exact)
        tol = 0.0 if exact else _parse_stated(where, fkw["tolerance"], False)
        facts.append(BlogFact(group=str(fkw["group"]), topic=str(fkw["topic"]), says=str(fkw["says"]),
                              stated=str(fkw["stated"]), value=value, tolerance=tol, why=str(fkw.get("why", "")),
                              config=fkw["config"], exact=exact))
    conly = []
    for i, craw in enumerate(raw["config_only"] or []):
        if not isinstance(craw, dict) or set(craw) != {"topic", "config"}:
            raise _fail(f"config_only[{i}]", "needs exactly topic and config")
        conly.append((str(craw["topic"]), str(craw["config"])))

    recipe = Recipe(architecture=arch, optimizer=opt, runs=runs, stages=tuple(stages), blog_facts=tuple(facts),
                    blog_source=str(blog["source"]), config_only=tuple(conly), source_file=str(path))
    known = config_facts(recipe)
    for f in facts:
        if f.config is not None and f.config not in known:
            raise _fail("blog.facts", f"'{f.topic}' compares with unknown config fact '{f.config}'")
    for topic, key in conly:
        if key not in known:
            raise _fail("config_only", f"'{topic}' names unknown config fact '{key}'")
    return recipe


@lru_cache(maxsize=1)
def load_recipe() -> Recipe:
    """The SmolLM3 recipe (cached): facts transcribed from the released nanotron configs."""
    return load_recipe_file(RECIPE_FILE)


