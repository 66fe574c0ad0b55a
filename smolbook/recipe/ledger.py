"""Blog vs released configs: every config-side quantity computed from the transcription, compared row by row
with what the SmolLM3 blog says, plus the tables chapter 00 shows. Agreement is computed, never typed."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from smolbook.recipe.facts import config_facts
from smolbook.recipe.schema import STORAGE_WORDS, BlogFact, Recipe, load_recipe
from smolbook.recipe.units import SUFFIXES, human_tokens

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



# ----------------------------------------------------------------------------- ledger
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
    suffix = stated.strip()[-1] if stated.strip()[-1:] in SUFFIXES and stated.strip()[-1:] else ""
    return f"{x / SUFFIXES[suffix]:g}{suffix}"


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
            if d.name in STORAGE_WORDS and d.name not in seen:
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


