# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   smolbook:
#     needs: [01_data]
# ---

# %% [markdown]
# # 04 · Ablation: NoPE on every 4th layer
#
# **The claim.** SmolLM3 removes the rotary position embedding (RoPE) from every fourth layer ("NoPE", after
# Yang et al., 2025, *RoPE to NoRoPE and back again*). The SmolLM3 blog reports that in its ablations this
# hybrid kept short-context performance the same as RoPE everywhere while improving long-context
# performance. Source: <https://huggingface.co/blog/smollm3> ("NoPE").
#
# **The experiment.** Two arms, same data, same seeds: RoPE in every layer (baseline) and NoPE every
# `no_rope_layer_interval`-th layer (the recipe's own model, shared with chapters 03, 05 and 06). Both train
# past the point where this tiny model starts to retrieve facts from its context (in-context retrieval
# emerges as a jump during pretraining; the held-out cloze accuracy logged during training shows it).
# Short context: the held-out validation loss at the training length. Long context, at 1x, 2x and 4x the
# training length, with the long-context report of `smolbook.evaluate.longcontext`: a held-out person's fact,
# then held-out text, then the fact restated as a question. What the far-away fact is worth is the drop in the
# loss of the true answer against a control prompt without the fact (the probe that moves at this scale); the
# 4-choice cloze accuracy on the same prompts (chance 0.25) and loss against position come beside it. Random-token
# copying and RULER key-value retrieval are reported too; at this scale they are expected to stay at chance.

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from smolbook import Chapter
from smolbook import ablations as abl
from smolbook.claims import Claim
from smolbook.data import prepare
from smolbook.evaluate.longcontext import plot_report

# %%
book = Chapter("04_nope", scale, seed, output_dir)
data = prepare(book.scale, output_dir, seed=seed)
interval = book.scale.model.no_rope_layer_interval
base, nope = "RoPE everywhere", f"NoPE every {interval}"
arms = [abl.Arm(base, model={"no_rope_layer_interval": 0}), abl.Arm(nope, recipe=True)]
SRC = "https://huggingface.co/blog/smollm3"
# The long-context report's summaries each arm records, with their units
SUMMARIES = {"cloze_within": "", "cloze_beyond": "", "cloze_control_beyond": "", "restate_gain_beyond": "nats/token",
             "loss_within": "nats/token", "loss_beyond": "nats/token", "copy_beyond": "", "ruler_beyond": ""}

# %%
SHORT = Claim("NoPE on every 4th layer keeps short-context loss (vs RoPE everywhere)", SRC,
              metric="final validation loss (nats/token)", direction="no_worse", margin=0.02)
FAR_FACT = Claim("NoPE on every 4th layer improves long context: a fact 2x-4x the training length back helps more",
                 SRC, metric="loss gain on the restated fact, fact 2x-4x the training length back (nats/token)",
                 direction="better", margin=0.02, higher_is_better=True, chance=0.0)
CLOZE = Claim("NoPE on every 4th layer improves long context: cloze at a distance past the training length", SRC,
              metric="cloze accuracy, fact 2x-4x the training length back", direction="better", margin=0.03,
              higher_is_better=True, chance=0.25, accuracy=True)
LOSS_FAR = Claim("NoPE on every 4th layer improves long context: loss past the training length", SRC,
                 metric="next-token loss at 1x-4x the training length (nats/token)", direction="better", margin=0.02)
# chance: nominally one digit in ten of the 5-digit answer; the shuffled-answer control measures where chance lies
# for this tokenizer, and it decides whether the probe moved (at_chance= below)
RULER = Claim("NoPE on every 4th layer improves long-context retrieval (RULER key-value probe, 2x-4x)", SRC,
              metric="RULER teacher-forced answer accuracy at 2x-4x", direction="better", margin=0.03,
              higher_is_better=True, chance=0.1, accuracy=True)

# %% [markdown]
# ## The runs
# After training, each model goes through the long-context report.

# %%
ab = abl.run_arms("04_nope", arms, book.scale, output_dir, data, after=abl.long_context_after(data, book.scale))
display(Markdown(abl.setup_table(ab)))
# Chapter 08 extends both arms through the long-context stages (NoPE judged after extension, as the blog did).
for r in ab.runs:
    book.checkpoint(f"{'recipe' if r.arm == nope else 'rope'}-seed{r.seed}", r.output_dir / "final", step=r.steps,
                    tokens=r.tokens)

# %% [markdown]
# ## Short context, and the emergence of in-context retrieval
# Left: validation loss at the training length. Right: held-out cloze accuracy (4 choices, the fact a few dozen
# tokens back) during training: it sits near chance, then jumps.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
abl.plot_metric(ab, "valid_loss", ax=axes[0], ylabel="validation loss")
abl.plot_metric(ab, "acc/cloze", ax=axes[1], ylabel="held-out cloze accuracy")
axes[1].axhline(0.25, color="grey", lw=0.6)
book.savefig(fig, "short_context")
plt.show()

# %% [markdown]
# ## Long context: 1x to 4x the training length
# Left: cloze accuracy with the fact about 1x, 2x and 4x the training length back (dotted: the same prompts with
# the fact removed). Middle: how much lower the loss of the true answer is with the fact than without it.
# Right: next-token loss on held-out text against position (the dashed line is the training length).

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
plot_report(abl.long_context_reports(ab), axes)
book.savefig(fig, "long_context")
plt.show()

# %% [markdown]
# ## Verdicts

# %%
lc = abl.long_context_value
items = abl.long_context_items(ab)
ab.judge(book, SHORT, base, nope, "valid_loss")
ab.judge(book, FAR_FACT, base, nope, lc("restate_gain_beyond"), items=items["cloze"],
         note=f"each held-out fact asked at {items['distances']} distance(s) past the training length")
ab.judge(book, CLOZE, base, nope, lc("cloze_beyond"), items=items["cloze"],
         note=f"each question asked at {items['distances']} distance(s); within the training length the recipe arm scores "
              f"{ab.mean(nope, lc('cloze_within')):.3f}")
ab.judge(book, LOSS_FAR, base, nope, lc("loss_beyond"))
ab.judge(book, RULER, base, nope, lc("ruler_beyond"), items=items["ruler"],
         at_chance=not any(r.final["long_context"]["ruler_moved"] for r in ab.runs),
         note=f"the shuffled-answer control scores {ab.mean(nope, lc('ruler_control_beyond')):.3f} in the recipe arm")
for row in abl.arm_numbers(ab, {key: (lc(key), unit) for key, unit in SUMMARIES.items()}, note="mean of {n} seed(s)",
                           skip_nan=True):  # smoke's context is too short for some probes
    book.number(**row)
