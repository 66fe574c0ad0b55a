"""The scales table: one place that sizes every notebook (``smoke``, ``tiny``, ``small``, ``full``).

The table lives in ``scales.yaml`` beside this module and is validated when loaded, so a
malformed entry fails with a message naming the scale and the field rather than deep inside a
training loop.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from smolbook.errors import SmolbookError

SCALES_FILE = Path(__file__).with_name("scales.yaml")
SCALE_NAMES = ("smoke", "tiny", "small", "full")
DEFAULT_SCALE = "tiny"
# The three pretraining stages at 8 : 2 : 1.1 of the token budget (stage1_8T / stage2_8T_9T / stage3_9T_11T).
STAGE_SHARES = {"stable": 8.0 / 11.1, "stable-2": 2.0 / 11.1, "decay": 1.1 / 11.1}


class ScaleError(SmolbookError, ValueError):
    """An unknown scale or a malformed scales table."""


@dataclass(frozen=True)
class ModelShape:
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    intermediate_size: int
    vocab_size: int
    no_rope_layer_interval: int
    rope_theta: float
    rope_theta_long: tuple[float, float]

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


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
    long_context: tuple[int, int]
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

    @property
    def tokens_per_step(self) -> int:
        return self.global_batch_size * self.seq_len

    @property
    def pretrain_steps(self) -> int:
        return max(1, self.pretrain_tokens // self.tokens_per_step)

    @property
    def ablation_steps(self) -> int:
        return max(1, self.ablation_tokens // self.tokens_per_step)

    def stage_token_boundaries(self) -> dict[str, tuple[int, int]]:
        """Token interval ``[start, end)`` of each pretraining stage (8 : 2 : 1.1 of the budget)."""
        out, start = {}, 0
        for i, (stage, share) in enumerate(STAGE_SHARES.items()):
            end = self.pretrain_tokens if i == len(STAGE_SHARES) - 1 else start + round(share * self.pretrain_tokens)
            out[stage] = (start, end)
            start = end
        return out


def _fail(scale: str, msg: str) -> ScaleError:
    return ScaleError(f"scales table {SCALES_FILE.name}, scale '{scale}': {msg}")


def _build(name: str, raw: Any) -> Scale:
    if not isinstance(raw, dict):
        raise _fail(name, "expected a mapping of fields")
    expected = {f.name for f in fields(Scale)} - {"name"}
    missing, unknown = expected - raw.keys(), raw.keys() - expected
    if missing:
        raise _fail(name, f"missing field(s): {', '.join(sorted(missing))}")
    if unknown:
        raise _fail(name, f"unknown field(s): {', '.join(sorted(unknown))}")
    m = raw["model"]
    mexpected = {f.name for f in fields(ModelShape)}
    if not isinstance(m, dict) or set(m) != mexpected:
        got = set(m) if isinstance(m, dict) else set()
        raise _fail(name, f"model: expected fields {sorted(mexpected)}, got {sorted(got)}")
    try:
        model = ModelShape(
            **{k: (tuple(float(x) for x in v) if k == "rope_theta_long" else (float(v) if k == "rope_theta" else int(v)))
               for k, v in m.items()}
        )
        kw = dict(raw, model=model)
        kw["long_context"] = tuple(int(x) for x in raw["long_context"])
        kw["seeds"] = tuple(int(x) for x in raw["seeds"])
        for k in ("micro_batch_size", "global_batch_size", "pretrain_tokens", "ablation_tokens", "seq_len",
                  "warmup_steps", "eval_every_steps", "corpus_docs_per_domain", "eval_examples_per_task"):
            kw[k] = int(raw[k])
        kw["learning_rate"] = float(raw["learning_rate"])
        kw["offline"] = bool(raw["offline"])
        scale = Scale(name=name, **kw)
    except (TypeError, ValueError) as e:
        raise _fail(name, f"bad value ({e})") from None
    _validate(scale)
    return scale


def _validate(s: Scale) -> None:
    m = s.model
    checks = [
        (m.hidden_size % m.num_attention_heads == 0, "hidden_size must be divisible by num_attention_heads"),
        (m.num_attention_heads % m.num_key_value_heads == 0, "num_attention_heads must be a multiple of num_key_value_heads"),
        (m.num_hidden_layers % m.no_rope_layer_interval == 0, "num_hidden_layers must be a multiple of no_rope_layer_interval"),
        (m.rope_theta_long[0] > m.rope_theta and m.rope_theta_long[1] > m.rope_theta_long[0],
         "rope_theta_long must raise RoPE theta at each context extension"),
        (len(s.long_context) == 2 and s.long_context[0] == 8 * s.seq_len and s.long_context[1] == 2 * s.long_context[0],
         "long_context must be [8 x seq_len, 16 x seq_len] (the recipe's 4k -> 32k -> 64k)"),
        (s.global_batch_size % s.micro_batch_size == 0, "global_batch_size must be a multiple of micro_batch_size"),
        (min(s.seq_len, s.micro_batch_size, s.pretrain_tokens, s.ablation_tokens, s.warmup_steps, s.eval_every_steps) > 0,
         "sizes must be positive"),
        (s.device in ("cpu", "cuda"), "device must be cpu or cuda"),
        (s.launcher in ("inprocess", "accelerate", "slurm"), "launcher must be inprocess, accelerate or slurm"),
        (len(s.seeds) >= 1, "at least one seed"),
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
