"""Figures of a pretraining run, drawn from its metrics (``TrainResult``): schedule, losses, held-out scores; and
the readings of those metrics that chapter 07's implementation checks compare with the configs (stage shares, the
shape of the WSD schedule)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smolbook.palette import stage_color
from smolbook.train.loop import TrainResult


def stage_spans(result: TrainResult) -> dict[str, tuple[int, int]]:
    """First and last step of each stage, as the trainer logged ``stream.stage`` per step."""
    spans: dict[str, tuple[int, int]] = {}
    for r in result.rows("train"):
        s = r.get("stage")
        a, _ = spans.get(s, (r["step"], r["step"]))
        spans[s] = (a, r["step"])
    return spans


def stage_steps(result: TrainResult) -> dict[str, int]:
    """Training steps each stage took, as the data stream served them (not as the scale planned them)."""
    return {stage: b - a + 1 for stage, (a, b) in stage_spans(result).items()}


def stage_shares(result: TrainResult) -> dict[str, float]:
    """Each stage's share of the run's training steps: what the configs' ``start_training_step`` fix (0.731 /
    0.158 / 0.111), read from the metrics rather than from the plan."""
    total = len(result.rows("train"))
    return {stage: n / total for stage, n in stage_steps(result).items()}


@dataclass(frozen=True)
class WSDReading:
    """The shape of the learning rate a run logged, as a WSD schedule would have it: warm-up, a constant peak,
    then a linear decay to 0. Steps are indices into the run's training rows."""

    peak: float
    warmup_steps: int
    decay_start: int  # the last step still at the peak (its multiplier is 1 - 0/decay_steps)
    decay_stage_start: int  # the step before the decay stage's first logged step
    final_lr: float
    flat: bool  # every step from the warm-up's end to the decay's start at the peak
    linear_to_zero: bool  # strictly falling after that, ending at most a fifth of the peak
    decay_fraction: float  # of the run's steps under the decay

    @property
    def follows_stages(self) -> bool:
        """Constant, then decaying to 0, with the decay starting exactly where the decay stage does (the configs'
        ``lr_decay_starting_step`` = the decay stage's ``start_training_step``)."""
        return self.flat and self.linear_to_zero and self.decay_start == self.decay_stage_start

    def describe(self, configs_fraction: float) -> str:
        """One line for the report card, against the configs' share of steps under the decay."""
        return (f"constant at {self.peak:g} from step {self.warmup_steps} to {self.decay_start}; decays over the last "
                f"{100 * self.decay_fraction:.1f}% (configs: {100 * configs_fraction:.1f}%) from step "
                f"{self.decay_start}, where the decay stage starts at {self.decay_stage_start}, to "
                f"{self.final_lr:.2g} (0 after the last update)")


def read_wsd(result: TrainResult, warmup_steps: int, decay_stage: str = "decay") -> WSDReading:
    """Read the WSD shape back from the learning rates the trainer logged (not the schedule's formula), so the
    check catches a scheduler that was built or stepped wrongly. The run must decay after its warm-up."""
    lrs = [r["lr"] for r in result.rows("train")]
    peak = max(lrs)
    decay_start = next(i for i in range(len(lrs)) if i >= warmup_steps and lrs[i] < peak) - 1
    flat = all(abs(x - peak) < 1e-12 for x in lrs[warmup_steps:decay_start + 1])
    falling = all(a > b for a, b in zip(lrs[decay_start:], lrs[decay_start + 1:]))
    return WSDReading(peak=peak, warmup_steps=warmup_steps, decay_start=decay_start,
                      decay_stage_start=stage_spans(result)[decay_stage][0] - 1, final_lr=lrs[-1], flat=flat,
                      linear_to_zero=falling and lrs[-1] <= peak / 5,
                      decay_fraction=(len(lrs) - decay_start) / len(lrs))


def _shade(ax: Any, result: TrainResult) -> None:
    for stage, (a, b) in stage_spans(result).items():
        ax.axvspan(a - 1, b, color=stage_color(stage), zorder=0)
        ax.axvline(a - 1, color="grey", lw=0.6, ls="--", zorder=1)
        ax.text(a - 1, 1.0, f" {stage}", transform=ax.get_xaxis_transform(), va="bottom", fontsize=8)


def plot_schedule(result: TrainResult):
    """The learning rate the trainer's scheduler applied at each step, with the training loss beside it."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    _shade(ax, result)
    steps, lr = result.series("lr")
    ax.plot(steps, lr, color="C0", label="learning rate")
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate", color="C0")
    ax2 = ax.twinx()
    steps, loss = result.series("loss")
    ax2.plot(steps, loss, color="C3", alpha=0.6, lw=0.8, label="training loss")
    ax2.set_ylabel("training loss", color="C3")
    fig.tight_layout()
    return fig


def plot_metric_family(result: TrainResult, prefix: str, ylabel: str):
    """Every eval metric starting with ``prefix`` (e.g. ``valid_loss/`` or ``acc/``) against step, stages shaded."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.8))
    _shade(ax, result)
    keys = sorted({k for r in result.rows("eval") for k in r if k.startswith(prefix)})
    for k in keys:
        steps, vals = result.series(k, kind="eval")
        ax.plot(steps, vals, marker="o", ms=3, label=k[len(prefix):])
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_control(result: TrainResult, control: TrainResult, key: str = "valid_loss", label: str = "control",
                 ylabel: str = "validation loss (mean over domains)"):
    """One eval metric of a run against a control branched from it (e.g. a constant learning rate from the decay's
    first step), stages shaded; the dotted line marks the branch point."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    _shade(ax, result)
    steps, vals = result.series(key, kind="eval")
    ax.plot(steps, vals, "o-", ms=3, color="C0", label="the run (WSD decay)")
    cs, cv = control.series(key, kind="eval")
    ax.plot(cs, cv, "s--", ms=5, color="k", label=label)
    if control.rows("train"):  # where the control branched off
        ax.axvline(control.rows("train")[0]["step"] - 1, color="k", lw=0.8, ls=":")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
