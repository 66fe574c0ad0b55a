"""The SmolLM3 recipe as data:

* :mod:`smolbook.recipe.schema`         the pretraining and long-context transcription (``smollm3.yaml``) and its loader
* :mod:`smolbook.recipe.post_training`  mid-training, SFT, APO, merging and inference (``post_training.yaml``)
* :mod:`smolbook.recipe.facts`          the config-side quantities computed from the transcription
* :mod:`smolbook.recipe.ledger`         where the SmolLM3 blog and the released configs agree or differ
* :mod:`smolbook.recipe.units`          token counts and percentages as the recipe writes them
* :mod:`smolbook.recipe.cli`            ``smolbook recipe show | mixture | ledger | post-training``

The recipe data is the single source of every number of the recipe: model presets, trainer defaults, stage
boundaries and the scales' derived budgets all read it from here.
"""
from smolbook.recipe.cli import format_summary, mixture_rows, register_cli
from smolbook.recipe.facts import ConfigFact, config_facts
from smolbook.recipe.ledger import LedgerRow, facts_of, ledger, share_rows, stage_rows
from smolbook.recipe.post_training import PostTraining, load_post_training, load_post_training_file
from smolbook.recipe.schema import (BLOG_BUCKETS, CATEGORIES, COUNTS_AS, HUB_ID_SOURCES, LEDGER_KINDS, RECIPE_FILE,
                                    Architecture, BlogFact, DatasetEntry, ModelSize, Optimizer, Recipe, RecipeError,
                                    Run, Schedule, Stage, load_recipe, load_recipe_file)
from smolbook.recipe.units import human_tokens

__all__ = ["BLOG_BUCKETS", "CATEGORIES", "COUNTS_AS", "HUB_ID_SOURCES", "LEDGER_KINDS", "RECIPE_FILE", "Architecture",
           "BlogFact", "ConfigFact", "DatasetEntry", "LedgerRow", "ModelSize", "Optimizer", "PostTraining", "Recipe", "RecipeError",
           "Run", "Schedule", "Stage", "config_facts", "facts_of", "format_summary", "human_tokens", "ledger",
           "load_post_training", "load_post_training_file", "load_recipe", "load_recipe_file", "mixture_rows",
           "register_cli", "share_rows", "stage_rows"]
