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
# # 05 · Ablation: intra-document masking
#
# **The claim.** SmolLM3 trains on packed sequences with intra-document masking: a token attends only to
# earlier tokens of its own document, never to the unrelated documents packed before it in the same row.
# The SmolLM3 blog reports (as Llama 3 did) that this keeps short-context performance while making training
# with long sequences faster and more stable, and helps long context. Source:
# <https://huggingface.co/blog/smollm3> ("Intra-Document Masking").
#
# **The experiment.** Two arms, same data, same seeds: masking off (positions run 0..T-1 across a whole
# packed row, attention crosses documents) and masking on (the recipe's own model, shared with chapters 03, 04
# and 06: positions restart at every document, and transformers keeps documents apart; see chapter 01 for the
# `position_ids` mechanics). We compare the validation loss, the long-context report of chapter 04, the
# gradient norm and training throughput. The validation loss scores every held-out document on its own (from
# position 0, no other document in view), which is how a short prompt meets the model at evaluation time.

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
book = Chapter("05_doc_masking", scale, seed, output_dir)
data = prepare(book.scale, output_dir, seed=seed)
off, on = "masking off", "masking on"
arms = [abl.Arm(off, stream={"doc_masking": False}), abl.Arm(on, recipe=True)]
SRC = "https://huggingface.co/blog/smollm3"
SHORT = Claim("Intra-document masking keeps short-context loss (vs attending across packed documents)", SRC,
              metric="final validation loss (nats/token)", direction="no_worse", margin=0.02)
FAR_FACT = Claim("Intra-document masking helps long context: a fact 2x-4x the training length back helps more",
                 SRC, metric="loss gain on the restated fact, fact 2x-4x the training length back (nats/token)",
                 direction="better", margin=0.02, higher_is_better=True, chance=0.0)
STABLE = Claim("Intra-document masking makes training more stable: smaller gradient-norm peaks", SRC,
               metric="largest gradient norm after warm-up (before clipping)", direction="better", margin=0.05)

# %% [markdown]
# ## The runs

# %%
ab = abl.run_arms("05_doc_masking", arms, book.scale, output_dir, data, after=abl.long_context_after(data, book.scale))
display(Markdown(abl.setup_table(ab)))

# %% [markdown]
# ## Loss and stability
# Training loss (5-step mean), validation loss, and the gradient norm before clipping: spikes in the
# gradient norm are what "less stable" would look like.

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
abl.plot_metric(ab, "loss", kind="train", smooth=5, ax=axes[0], ylabel="training loss (5-step mean)")
abl.plot_metric(ab, "valid_loss", ax=axes[1], ylabel="validation loss")
abl.plot_metric(ab, "grad_norm", kind="train", ax=axes[2], ylabel="gradient norm (before clipping)")
book.savefig(fig, "loss")
plt.show()

# %% [markdown]
# ## Long context and throughput
# The long-context report of chapter 04, and the median training throughput of each run. Masking changes which
# attention kernel path runs (a block-diagonal mask instead of a plain causal one), so its cost is measured,
# not assumed. The runs are sequential: on a machine shared with other work, tokens/s also reflects the load at
# the time each run happened (and the shared recipe runs may come from another chapter's session).

# %%
fig, axes = plt.subplots(1, 4, figsize=(19, 3.6))
plot_report(abl.long_context_reports(ab), axes[:3])
abl.plot_final(ab, lambda r: r.tokens_per_second, ax=axes[3], ylabel="training tokens / s (median)")
book.savefig(fig, "long_context_throughput")
plt.show()

# %% [markdown]
# ## Verdicts

# %%
lc = abl.long_context_value
peak = abl.grad_norm_peak(after_step=book.scale.warmup_steps)
ab.judge(book, SHORT, off, on, "valid_loss")
items = abl.long_context_items(ab)
ab.judge(book, FAR_FACT, off, on, lc("restate_gain_beyond"), items=items["cloze"],
         note=f"each held-out fact asked at {items['distances']} distance(s) past the training length")
ab.judge(book, STABLE, off, on, peak)
numbers = {"final validation loss": ("valid_loss", "nats/token"),
           "training tokens/s (median)": (lambda r: r.tokens_per_second, "tokens/s"),
           "largest gradient norm after warm-up": (peak, ""),
           "cloze accuracy past the training length": (lc("cloze_beyond"), ""),
           "loss gain from a fact past the training length": (lc("restate_gain_beyond"), "nats/token"),
           "loss past the training length": (lc("loss_beyond"), "nats/token")}
for row in abl.arm_numbers(ab, numbers):
    book.number(**row)
