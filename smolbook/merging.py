"""Model merging with mergekit: the recipe's soup of APO checkpoints and its linear merge with mid-training.

SmolLM3's last step (blog, "Model merging"): a *soup* (a uniform linear merge) of the APO checkpoints, then a
linear merge of 0.9 soup + 0.1 of a mid-training checkpoint with strong long context. Every merge here is done by
mergekit's Python API (``MergeConfiguration`` + ``run_merge``); the book adds only what mergekit leaves to its user:

* absolute input paths (mergekit reaches the hub for a relative one when it writes its model card) and no model
  card, so a merge never leaves the machine;
* the chat tokenizer, its template and the generation config carried from one input (``tokenizer_from``) into the
  merged folder, so the merged model ends its turns where the chat models do;
* the mergekit YAML saved beside the weights (``mergekit_config.yml``), to rerun the merge with ``mergekit-yaml``;
* a check that the result loads with plain ``AutoModelForCausalLM``.

    from smolbook.merging import soup, linear_merge
    s = soup([apo_seed0, apo_seed1, apo_seed2], "runs/tiny/13_merging/soup")
    m = linear_merge({s: 0.9, mid: 0.1}, "runs/tiny/13_merging/soup0.9-mid0.1")
"""
from __future__ import annotations

import logging
import shutil
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import yaml

from smolbook.chat.template import attach_template
from smolbook.errors import SmolbookError
from smolbook.quiet import quiet_libraries
from smolbook.train.trl import trl_checkpoints

CONFIG_FILE = "mergekit_config.yml"
# What the merged folder takes from ``tokenizer_from`` besides the weights (mergekit copies the tokenizer of its
# donor only; the generation config says which token ends a turn).
CARRIED = ("generation_config.json",)


def merge_config(weights: Mapping[str | Path, float], *, dtype: str = "float32", normalize: bool = True) -> dict:
    """The mergekit YAML (as a dict) of a linear merge of ``weights`` (checkpoint folder -> weight)."""
    if len(weights) < 2:
        raise SmolbookError(f"a merge needs at least two checkpoints, got {len(weights)}")
    models, seen = [], set()
    for path, w in weights.items():
        p = _checkpoint(path)
        if p in seen:  # mergekit refuses these too ("Duplicate merge inputs"), less clearly
            raise SmolbookError(f"{p} is given twice: merge distinct checkpoints (raise a weight to count one more)")
        seen.add(p)
        if not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0:
            raise SmolbookError(f"merge weight of {p} must be a number >= 0, got {w!r}")
        models.append({"model": str(p), "parameters": {"weight": float(w)}})
    if sum(m["parameters"]["weight"] for m in models) <= 0:
        raise SmolbookError("merge weights sum to 0: give at least one positive weight")
    return {"merge_method": "linear", "dtype": dtype, "parameters": {"normalize": normalize}, "models": models}


def linear_merge(weights: Mapping[str | Path, float], target: str | Path, *, tokenizer_from: str | Path | None = None,
                 dtype: str = "float32", normalize: bool = True) -> Path:
    """Merge checkpoints linearly with mergekit (``sum w_i * theta_i / sum w_i`` with ``normalize``) into ``target``.

    ``tokenizer_from`` (default: the first checkpoint) gives the tokenizer, chat template and generation config.
    Returns the merged folder, which loads with ``AutoModelForCausalLM`` and holds ``mergekit_config.yml``.
    """
    with warnings.catch_warnings():  # mergekit 0.1.5 imports numpy.core (a DeprecationWarning under numpy 2)
        warnings.simplefilter("ignore", DeprecationWarning)
        from mergekit.config import MergeConfiguration
        from mergekit.merge import MergeOptions, run_merge

    quiet_libraries()
    raw = merge_config(weights, dtype=dtype, normalize=normalize)
    donor = _checkpoint(tokenizer_from) if tokenizer_from is not None else Path(raw["models"][0]["model"])
    target = Path(target).resolve()
    if any(target == Path(m["model"]) for m in raw["models"]):
        raise SmolbookError(f"the merge target {target} is one of its inputs: write the merge to another folder")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    text = yaml.safe_dump(raw, sort_keys=False)
    # mergekit logs on the root logger ("No JSON architecture found for SmolLM3ForCausalLM", "Inferred 1 modules":
    # it has no SmolLM3 definition and infers the layout, which is right here) and reads configs with a deprecated
    # transformers keyword: library noise a chapter must not show. Errors still raise.
    logging.disable(logging.WARNING)
    try:
        config = MergeConfiguration.model_validate(raw)
        run_merge(config, str(target), MergeOptions(copy_tokenizer=False, write_model_card=False, quiet=True,
                                                    lazy_unpickle=False, device="cpu"))
    except SmolbookError:
        raise
    except Exception as e:  # mergekit's own errors are deep; say what was merged and what to check
        raise SmolbookError(f"mergekit could not merge {', '.join(m['model'] for m in raw['models'])} into {target}: "
                            f"{type(e).__name__}: {e}. The checkpoints must share one architecture and shape."
                            ) from None
    finally:
        logging.disable(logging.NOTSET)
    _carry_tokenizer(donor, target)
    (target / CONFIG_FILE).write_text(text)
    _check_loads(target)
    return target


def soup(checkpoints: Sequence[str | Path], target: str | Path, **kwargs: Any) -> Path:
    """The recipe's model soup: a uniform linear merge of ``checkpoints`` (e.g. the APO runs of several seeds)."""
    return linear_merge({p: 1.0 for p in checkpoints}, target, **kwargs)


def read_merge_config(folder: str | Path) -> dict:
    """The mergekit YAML saved beside a merged model."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise SmolbookError(f"{folder} has no {CONFIG_FILE}: it was not merged by smolbook.merging")
    return yaml.safe_load(path.read_text())


def _checkpoint(path: str | Path) -> Path:
    p = Path(path).expanduser().resolve()  # absolute: mergekit treats a relative path as a hub id in places
    if not (p / "config.json").is_file():
        raise SmolbookError(f"no checkpoint at {p} (expected {p / 'config.json'}): merge registered checkpoint folders")
    return p


def _carry_tokenizer(donor: Path, target: Path) -> None:
    """The donor's tokenizer with the book's chat template (attached when the donor has none) and its generation
    config (eos ``<|im_end|>`` for a chat model)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(donor)
    if not tok.chat_template:
        attach_template(tok)
    tok.save_pretrained(target)
    for name in CARRIED:
        if (donor / name).is_file():
            shutil.copy(donor / name, target / name)


def _check_loads(target: Path) -> None:
    from transformers import AutoModelForCausalLM

    try:
        AutoModelForCausalLM.from_pretrained(target)
    except Exception as e:
        raise SmolbookError(f"the merged model at {target} does not load with AutoModelForCausalLM: {e}") from None


def soup_members(finals: Sequence[str | Path], at_least: int = 2) -> list[Path]:
    """What a soup merges: the final checkpoints of the runs (one per seed); with fewer than ``at_least`` runs (a
    one-seed scale), the earlier checkpoints along the first run's training (TRL's ``checkpoint-N`` folders) too."""
    members = [Path(p) for p in finals]
    if len(members) < at_least and members:
        along = [p for p in trl_checkpoints(members[0].parent) if (p / "config.json").is_file()]
        members = along[: max(0, at_least - len(members))] + members
    if len(members) < at_least:
        raise SmolbookError(f"a soup needs at least {at_least} checkpoints, found {len(members)}: train more seeds")
    return members


def sweep(soup_path: str | Path, other: str | Path, weights: Sequence[float], target_dir: str | Path,
          reuse: Mapping[float, str | Path] | None = None) -> dict[float, Path]:
    """Linear merges ``(1 - w) * soup + w * other`` for each ``w`` (into ``target_dir/w<w>``); ``w = 0`` and ``w = 1``
    are the two inputs themselves (no merge needed), and a weight in ``reuse`` is a merge made already (the recipe's
    own, kept under its own name). Returns ``w -> checkpoint folder`` in the order of ``weights``."""
    out: dict[float, Path] = {}
    for w in weights:
        if not 0 <= w <= 1:
            raise SmolbookError(f"sweep weight {w} must lie in [0, 1]")
        if reuse and w in reuse:
            out[w] = Path(reuse[w])
        elif w == 0:
            out[w] = Path(soup_path)
        elif w == 1:
            out[w] = Path(other)
        else:
            out[w] = linear_merge({soup_path: round(1 - w, 6), other: w}, Path(target_dir) / f"w{w:g}",
                                  tokenizer_from=soup_path)
    return out


def mean(values: Sequence[float]) -> float:
    """The plain mean the chapter's summaries use (``sum / len``, so recorded values do not move in the last bit)."""
    return sum(values) / len(values)


def sweep_table(task: Mapping[str, float], cloze: Mapping[str, float], labels: Sequence[str]) -> pd.DataFrame:
    """One row per model (``labels``, each once, in order): its task score and cloze at the base length, rounded,
    blank where the model was not measured on one of them (08's base has no chat; the APO models no cloze)."""
    def cell(scores: Mapping[str, float], label: str) -> float | None:
        return round(scores[label], 3) if label in scores else None

    return pd.DataFrame([{"model": m, "task score": cell(task, m), "cloze @1x": cell(cloze, m)}
                         for m in dict.fromkeys(labels)])


def plot_sweep(labels: Mapping[float, str], task: Mapping[str, float], cloze: Mapping[str, float],
               long_context_level: float, recipe_weight: float, chance: float = 0.25) -> plt.Figure:
    """Task score and long-context cloze along the mid-training weight (``labels``: weight -> model label), with the
    level to win back (08's extended base), cloze chance and the recipe's weight marked: what the weight trades."""
    weights = list(labels)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot(weights, [task[labels[w]] for w in weights], marker="o", label="task score (both modes)")
    ax.plot(weights, [cloze[labels[w]] for w in weights], marker="s",
            label="cloze at the base length (long context)")
    ax.axhline(long_context_level, color="grey", ls="--", lw=0.8, label="08's long-context level")
    ax.axhline(chance, color="grey", ls=":", lw=0.8, label="cloze chance")
    ax.axvline(recipe_weight, color="black", lw=0.6, alpha=0.5)
    ax.set_xlabel("weight of the mid-training checkpoint (0 = the APO soup, 1 = mid-training alone)")
    ax.set_ylabel("score")
    ax.legend(fontsize=8)
    ax.set_title("Linear merges of the APO soup with the mid-training checkpoint")
    return fig


@dataclass(frozen=True)
class SweepChoice:
    """Where the sweep peaks on task score + cloze, per held-out slice: the best weight, and the best weight other
    than the recipe's (the rival the recipe's weight is judged against)."""

    combined: dict[float, list[float]]   # weight -> per slice: task score (both modes) + cloze at the base length
    best: float
    rival: float

    def mean(self, weight: float) -> float:
        return mean(self.combined[weight])


def sweep_choice(by_slice: Mapping[str, Sequence[float]], cloze: Mapping[str, float], labels: Mapping[float, str],
                 recipe_weight: float) -> SweepChoice:
    """Task score per slice plus the (one) cloze score of each sweep point, and the weights that maximise their mean;
    ties go to the earlier weight of ``labels``."""
    combined = {w: [t + cloze[label] for t in by_slice[label]] for w, label in labels.items()}
    best = max(combined, key=lambda w: mean(combined[w]))
    rival = max((w for w in combined if w != recipe_weight), key=lambda w: mean(combined[w]))
    return SweepChoice(combined, best, rival)
