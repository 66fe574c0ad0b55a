"""Figures of a pretraining run, drawn from its metrics (``TrainResult``): schedule, losses, held-out scores."""
from __future__ import annotations

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
