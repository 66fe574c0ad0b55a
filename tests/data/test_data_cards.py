"""The committed data cards agree with the recipe: one card per dataset, the same weights."""
from __future__ import annotations

from pathlib import Path

import pytest

from smolbook.data.cards import UNKNOWN, card_filename, describe, parse_card_weights, render_card, render_overview
from smolbook.recipe import load_recipe

CARDS = Path(__file__).resolve().parents[2] / "data_cards"


@pytest.fixture(scope="module")
def recipe():
    return load_recipe()


def _recipe_weights(recipe, name: str) -> dict[str, float]:
    out = {}
    for s in recipe.stage_names:
        for e in recipe.stage(s).datasets:
            if e.name == name:
                out[s] = e.weight
    return out


def test_every_recipe_dataset_has_a_card_with_the_recipe_weights(recipe):
    for name in recipe.all_datasets():
        path = CARDS / card_filename(name)
        assert path.exists(), f"missing data card {path.name}: run `smolbook data cards`"
        assert parse_card_weights(path.read_text()) == _recipe_weights(recipe, name), name


def test_cards_are_up_to_date_with_the_generator(recipe):
    for name, entry in recipe.all_datasets().items():
        assert (CARDS / card_filename(name)).read_text() == render_card(entry, recipe), name
    assert (CARDS / "README.md").read_text() == render_overview(recipe)


def test_no_stale_cards_and_every_dataset_is_described(recipe):
    expected = {card_filename(n) for n in recipe.all_datasets()} | {"README.md"}
    assert {p.name for p in CARDS.glob("*.md")} == expected
    assert [n for n in recipe.all_datasets() if describe(n) == UNKNOWN] == []


def test_a_wrong_weight_is_detected(recipe):
    name = "fineweb-edu"
    text = (CARDS / card_filename(name)).read_text().replace("| stable | 0.333 |", "| stable | 0.3 |")
    assert parse_card_weights(text) != _recipe_weights(recipe, name)


# -- post-training datasets (data_cards/post_training/) ---------------------------------------------
def test_every_post_training_dataset_has_an_up_to_date_card():
    from smolbook.data.cards import (POST_TRAINING_DIR, POST_TRAINING_INFO, render_post_training_card,
                                     render_post_training_overview)
    from smolbook.recipe.post_training import load_post_training

    post, folder = load_post_training(), CARDS / POST_TRAINING_DIR
    for section, entry in post.datasets():
        path = folder / card_filename(entry.name)
        assert path.exists(), f"missing data card post_training/{path.name}: run `smolbook data cards`"
        text = path.read_text()
        assert text == render_post_training_card(section, entry), entry.name
        assert f"| section | {section} |" in text and f"`{entry.hub_id}`" in text and entry.role in text
        assert entry.name in POST_TRAINING_INFO, f"describe {entry.name} in POST_TRAINING_INFO"
    assert (folder / "README.md").read_text() == render_post_training_overview(post)
    expected = {card_filename(d.name) for _, d in post.datasets()} | {"README.md"}
    assert {p.name for p in folder.glob("*.md")} == expected


def test_post_training_cards_say_how_each_dataset_is_read(tmp_path):
    from smolbook.data.cards import write_post_training_cards

    paths = write_post_training_cards(tmp_path)
    text = {p.stem: p.read_text() for p in paths}
    assert "| row format | `sharegpt`" in text["OpenThoughts3-1.2M"]
    assert "| rows used | version = v1.1, reasoning = on |" in text["Llama-Nemotron-Post-Training-Dataset-v1.1-R1"]
    assert "| mode | no_think |" in text["tulu-3-8b-preference-mixture"]
    assert "not read" in text["teacher-traces"]
