"""The training hyperparameters, with the recipe's values as defaults (read from the recipe data: stage1_8T.yaml
``optimizer:`` and the pretraining run's schedule)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from smolbook.errors import SmolbookError
from smolbook.recipe import load_recipe
from smolbook.scales import Scale, get_scale

SCHEDULES = ("wsd", "cosine")
PRECISIONS = ("auto", "fp32", "bf16")


def _recipe(attr: str) -> Any:
    """A default read from the recipe when a TrainConfig is made (the recipe data is the one source of it)."""
    r = load_recipe()
    o, sch = r.optimizer, r.runs["pretraining"].schedule
    return {"decay_fraction": sch.decay_fraction, "weight_decay": o.weight_decay,
            "embedding_weight_decay": o.embedding_weight_decay, "betas": (o.adam_beta1, o.adam_beta2),
            "eps": o.adam_eps, "grad_clip": o.clip_grad}[attr]


@dataclass
class TrainConfig:
    """What one pretraining run needs beyond the model and the data stream.

    Defaults are the recipe's: AdamW (0.9, 0.95, eps 1e-8), weight decay 0.1 with the token embedding excluded,
    gradient clipping at 1.0, WSD with a linear decay to 0 over the last 11.06% of steps (the decay stage's share
    of the released pretraining run: the configs start the decay with that stage).
    ``micro_batch_size`` = rows per forward on each process (``None``: the whole per-process share of the
    stream's global batch); the stream's batch is the global batch, split evenly over processes.
    ``eval_every``/``checkpoint_every`` = 0 means only at the end.
    """

    steps: int
    learning_rate: float
    warmup_steps: int
    decay_fraction: float = field(default_factory=lambda: _recipe("decay_fraction"))
    schedule: str = "wsd"
    weight_decay: float = field(default_factory=lambda: _recipe("weight_decay"))
    embedding_weight_decay: bool = field(default_factory=lambda: _recipe("embedding_weight_decay"))
    betas: tuple[float, float] = field(default_factory=lambda: _recipe("betas"))
    eps: float = field(default_factory=lambda: _recipe("eps"))
    grad_clip: float = field(default_factory=lambda: _recipe("grad_clip"))
    eval_every: int = 0
    checkpoint_every: int = 0
    seed: int = 0
    precision: str = "auto"
    micro_batch_size: int | None = None
    keep_last_checkpoints: int = 2
    loss_chunk_tokens: int = 0  # > 0: the loss in chunks of this many positions (smolbook.train.chunked_loss)
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        problems = []
        if self.steps < 1:
            problems.append(f"steps must be >= 1 (got {self.steps})")
        if not 0 <= self.warmup_steps < self.steps:
            problems.append(f"warmup_steps must be in [0, steps) (got {self.warmup_steps} for {self.steps} steps)")
        if not 0 <= self.decay_fraction <= 1:
            problems.append(f"decay_fraction must be in [0, 1] (got {self.decay_fraction})")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(SCHEDULES)} (got '{self.schedule}')")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)} (got '{self.precision}')")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate must be > 0 (got {self.learning_rate})")
        if self.micro_batch_size is not None and self.micro_batch_size < 1:
            problems.append(f"micro_batch_size must be >= 1 (got {self.micro_batch_size})")
        if problems:
            raise SmolbookError("bad TrainConfig: " + "; ".join(problems))

    @classmethod
    def for_scale(cls, scale: str | Scale, steps: int | None = None, seed: int = 0, **overrides: Any) -> "TrainConfig":
        """The pretraining config of a scale (its learning rate, warm-up, evaluation interval and batch split); the
        decay covers exactly the scale's decay stage when ``steps`` is the scale's pretraining length."""
        s = get_scale(scale)
        n = s.pretrain_steps if steps is None else steps
        kw: dict[str, Any] = dict(steps=n, learning_rate=s.learning_rate, warmup_steps=min(s.warmup_steps, max(0, n - 1)),
                                  eval_every=s.eval_every_steps, checkpoint_every=s.eval_every_steps, seed=seed,
                                  micro_batch_size=s.micro_batch_size)
        if n == s.pretrain_steps:
            kw["decay_fraction"] = s.lr_decay_fraction()
        kw.update(overrides)
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
