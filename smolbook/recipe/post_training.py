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
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

from smolbook.recipe.schema import RecipeError
from smolbook.validation import validate

POST_TRAINING_FILE = Path(__file__).with_name("post_training.yaml")
SECTIONS = ("mid_training", "sft", "apo", "merge", "inference")  # PostTrainingFile's fields, in recipe order
HUB_ID_SOURCES = ("named", "released", "inferred")


class _Entry(BaseModel):
    # numbers the file writes where a text is expected (``stated: 4``) read as that text
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class Fact(_Entry):
    """One number or setting: the value the book uses, as the source states it, and the source."""

    value: Any
    stated: str
    source: str
    note: str = ""

    @model_validator(mode="after")
    def _unsaid_needs_a_note(self) -> "Fact":
        if self.value is None and not self.note:
            raise ValueError("a fact the sources leave unsaid (value null) needs a note")
        return self


class PostDataset(_Entry):
    name: str
    hub_id: str
    role: str
    source: str
    hub_id_source: Literal[HUB_ID_SOURCES]  # type: ignore[valid-type]
    subset: str | None = None


class SectionEntry(_Entry):
    """One section as the file writes it."""

    facts: dict[str, Fact]
    datasets: list[PostDataset]


class PostTrainingFile(_Entry):
    """The whole file: exactly the recipe's sections."""

    mid_training: SectionEntry
    sft: SectionEntry
    apo: SectionEntry
    merge: SectionEntry
    inference: SectionEntry


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


def load_post_training_file(path: str | Path) -> PostTraining:
    """Load and validate a post-training recipe file (see ``post_training.yaml`` for its layout)."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise RecipeError(f"post-training recipe {path}: cannot read it as YAML ({e})") from None
    entry = validate(PostTrainingFile, raw, f"post-training recipe {Path(path).name}", RecipeError)
    sections = {name: Section(name, dict(getattr(entry, name).facts), tuple(getattr(entry, name).datasets))
                for name in SECTIONS}
    return PostTraining(sections, str(path))


@lru_cache(maxsize=1)
def load_post_training() -> PostTraining:
    """The SmolLM3 post-training recipe (cached)."""
    return load_post_training_file(POST_TRAINING_FILE)
