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
# # 03 · Ablation: grouped-query attention
#
# **The claim.** SmolLM3 replaces multi-head attention (MHA) with grouped-query attention (GQA): 16 query
# heads share 4 key/value heads, four query heads per KV head. The SmolLM3 blog reports that in its
# ablations (a 3B model on 100B tokens of FineWeb-Edu) GQA with 4 groups matched the performance of
# multi-head attention while cutting the KV cache, the memory that grows with context length at inference.
# Source: <https://huggingface.co/blog/smollm3> ("Grouped Query Attention").
#
# **The experiment.** Two arms on the same data from the same seeds: GQA (the recipe: 4 query heads per KV head)
# and MHA (one KV head per query head). GQA drops key/value weights, so MHA's MLP is narrowed until the
# parameter counts match: the comparison is about how the attention spends its parameters, not how many there
# are. The GQA arm is the recipe's own model, trained once per seed and shared with chapters 04-06. The claim
# is about loss alone, so MHA trains for the first 60% of the recipe arm's run and is compared with it at that
# step (the learning rate is constant after warm-up, so the shorter run is exactly the first part of a longer one).

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"

# %%
import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from smolbook import Chapter
from smolbook import ablations as abl
from smolbook.claims import Check, Claim
from smolbook.data import prepare
from smolbook.model import describe

# %%
book = Chapter("03_gqa", scale, seed, output_dir)
data = prepare(book.scale, output_dir, seed=seed)
heads = book.scale.model.num_attention_heads
arms = [abl.Arm("MHA", model={"num_key_value_heads": heads}, match_params_to="GQA",
                tokens=abl.short_tokens(book.scale, 0.6)),
        abl.Arm("GQA", recipe=True)]
SRC = "https://huggingface.co/blog/smollm3"
LOSS = Claim("GQA (4 query heads per KV head) matches multi-head attention's loss", SRC,
             metric="validation loss at the end of the MHA run (nats/token)", direction="no_worse", margin=0.02)

# %% [markdown]
# ## The runs
# Every arm trains on the scale's first-stage mixture, for each of the scale's seeds.

# %%
ab = abl.run_arms("03_gqa", arms, book.scale, output_dir, data)
display(Markdown(abl.setup_table(ab)))

# %% [markdown]
# ## Loss curves
# Thin lines are single seeds, thick lines their mean. The validation loss is the mean over the five
# domains of held-out documents.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
abl.plot_metric(ab, "loss", kind="train", smooth=5, ax=axes[0], ylabel="training loss (5-step mean)")
abl.plot_metric(ab, "valid_loss", ax=axes[1], ylabel="validation loss")
book.savefig(fig, "loss")
plt.show()

# %% [markdown]
# ## What GQA saves: the KV cache
# Each generated token keeps a key and a value vector per KV head in every layer. With the released 3B shape
# (36 layers, head dim 128, bf16) that is the difference below, multiplied by the context length.

# %%
full_gqa, full_mha = describe("smollm3-3b"), describe("smollm3-3b", num_key_value_heads=16)
released = {"MHA": full_mha["kv_cache_bytes_per_token_bf16"], "GQA (recipe)": full_gqa["kv_cache_bytes_per_token_bf16"]}
kv = {a.name: ab.arm_runs(a.name)[0].kv_cache_bytes_per_token for a in ab.arms}
fig = abl.plot_kv_cache(kv, book.scale.name, released)
book.savefig(fig, "kv_cache")
plt.show()
for name, b in kv.items():
    book.number(f"KV cache per token, {name} ({book.scale.name})", b, "bytes")
book.number("KV cache per token, SmolLM3-3B GQA", released["GQA (recipe)"], "bytes", "bf16")
book.number("KV cache per token, SmolLM3-3B as MHA", released["MHA"], "bytes", "bf16")

# %% [markdown]
# ## Verdict
# The claim is judged seed by seed at the last step of the MHA runs. That GQA's KV cache is a quarter of
# MHA's follows from the shapes: it is an implementation check, not evidence.

# %%
step = ab.steps("MHA")
ab.judge(book, LOSS, "MHA", "GQA", "valid_loss", step=step,
         note=f"parameters MHA {ab.arm_runs('MHA')[0].parameters:,} / GQA {ab.arm_runs('GQA')[0].parameters:,}")
book.check(Check("GQA's KV cache is 1/4 of MHA's (4 query heads per KV head)", "the model config"),
           f"{kv['GQA']:,} vs {kv['MHA']:,} bytes per token ({kv['GQA'] / kv['MHA']:.2f}x)",
           kv["GQA"] * heads == kv["MHA"] * book.scale.model.num_key_value_heads)
for row in abl.arm_numbers(ab, {f"validation loss at step {step}": ("valid_loss", "nats/token")}, step=step,
                           note="{n} seeds, spread {spread}"):
    book.number(**row)
