"""The SmolLM3 recipe as data: architecture, optimizer, schedules, the five data stages and their
mixtures, transcribed from the released nanotron configs into ``recipe_smollm3.yaml``.

The file is read and validated here (a malformed entry fails with a message naming it). Beside the
config facts it holds a small table of what the SmolLM3 blog says; :func:`ledger` compares the two
in code, so every agreement or disagreement shown in the book is computed, not typed in.

    r = load_recipe()
    r.stage("decay").category_shares()     # {'web': ..., 'multilingual-web': ..., ...}
    ledger()                               # rows: topic, blog, config, config_file, agrees

The library never reads the reference configs; only the tests do (to check this transcription).
"""
from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from smolbook.errors import SmolbookError

RECIPE_FILE = Path(__file__).with_name("recipe_smollm3.yaml")
CATEGORIES = ("web", "multilingual-web", "code", "math", "reasoning")
# How the blog splits a stage's mixture; reasoning data is counted by its `counts_as`.
BLOG_BUCKETS = ("web", "code", "math")
COUNTS_AS = ("math", "code", "general")
HUB_ID_SOURCES = ("config-comment", "inferred", "unknown")
LEDGER_KINDS = ("compared", "blog-only", "config-only", "config-internal")
# Path components that name a storage format, not a dataset (a quirk of one read path).
_STORAGE_WORDS = ("tokenized", "standard")
_SUFFIX = {"": 1.0, "k": 1e3, "M": 1e6, "B": 1e9, "T": 1e12, "%": 0.01}


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
class Architecture:
    config_file: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int
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
class ConfigFact:
    value: Any
    text: str
    config_file: str


@dataclass(frozen=True)
class LedgerRow:
    topic: str
    blog: str                  # the blog's number or setting as it writes it ('-' for config-internal rows)
    config: str                # the configs' value, with how it was computed
    config_file: str
    agrees: bool | None        # None where there is nothing to compare (blog-only, config-only)
    kind: str                  # compared | blog-only | config-only | config-internal
    group: str = ""
    blog_says: str = ""        # paraphrase of the blog's sentence
    tolerance: str = ""        # how far the config may lie from the blog and agree, and why


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


# ----------------------------------------------------------------------------- loading
def _fail(where: str, msg: str) -> RecipeError:
    return RecipeError(f"{where}: {msg}")   # load_recipe_file prefixes the file name


def _fields(where: str, raw: Any, cls: type, *, skip: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(raw, dict):
        raise _fail(where, "expected a mapping")
    expected = {f for f in cls.__dataclass_fields__} - set(skip)
    missing = expected - set(optional) - raw.keys()
    unknown = raw.keys() - expected
    if missing:
        raise _fail(where, f"missing field(s): {', '.join(sorted(missing))}")
    if unknown:
        raise _fail(where, f"unknown field(s): {', '.join(sorted(unknown))}")
    return dict(raw)


def _typed(where: str, kw: dict, cls: type) -> Any:
    """Build ``cls`` from ``kw`` checking each value against the field's annotation."""
    checks = {"int": int, "float": (int, float), "bool": bool, "str": str}
    for name, f in cls.__dataclass_fields__.items():
        if name not in kw:
            continue
        ann = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        want = checks.get(ann)
        v = kw[name]
        if want is not None and (not isinstance(v, want) or (want is int and isinstance(v, bool))):
            raise _fail(where, f"field '{name}' must be {ann}, got {v!r}")
        if ann == "float":
            kw[name] = float(v)
    return cls(**kw)


def _parse_stated(where: str, stated: Any, exact: bool) -> Any:
    """'11.2T' -> 1.12e13, '85%' -> 0.85, '4' -> 4.0, 'true' -> True, 'linear' -> 'linear'."""
    s = str(stated).strip()
    if s in ("true", "false"):
        return s == "true"
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([kMBT%]?)", s)
    if m:
        return float(m.group(1)) * _SUFFIX[m.group(2)]
    if not exact:
        raise _fail(where, f"stated value '{s}' is not a number (write e.g. 11.2T, 50B, 85%)")
    return s


def _build_dataset(where: str, name: str, weight: Any, catalog: dict) -> DatasetEntry:
    if name not in catalog:
        raise _fail(where, f"dataset '{name}' is not in the datasets catalog")
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
        raise _fail(where, f"dataset '{name}': weight must be a number >= 0, got {weight!r}")
    meta = _fields(f"datasets.{name}", catalog[name], DatasetEntry, skip=("name", "weight"),
                   optional=("counts_as", "config_comment_subset", "note"))
    entry = DatasetEntry(name=name, weight=float(weight), **meta)
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

    arch = _typed("architecture", _fields("architecture", raw["architecture"], Architecture), Architecture)
    okw = _fields("optimizer", raw["optimizer"], Optimizer)
    if not isinstance(okw["weight_decay_exclude_named_params"], list):
        raise _fail("optimizer", "weight_decay_exclude_named_params must be a list of patterns")
    okw["weight_decay_exclude_named_params"] = tuple(okw["weight_decay_exclude_named_params"])
    opt = _typed("optimizer", okw, Optimizer)

    runs: dict[str, Run] = {}
    if not isinstance(raw["runs"], dict) or not raw["runs"]:
        raise _fail("runs", "expected a mapping of run name -> run")
    for rname, rraw in raw["runs"].items():
        where = f"runs.{rname}"
        if not isinstance(rraw, dict):
            raise _fail(where, "expected a mapping")
        par = rraw.get("parallelism")
        rkw = _fields(where, {k: v for k, v in rraw.items() if k != "parallelism"}, Run,
                      skip=("name", "dp", "tp", "pp", "context_parallel_size"))
        rkw["schedule"] = _typed(f"{where}.schedule", _fields(f"{where}.schedule", rkw["schedule"], Schedule), Schedule)
        pkw = {k: par.get(k) if isinstance(par, dict) else None for k in ("dp", "tp", "pp", "context_parallel_size")}
        if not isinstance(par, dict) or set(par) != set(pkw):
            raise _fail(where, f"parallelism must hold exactly {', '.join(pkw)}")
        run = _typed(where, dict(rkw, name=rname, **pkw), Run)
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
        fkw = _fields(where, fraw, BlogFact, skip=("value",), optional=("tolerance", "why", "exact"))
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


# ----------------------------------------------------------------------------- formatting
def human_tokens(n: float) -> str:
    """1.1136e13 -> '11.14T', 4.72e10 -> '47.19B'."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{suffix}"
    return f"{n:g}"


def _pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%"


# ----------------------------------------------------------------------------- config facts + ledger
def config_facts(recipe: Recipe | None = None) -> dict[str, ConfigFact]:
    """Every config-side quantity the ledger can compare, computed from the transcribed facts."""
    r = recipe or load_recipe()
    a, o, pre = r.architecture, r.optimizer, r.runs["pretraining"]
    sch = pre.schedule
    F: dict[str, ConfigFact] = {}

    def put(key: str, value: Any, text: str, config_file: str) -> None:
        F[key] = ConfigFact(value, text, config_file)

    n = a.parameter_count()
    put("parameters", n, f"{n:,} ({n / 1e9:.2f}B, computed from the architecture)", a.config_file)
    end = r.pretraining_stages[-1]
    lc_tokens = sum(run.tokens for name, run in r.runs.items() if name != "pretraining")
    put("pretraining.tokens", end.end_tokens,
        f"{human_tokens(end.end_tokens)} ({sch.train_steps:,} steps x {pre.tokens_per_step:,}); "
        f"{human_tokens(end.end_tokens + lc_tokens)} with both long-context stages", end.config_file)
    for s in r.stages:
        put(f"{s.name}.start_tokens", s.start_tokens,
            f"{human_tokens(s.start_tokens)} ({s.start_step - 1:,} steps x {s.run.tokens_per_step:,} before it)",
            s.config_file)
        put(f"{s.name}.end_tokens", s.end_tokens,
            f"{human_tokens(s.end_tokens)} ({s.end_step:,} steps x {s.run.tokens_per_step:,})", s.config_file)
        put(f"{s.name}.weight_sum", s.weight_sum, f"{s.weight_sum:.6g} over {len(s.datasets)} datasets", s.config_file)
        shares, cats = s.bucket_shares(), s.category_shares()
        for b, v in shares.items():
            put(f"{s.name}.share.{b}", v, _pct(v, 2), s.config_file)
        put(f"{s.name}.share.multilingual", cats["multilingual-web"], _pct(cats["multilingual-web"], 2), s.config_file)
        put(f"{s.name}.share.reasoning", cats["reasoning"],
            f"{_pct(cats['reasoning'])} ({sum(d.category == 'reasoning' for d in s.datasets)} datasets)", s.config_file)
    for name, run in r.runs.items():
        rs = run.schedule
        put(f"{name}.rope_theta", run.rope_theta, f"{run.rope_theta:,.0f}", run.config_file)
        put(f"{name}.tokens", run.tokens,
            f"{human_tokens(run.tokens)} ({rs.train_steps:,} steps x {run.tokens_per_step:,})", run.config_file)
        put(f"{name}.seq_len", run.sequence_length, f"{run.sequence_length:,}", run.config_file)
        put(f"{name}.learning_rate", rs.learning_rate, f"{rs.learning_rate:g}", run.config_file)
        put(f"{name}.schedule", rs.lr_decay_style, rs.describe(), run.config_file)
        put(f"{name}.global_batch_tokens", run.tokens_per_step,
            f"{run.tokens_per_step:,} ({run.micro_batch_size} x dp {run.dp} x accum "
            f"{run.batch_accumulation_per_replica} x {run.sequence_length:,})", run.config_file)
        put(f"{name}.gpus", run.gpus, f"{run.gpus} (tp {run.tp} x pp {run.pp} x cp {run.context_parallel_size} x dp {run.dp})",
            run.config_file)
    # Languages of the multilingual web in the last pretraining stage vs each long-context stage.
    def langs(stage: Stage) -> set[str]:
        return {d.subset for d in stage.datasets if d.category == "multilingual-web" and d.subset}
    for s in r.stages:
        if s.run.name != "pretraining":
            dropped, added = sorted(langs(end) - langs(s)), sorted(langs(s) - langs(end))
            put(f"{s.name}.language_change", (tuple(dropped), tuple(added)),
                f"vs the decay stage: dropped {', '.join(dropped) or 'none'}; added {', '.join(added) or 'none'}",
                s.config_file)
    for k in ("num_key_value_heads", "no_rope_layer", "use_doc_masking", "rope_theta", "init_std", "z_loss_enabled",
              "tokenizer"):
        v = getattr(a, k)
        text = f"{v:,.0f}" if isinstance(v, float) and v > 1 else str(v).lower() if isinstance(v, bool) else str(v)
        put(k, v, text, a.config_file)
    put("embedding_weight_decay", o.embedding_weight_decay,
        f"{str(o.embedding_weight_decay).lower()} (weight_decay_exclude_named_params: "
        f"{', '.join(o.weight_decay_exclude_named_params)})", o.config_file)
    for k in ("adam_beta1", "adam_beta2", "adam_eps", "weight_decay", "clip_grad"):
        put(k, getattr(o, k), str(getattr(o, k)), o.config_file)
    put("learning_rate", sch.learning_rate, f"{sch.learning_rate:g}", pre.config_file)
    put("lr_warmup_steps", sch.lr_warmup_steps, f"{sch.lr_warmup_steps:,}", pre.config_file)
    put("lr_decay_style", sch.lr_decay_style, sch.lr_decay_style, pre.config_file)
    put("min_decay_lr", sch.min_decay_lr, f"{sch.min_decay_lr:g}", pre.config_file)
    put("decay_fraction", sch.decay_fraction,
        f"{_pct(sch.decay_fraction)} ({sch.lr_decay_steps:,} / {sch.train_steps:,} steps, "
        f"{human_tokens(sch.lr_decay_steps * pre.tokens_per_step)} tokens)", pre.config_file)
    put("global_batch_tokens", pre.tokens_per_step, F["pretraining.global_batch_tokens"].text, pre.config_file)
    put("sequence_length", pre.sequence_length, f"{pre.sequence_length:,}", pre.config_file)
    put("gpus", pre.gpus, F["pretraining.gpus"].text, pre.config_file)
    return F


def _agrees(fact: BlogFact, value: Any) -> bool:
    if isinstance(fact.value, bool) or isinstance(value, bool):
        return isinstance(fact.value, bool) and isinstance(value, bool) and fact.value == value
    if isinstance(fact.value, float) and isinstance(value, (int, float)):
        if fact.exact:
            return math.isclose(fact.value, value, rel_tol=1e-12, abs_tol=1e-15)
        return abs(value - fact.value) <= fact.tolerance * (1 + 1e-9)
    return str(fact.value) == str(value)



def _stated_like(x: float, stated: str) -> str:
    """Write ``x`` with the suffix of ``stated`` (0.005 with '85%' -> '0.5%')."""
    suffix = stated.strip()[-1] if stated.strip()[-1:] in _SUFFIX and stated.strip()[-1:] else ""
    return f"{x / _SUFFIX[suffix]:g}{suffix}"


def _internal_rows(r: Recipe) -> list[LedgerRow]:
    """Places where the configs disagree with themselves, found from the transcribed data."""
    rows: list[LedgerRow] = []
    seen: set[str] = set()
    for s in r.stages:
        for d in s.datasets:
            if d.config_comment_subset and d.config_comment_subset != d.subset and d.name not in seen:
                seen.add(d.name)
                rows.append(LedgerRow(
                    topic=f"Hub link of {d.name}", blog="-",
                    config=f"folder {d.name} holds {d.subset}; its comment links {d.hub_id}/viewer/{d.config_comment_subset}",
                    config_file=s.config_file, agrees=False, kind="config-internal", group="datasets"))
            if d.name in _STORAGE_WORDS and d.name not in seen:
                seen.add(d.name)
                rows.append(LedgerRow(
                    topic=f"Read path of {d.hub_id} {d.subset}", blog="-",
                    config=f"dataset_read_path ends in '/{d.name}', a storage folder, not a dataset name",
                    config_file=s.config_file, agrees=False, kind="config-internal", group="datasets"))
    for s in r.stages:
        ok = abs(s.weight_sum - 1.0) <= 1e-4
        rows.append(LedgerRow(topic=f"Weights of '{s.name}' sum to 1", blog="-",
                              config=f"{s.weight_sum:.7g} ({len(s.datasets)} datasets; normalised when sampling)",
                              config_file=s.config_file, agrees=ok, kind="config-internal", group="mixtures"))
    # File names such as stage2_8T_9T.yaml label stage boundaries in tokens: compare with the steps.
    for s in r.pretraining_stages:
        labels = [int(x) for x in re.findall(r"_(\d+)T", s.config_file)]
        bounds = [s.start_tokens, s.end_tokens] if len(labels) == 2 else [s.end_tokens]
        for label, tokens, what in zip(labels, bounds, ("starts", "ends") if len(labels) == 2 else ("ends",)):
            rows.append(LedgerRow(
                topic=f"File name {s.config_file}: '{s.name}' {what} at {label}T", blog="-",
                config=f"{human_tokens(tokens)} from the stage's steps",
                config_file=s.config_file, agrees=abs(tokens - label * 1e12) <= 0.5e12,
                kind="config-internal", group="tokens"))
    return rows


def ledger(recipe: Recipe | None = None) -> list[LedgerRow]:
    """Blog vs released configs, row by row: what the blog says, what the configs give, whether they
    agree (within the blog's stated precision), then the settings only one side states, then the
    configs' own inconsistencies."""
    r = recipe or load_recipe()
    F = config_facts(r)
    rows = []
    for f in r.blog_facts:
        if f.config is None:
            rows.append(LedgerRow(topic=f.topic, blog=f.stated, config="not in the released configs",
                                  config_file="-", agrees=None, kind="blog-only", group=f.group, blog_says=f.says))
            continue
        c = F[f.config]
        tol = "exact setting" if f.exact else f"+-{_stated_like(f.tolerance, f.stated)} ({f.why})"
        rows.append(LedgerRow(topic=f.topic, blog=f.stated, config=c.text, config_file=c.config_file,
                              agrees=_agrees(f, c.value), kind="compared", group=f.group, blog_says=f.says,
                              tolerance=tol))
    for topic, key in r.config_only:
        c = F[key]
        rows.append(LedgerRow(topic=topic, blog="not stated", config=c.text, config_file=c.config_file,
                              agrees=None, kind="config-only", group="config-only"))
    return rows + _internal_rows(r)


# ----------------------------------------------------------------------------- tables
def facts_of(obj: Any) -> dict[str, str]:
    """A transcribed block (Architecture, Optimizer, ...) as field -> value text, for tables."""
    out = {}
    for k, v in vars(obj).items():
        if isinstance(v, tuple):
            v = ", ".join(map(str, v))
        elif isinstance(v, bool):
            v = str(v).lower()
        elif isinstance(v, float) and (abs(v) >= 1e4 or 0 < abs(v) < 1e-3):
            v = f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:g}"
        out[k] = str(v)
    return out


def stage_rows(recipe: Recipe | None = None) -> list[dict]:
    """One row per stage: where it sits in its run, its length, its mixture size and settings."""
    r = recipe or load_recipe()
    return [{"stage": s.name, "config_name": s.config_name, "config_file": s.config_file, "run": s.run.name,
             "steps": f"{s.start_step:,}-{s.end_step:,}", "start": human_tokens(s.start_tokens),
             "end": human_tokens(s.end_tokens), "tokens": human_tokens(s.tokens), "datasets": len(s.datasets),
             "weight_sum": round(s.weight_sum, 7), "seq_len": s.seq_len, "rope_theta": f"{s.rope_theta:,.0f}",
             "peak_lr": s.learning_rate} for s in r.stages]


def share_rows(recipe: Recipe | None = None) -> list[dict]:
    """Per stage and bucket: the share computed from the config weights beside the blog's figure.

    Web includes multilingual web; reasoning/instruction data is counted in the bucket of the
    subject it trains (``counts_as``: math or code); general reasoning data is the residual 'other'.
    """
    r = recipe or load_recipe()
    blog = {f.config: f for f in r.blog_facts if f.config and ".share." in f.config}
    rows = []
    for s in r.stages:
        shares = dict(s.bucket_shares(), multilingual=s.category_shares()["multilingual-web"])
        for b in ("web", "multilingual", "code", "math", "other"):
            f = blog.get(f"{s.name}.share.{b}")
            cfg = 100 * shares[b]
            rows.append({"stage": s.name, "bucket": b, "config_pct": round(cfg, 2),
                         "blog_pct": None if f is None else round(100 * f.value, 2),
                         "diff_pp": None if f is None else round(cfg - 100 * f.value, 2),
                         "agrees": None if f is None else _agrees(f, shares[b])})
    return rows


# ----------------------------------------------------------------------------- CLI
def mixture_rows(stage: Stage) -> list[dict]:
    """The rows ``smolbook recipe mixture --json`` prints for one stage."""
    return [{"name": d.name, "weight": d.weight, "hub_id": d.hub_id, "subset": d.subset, "category": d.category,
             "hub_id_source": d.hub_id_source, "text_field": d.text_field} for d in stage.datasets]


def _table(rows: list[list[str]], header: list[str], right: set[int] = frozenset()) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt_row = lambda row: "  ".join(str(x).rjust(w) if i in right else str(x).ljust(w)  # noqa: E731
                                    for i, (x, w) in enumerate(zip(row, widths))).rstrip()
    return "\n".join([fmt_row(header), fmt_row(["-" * w for w in widths])] + [fmt_row(r) for r in rows])


def format_summary(r: Recipe) -> str:
    """The readable summary ``smolbook recipe show`` prints."""
    a, o = r.architecture, r.optimizer
    out = ["SmolLM3 recipe (transcribed from the released nanotron configs)", ""]
    out += ["Architecture  (" + a.config_file + ")",
            f"  {a.num_hidden_layers} layers, hidden {a.hidden_size}, MLP {a.intermediate_size} ({a.hidden_act}), "
            f"vocab {a.vocab_size:,}, tied embeddings: {str(a.tie_word_embeddings).lower()}",
            f"  attention: {a.num_attention_heads} heads, {a.num_key_value_heads} KV heads (GQA), "
            f"NoPE every {a.no_rope_layer}th layer, RoPE theta {a.rope_theta:,.0f}, max positions {a.max_position_embeddings:,}",
            f"  RMSNorm eps {a.rms_norm_eps:g}, init std {a.init_std}, intra-document masking: "
            f"{str(a.use_doc_masking).lower()}, {a.dtype}, tokenizer {a.tokenizer}",
            f"  parameters: {a.parameter_count():,}", ""]
    out += ["Optimizer  (" + o.config_file + ")",
            f"  {o.name} beta1 {o.adam_beta1} beta2 {o.adam_beta2} eps {o.adam_eps:g}, weight decay {o.weight_decay} "
            f"(not on {', '.join(o.weight_decay_exclude_named_params)}), grad clip {o.clip_grad}", ""]
    out += ["Runs"]
    for name, run in r.runs.items():
        out += [f"  {name:<12} {run.config_file}",
                f"  {'':<12} seq {run.sequence_length:,}, RoPE theta {run.rope_theta:,.0f}, "
                f"{run.tokens_per_step:,} tokens/step, {run.gpus} GPUs, {human_tokens(run.tokens)} tokens",
                f"  {'':<12} {run.schedule.describe()}"]
    out += ["", "Stages  (shares normalised by each stage's weight sum; 'other' = general reasoning data)"]
    rows = []
    for s in r.stages:
        b, c = s.bucket_shares(), s.category_shares()
        rows.append([s.name, s.config_file, f"{s.start_step:,}-{s.end_step:,}",
                     f"{human_tokens(s.start_tokens)}-{human_tokens(s.end_tokens)}", human_tokens(s.tokens),
                     str(len(s.datasets)), f"{s.weight_sum:.5g}", _pct(b["web"]), _pct(c["multilingual-web"]),
                     _pct(b["code"]), _pct(b["math"]), _pct(b["other"])])
    out.append(_table(rows, ["stage", "config", "steps", "tokens", "length", "sets", "w-sum", "web", "(multil.)",
                             "code", "math", "other"], right={4, 5, 6, 7, 8, 9, 10, 11}))
    ds = r.all_datasets()
    by_src = {k: sum(d.hub_id_source == k for d in ds.values()) for k in HUB_ID_SOURCES}
    out += ["", f"Datasets: {len(ds)} distinct names over {len(r.stages)} stages; hub ids: "
            + ", ".join(f"{v} {k}" for k, v in by_src.items()),
            "Mixture of a stage: smolbook recipe mixture --stage NAME [--json];  blog vs configs: smolbook recipe ledger"]
    return "\n".join(out)


def _cmd_show(args: argparse.Namespace) -> int:
    print(format_summary(load_recipe()))
    return 0


def _cmd_mixture(args: argparse.Namespace) -> int:
    stage = load_recipe().stage(args.stage)
    rows = mixture_rows(stage)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    probs = stage.probabilities()
    table = [[d["name"], f"{d['weight']:g}", f"{100 * probs[d['name']]:.2f}%", d["category"],
              d["hub_id"] or "(unknown)", d["subset"] or "", d["hub_id_source"]] for d in rows]
    print(f"Stage '{stage.name}' ({stage.config_file}, '{stage.config_name}'): {len(rows)} datasets, "
          f"weights sum to {stage.weight_sum:.6g}; 'p' is the weight normalised by that sum")
    print(_table(table, ["name", "weight", "p", "category", "hub_id", "subset", "source"], right={1, 2}))
    return 0


def _cmd_ledger(args: argparse.Namespace) -> int:
    rows = ledger()
    if args.json:
        print(json.dumps([asdict(x) for x in rows], indent=1))
        return 0
    mark = {True: "agrees", False: "DIFFERS", None: "-"}
    cut = lambda text, n: text if len(text) <= n else text[:n - 1] + "~"  # noqa: E731
    print(_table([[x.kind, cut(x.topic, 44), cut(x.blog, 10), cut(x.config, 60), mark[x.agrees]] for x in rows],
                 ["kind", "topic", "blog", "config", "verdict"]))
    print("(full rows with the blog's wording, tolerances and config files: smolbook recipe ledger --json)")
    return 0


def register_cli(subparsers: Any) -> None:
    """``smolbook recipe show | mixture --stage S [--json] | ledger [--json]``."""
    p = subparsers.add_parser("recipe", help="the SmolLM3 recipe as data (transcribed from the released configs)")
    sub = p.add_subparsers(dest="recipe_command", required=True)
    show = sub.add_parser("show", help="a readable summary: architecture, optimizer, schedules, stages")
    show.set_defaults(func=_cmd_show)
    mix = sub.add_parser("mixture", help="the datasets and weights of one stage")
    mix.add_argument("--stage", required=True, help="stable, stable-2, decay, lc-32k or lc-64k")
    mix.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    mix.set_defaults(func=_cmd_mixture)
    led = sub.add_parser("ledger", help="where the SmolLM3 blog and the released configs agree or differ")
    led.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    led.set_defaults(func=_cmd_ledger)
