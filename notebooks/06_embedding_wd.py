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
# **The experiment.** Two arms, same data, same seeds: weight decay on the embedding too (baseline) and off (the
# recipe's own model, shared with chapters 03-05). We follow the mean L2 norm of the embedding rows through
# training and compare the final validation loss. "Steadier" is measured as the embedding norm's relative
# drift over the second half of training, |norm(end) - norm(middle)| / norm(middle): smaller is steadier.
# Weight decay can only move the norm so far in a short run: at most 1 - prod(1 - lr x 0.1) over the steps
# taken. That bound is computed from the run and shown; if it were smaller than the margin, the run could not
# tell the arms apart and the claim would be reported as under-powered.

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

# %%
book = Chapter("06_embedding_wd", scale, seed, output_dir)
data = prepare(book.scale, output_dir, seed=seed)
wd_on, wd_off = "embedding decayed", "embedding not decayed"
arms = [abl.Arm(wd_on, train={"embedding_weight_decay": True}), abl.Arm(wd_off, recipe=True)]
SRC = "https://huggingface.co/blog/smollm3"
LOSS = Claim("No weight decay on the embeddings does not hurt the loss", SRC,
             metric="final validation loss (nats/token)", direction="no_worse", margin=0.02)
NORMS = Claim("No weight decay on the embeddings steadies the embedding norms", SRC,
              metric="relative drift of the embedding norm over the second half of training", direction="better",
              margin=0.01)

# %% [markdown]
# ## The runs
# The embedding norm, validation loss and cloze accuracy are logged every `eval_every_steps`.

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

# %%
drift = abl.embedding_norm_drift
run = ab.arm_runs(wd_on)[0]
bound = abl.decay_shrink_bound(run, 0.1, from_step=run.steps // 2)
book.number("most the decay can shrink a weight, second half", round(bound, 4), "fraction",
            "1 - prod(1 - lr x 0.1) over the steps after the middle")
ab.judge(book, LOSS, wd_on, wd_off, "valid_loss")
ab.judge(book, NORMS, wd_on, wd_off, drift, max_effect=bound,
         note=f"weight decay could shrink the embedding by at most {bound:.3f} over the second half")
numbers = {"final validation loss": ("valid_loss", "nats/token"), "final embedding norm": ("embedding_norm", ""),
           "embedding norm drift, second half": (drift, "")}
for row in abl.arm_numbers(ab, numbers):
    book.number(**row)
