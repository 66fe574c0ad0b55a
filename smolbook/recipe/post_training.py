"""The post-training recipe as data: reasoning mid-training, SFT, APO, merging and inference settings.

No training configs were released for these steps, so ``post_training.yaml`` transcribes the SmolLM3 blog and
model card, each fact with its source; a setting the sources leave unsaid is ``None`` with a note (the scales
table then chooses, and chapter 00 lists the choice as a departure).

    pt = load_post_training()
    pt.value("sft", "epochs")            # 4
    pt.section("apo").datasets           # (PostDataset(name=..., hub_id=..., role=...), ...)
    pt.to_json()                         # what `smolbook recipe post-training --json` prints
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from smolbook.recipe.schema import RecipeError

POST_TRAINING_FILE = Path(__file__).with_name("post_training.yaml")
SECTIONS = ("mid_training", "sft", "apo", "merge", "inference")
HUB_ID_SOURCES = ("named", "released", "inferred")


@dataclass(frozen=True)
class Fact:
    """One number or setting: the value the book uses, as the source states it, and the source."""

    value: Any
    stated: str
    source: str
    note: str = ""


@dataclass(frozen=True)
class PostDataset:
    name: str
    hub_id: str
    role: str
    source: str
    hub_id_source: str
    subset: str | None = None


@dataclass(frozen=True)
class Section:
    name: str
    facts: dict[str, Fact]
    datasets: tuple[PostDataset, ...]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: f.value for k, f in self.facts.items()}
        out["datasets"] = [{"name": d.name, "hub_id": d.hub_id, "role": d.role, **({"subset": d.subset} if d.subset else {})}
                           for d in self.datasets]
        out["sources"] = {k: f.source + (f" ({f.note})" if f.note else "") for k, f in self.facts.items()}
        return out


@dataclass(frozen=True)
class PostTraining:
    sections: dict[str, Section]
    source_file: str

    def section(self, name: str) -> Section:
        if name not in self.sections:
            raise RecipeError(f"unknown post-training section '{name}': choose one of {', '.join(SECTIONS)}")
        return self.sections[name]

    def value(self, section: str, fact: str) -> Any:
        """The value of one fact; a clear error naming the section's facts otherwise."""
        facts = self.section(section).facts
        if fact not in facts:
            raise RecipeError(f"post-training section '{section}' has no fact '{fact}': it has {', '.join(facts)}")
        return facts[fact].value

    def datasets(self) -> list[tuple[str, PostDataset]]:
        """Every dataset with its section, in recipe order."""
        return [(name, d) for name in SECTIONS for d in self.sections[name].datasets]

    def to_json(self) -> dict[str, Any]:
        return {name: self.sections[name].to_json() for name in SECTIONS}


def _fail(path: str | Path, where: str, msg: str) -> RecipeError:
    return RecipeError(f"post-training recipe {Path(path).name}, {where}: {msg}")


def load_post_training_file(path: str | Path) -> PostTraining:
    """Load and validate a post-training recipe file (see ``post_training.yaml`` for its layout)."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise RecipeError(f"post-training recipe {path}: cannot read it as YAML ({e})") from None
    if not isinstance(raw, dict) or set(raw) != set(SECTIONS):
        got = ", ".join(raw) if isinstance(raw, dict) else type(raw).__name__
        raise _fail(path, "top level", f"needs exactly the sections {', '.join(SECTIONS)} (got {got})")
    sections = {}
    for name in SECTIONS:
        sec = raw[name]
        if not isinstance(sec, dict) or set(sec) != {"facts", "datasets"} or not isinstance(sec["facts"], dict) \
                or not isinstance(sec["datasets"], list):
            raise _fail(path, name, "needs 'facts' (a mapping) and 'datasets' (a list)")
        facts = {}
        for key, f in sec["facts"].items():
            if not isinstance(f, dict) or not {"value", "stated", "source"} <= set(f) or \
                    set(f) - {"value", "stated", "source", "note"}:
                raise _fail(path, f"{name}.facts.{key}", "needs value, stated and source (and optionally note)")
            if f["value"] is None and not f.get("note"):
                raise _fail(path, f"{name}.facts.{key}", "a fact the sources leave unsaid (value null) needs a note")
            facts[key] = Fact(value=f["value"], stated=str(f["stated"]), source=str(f["source"]), note=str(f.get("note", "")))
        datasets = []
        for i, d in enumerate(sec["datasets"]):
            need = {"name", "hub_id", "role", "source", "hub_id_source"}
            if not isinstance(d, dict) or not need <= set(d) or set(d) - need - {"subset"}:
                raise _fail(path, f"{name}.datasets[{i}]", f"needs {', '.join(sorted(need))} (and optionally subset)")
            if d["hub_id_source"] not in HUB_ID_SOURCES:
                raise _fail(path, f"{name}.datasets[{i}]", f"hub_id_source must be one of {', '.join(HUB_ID_SOURCES)}")
            datasets.append(PostDataset(**{k: str(v) for k, v in d.items()}))
        sections[name] = Section(name, facts, tuple(datasets))
    return PostTraining(sections, str(path))


@lru_cache(maxsize=1)
def load_post_training() -> PostTraining:
    """The SmolLM3 post-training recipe (cached)."""
    return load_post_training_file(POST_TRAINING_FILE)
