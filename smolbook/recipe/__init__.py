"""The SmolLM3 recipe as data, in three parts:

* :mod:`smolbook.recipe.schema`         the pretraining and long-context transcription (``smollm3.yaml``) and its loader
* :mod:`smolbook.recipe.post_training`  mid-training, SFT, APO, merging and inference (``post_training.yaml``)
* :mod:`smolbook.recipe.ledger`         where the SmolLM3 blog and the released configs agree or differ
* :mod:`smolbook.recipe.cli`            ``smolbook recipe show | mixture | ledger | post-training``

The recipe data is the single source of every number of the recipe: model presets, trainer defaults, stage
boundaries and the scales' derived budgets all read it from here.
"""
from smolbook.recipe.cli import format_summary, mixture_rows, register_cli
from smolbook.recipe.ledger import ConfigFact, LedgerRow, config_facts, facts_of, ledger, share_rows, stage_rows
from smolbook.recipe.post_training import PostTraining, load_post_training, load_post_training_file
from smolbook.recipe.schema import (BLOG_BUCKETS, CATEGORIES, COUNTS_AS, HUB_ID_SOURCES, LEDGER_KINDS, RECIPE_FILE,
                                    Architecture, BlogFact, DatasetEntry, Optimizer, Recipe, RecipeError, Run,
                                    Schedule, Stage, human_tokens, load_recipe, load_recipe_file)

__all__ = ["BLOG_BUCKETS", "CATEGORIES", "COUNTS_AS", "HUB_ID_SOURCES", "LEDGER_KINDS", "RECIPE_FILE", "Architecture",
           "BlogFact", "ConfigFact", "DatasetEntry", "LedgerRow", "Optimizer", "PostTraining", "Recipe", "RecipeError",
           "Run", "Schedule", "Stage", "config_facts", "facts_of", "format_summary", "human_tokens", "ledger",
           "load_post_training", "load_post_training_file", "load_recipe", "load_recipe_file", "mixture_rows",
           "register_cli", "share_rows", "stage_rows"]
