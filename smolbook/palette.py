"""One colour per stage of the recipe, used by every figure that shades or draws a stage (chapters 00, 07, 08, ...)."""
from __future__ import annotations

# Pale fills: figures shade spans of training with them and draw curves on top.
STAGE_COLORS = {
    "stable": "#dbe9f6", "stable-2": "#fde2c8", "decay": "#f8d0d0",           # pretraining
    "lc-32k": "#dcefd9", "lc-64k": "#e8dcf2",                                 # long context
    "mid_training": "#fff3b0", "sft": "#d9f2f2", "preference": "#f2dce8",     # post-training
}
OTHER = "#f2f2f2"


def stage_color(stage: str | None) -> str:
    """The fill of a stage (grey for anything the recipe does not name)."""
    return STAGE_COLORS.get(stage or "", OTHER)


# A verdict's colour, the same on every figure and on the site's badges (site/style.css).
VERDICT_COLORS = {"holds": "#1a7f37", "differs": "#cf222e", "inconclusive": "#9a6700"}
