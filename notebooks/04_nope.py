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
# `no_rope_layer_interval`-th layer (the recipe; 4 from `tiny` up, 2 at `smoke` which has two layers).
# Short context: the held-out validation loss at the training length. Long context, at 1x to 8x the
# training length: the RULER-style retrieval probe of `smolbook.evaluate.ruler`, and the two things a tiny
# model does learn within minutes (see BOOK_PLAN): copying a passage at a distance, and next-token loss as a
# function of position, past the training length.

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from smolbook import Chapter
from smolbook import ablations as abl
from smolbook.data import prepare

book = Chapter("04_nope", scale, seed, output_dir)
data = prepare(book.scale, output_dir)
interval = book.scale.model.no_rope_layer_interval
arms = [abl.Arm("RoPE everywhere", model={"no_rope_layer_interval": 0}),
        abl.Arm(f"NoPE every {interval}", model={"no_rope_layer_interval": interval}, recipe=True)]
base, nope = (a.name for a in arms)

# %% [markdown]
# ## The runs
# After training, each model goes through the long-context probes (`abl.long_context_eval`).

# %%
ab = abl.run_arms("04_nope", arms, book.scale, output_dir, data, after=abl.long_context_eval(data, book.scale))
display(Markdown(abl.setup_table(ab)))

# %% [markdown]
# ## Short context: loss at the training length

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
abl.plot_metric(ab, "valid_loss", ax=axes[0], ylabel="validation loss")
abl.plot_final(ab, "valid_loss", ax=axes[1], ylabel="final validation loss")
book.savefig(fig, "short_context")
plt.show()

# %% [markdown]
# ## Long context: 1x to 8x the training length
# Left: next-token loss on held-out text against position (the dashed line is the training length).
# Middle: accuracy on a random passage repeated later (dashed: its first occurrence, where only guessing
# helps). Right: RULER answer accuracy averaged over the four tasks (dotted: the same prompts scored against
# another sample's answer, i.e. chance).

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
abl.plot_long_context(ab, axes)
book.savefig(fig, "long_context")
plt.show()

# %% [markdown]
# ## Verdicts
# The rule, fixed before the runs (`smolbook.ablations.VERDICT_RULE`):

# %%
print(abl.VERDICT_RULE)
src = "https://huggingface.co/blog/smollm3"
short = abl.decide(ab.values(base, "valid_loss"), ab.values(nope, "valid_loss"), claim="no_worse")
book.verdict("NoPE on every 4th layer keeps short-context loss (vs RoPE everywhere)",
             short.measured("final validation loss", base, nope), short.status, source=src)
beyond = lambda r: r.final["loss_beyond"]  # noqa: E731
far = abl.decide(ab.values(base, beyond), ab.values(nope, beyond), claim="better")
book.verdict("NoPE on every 4th layer improves long context: loss past the training length",
             far.measured("mean next-token loss at 1x-8x the training length", base, nope), far.status, source=src)
ruler_acc = lambda r: r.final["ruler_accuracy_beyond"]  # noqa: E731
at_chance = not any(r.final["ruler_moved"] for r in ab.runs)
ret = abl.decide(ab.values(base, ruler_acc), ab.values(nope, ruler_acc), claim="better", higher_is_better=True,
                 abs_tol=0.02, at_chance=at_chance)
book.verdict("NoPE on every 4th layer improves long-context retrieval (RULER-style probe, 2x-8x)",
             ret.measured("RULER teacher-forced answer accuracy at 2x-8x", base, nope), ret.status, source=src)
for a in ab.arms:
    for key, unit in (("loss_within", "nats/token"), ("loss_beyond", "nats/token"), ("copy_accuracy_beyond", ""),
                      ("ruler_accuracy_beyond", ""), ("ruler_control_beyond", "")):
        v = abl.spread_summary(ab.values(a.name, lambda r: r.final[key]))
        book.number(f"{key}, {a.name}", round(v["mean"], 4), unit, f"mean of {v['n']} seed(s)")
    book.number(f"final validation loss, {a.name}", round(abl.spread_summary(ab.values(a.name, "valid_loss"))["mean"], 4),
                "nats/token")
for d, what in ((short, "short context"), (far, "loss past the training length"), (ret, "retrieval")):
    print(f"{what}: {d.status} - {d.reason}")
