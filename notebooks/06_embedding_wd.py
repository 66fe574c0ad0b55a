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
# # 06 · Ablation: no weight decay on the embeddings
#
# **The claim.** SmolLM3 applies weight decay 0.1 to every weight except the token embedding
# (`weight_decay_exclude_named_params: .*token_embedding.*` in the released configs; the embedding is tied to
# the output projection). Following OLMo 2, the SmolLM3 blog reports that removing weight decay from the
# embeddings made training more stable, with embedding norms settling at healthier values, without hurting
# performance in its ablations. Source: <https://huggingface.co/blog/smollm3> ("No weight decay on embeddings").
#
# **The experiment.** Two arms, same data, same seeds: weight decay on the embedding too (baseline) and off
# (the recipe). We follow the mean L2 norm of the embedding rows through training and compare the final
# validation loss. "Stable" is measured as the embedding norm's relative drift over the second half of
# training, |norm(end) - norm(middle)| / norm(middle): smaller is steadier.

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

book = Chapter("06_embedding_wd", scale, seed, output_dir)
data = prepare(book.scale, output_dir)
arms = [abl.Arm("embedding decayed", train={"embedding_weight_decay": True}),
        abl.Arm("embedding not decayed", train={"embedding_weight_decay": False}, recipe=True)]
wd_on, wd_off = (a.name for a in arms)

# %% [markdown]
# ## The runs
# The embedding norm is logged about twelve times per run, the validation loss every `eval_every_steps`.

# %%
ab = abl.run_arms("06_embedding_wd", arms, book.scale, output_dir, data)
display(Markdown(abl.setup_table(ab)))

# %% [markdown]
# ## Loss and embedding norms

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
abl.plot_metric(ab, "loss", kind="train", smooth=5, ax=axes[0], ylabel="training loss (5-step mean)")
abl.plot_metric(ab, "valid_loss", ax=axes[1], ylabel="validation loss")
abl.plot_metric(ab, "embedding_norm", ax=axes[2], ylabel="mean embedding row norm")
book.savefig(fig, "loss_and_norms")
plt.show()

# %% [markdown]
# ## Verdicts
# The rule, fixed before the runs (`smolbook.ablations.VERDICT_RULE`):

# %%
print(abl.VERDICT_RULE)
src = "https://huggingface.co/blog/smollm3"
short = abl.decide(ab.values(wd_on, "valid_loss"), ab.values(wd_off, "valid_loss"), claim="no_worse")
book.verdict("No weight decay on the embeddings does not hurt the loss",
             short.measured("final validation loss", wd_on, wd_off), short.status, source=src)
drift = abl.embedding_norm_drift
norms = abl.decide(ab.values(wd_on, drift), ab.values(wd_off, drift), claim="better", abs_tol=0.005)
book.verdict("No weight decay on the embeddings steadies the embedding norms",
             norms.measured("relative drift of the embedding norm over the second half of training", wd_on, wd_off),
             norms.status, source=src)
for a in ab.arms:
    for key, fn, unit in (("final validation loss", lambda r: r.last("valid_loss"), "nats/token"),
                          ("final embedding norm", lambda r: r.last("embedding_norm"), ""),
                          ("embedding norm drift, second half", drift, "")):
        v = abl.spread_summary(ab.values(a.name, fn))
        book.number(f"{key}, {a.name}", round(v["mean"], 4), unit,
                    f"{v['n']} seed(s), spread {None if v['spread'] is None else round(v['spread'], 4)}")
for d, what in ((short, "loss"), (norms, "embedding norms")):
    print(f"{what}: {d.status} - {d.reason}")
