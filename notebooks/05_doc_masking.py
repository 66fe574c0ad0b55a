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
# with long sequences faster and more stable. Source: <https://huggingface.co/blog/smollm3>
# ("Intra-Document Masking").
#
# **The experiment.** Two arms, same data, same seeds: masking off (positions run 0..T-1 across a whole
# packed row, attention crosses documents) and masking on (the recipe: positions restart at every document,
# and transformers keeps documents apart; see chapter 01 for the `position_ids` mechanics). We compare the
# validation loss, the long-context probes of chapter 04, and training throughput (tokens per second).
# The validation loss scores every held-out document on its own (from position 0, no other document in
# view), which is how a short prompt meets the model at evaluation time; both arms are scored that way.

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

book = Chapter("05_doc_masking", scale, seed, output_dir)
data = prepare(book.scale, output_dir)
arms = [abl.Arm("masking off", stream={"doc_masking": False}),
        abl.Arm("masking on", stream={"doc_masking": True}, recipe=True)]
off, on = (a.name for a in arms)

# %% [markdown]
# ## The runs

# %%
ab = abl.run_arms("05_doc_masking", arms, book.scale, output_dir, data, after=abl.long_context_eval(data, book.scale))
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
# The probes of chapter 04 (loss against position, copying at a distance, RULER), and the median training
# throughput of each run. Masking changes which attention kernel path runs (a block-diagonal mask instead of
# a plain causal one), so its cost is measured, not assumed. The runs are sequential: on a machine shared
# with other work, tokens/s also reflects the load at the time each run happened.

# %%
fig, axes = plt.subplots(1, 4, figsize=(19, 3.6))
abl.plot_long_context(ab, axes[:3])
abl.plot_final(ab, lambda r: r.tokens_per_second, ax=axes[3], ylabel="training tokens / s (median)")
book.savefig(fig, "long_context_throughput")
plt.show()

# %% [markdown]
# ## Verdicts
# The rule, fixed before the runs (`smolbook.ablations.VERDICT_RULE`):

# %%
print(abl.VERDICT_RULE)
src = "https://huggingface.co/blog/smollm3"
short = abl.decide(ab.values(off, "valid_loss"), ab.values(on, "valid_loss"), claim="no_worse")
book.verdict("Intra-document masking keeps short-context loss (vs attending across packed documents)",
             short.measured("final validation loss", off, on), short.status, source=src)
beyond = lambda r: r.final["loss_beyond"]  # noqa: E731
far = abl.decide(ab.values(off, beyond), ab.values(on, beyond), claim="better")
book.verdict("Intra-document masking helps long context: loss past the training length",
             far.measured("mean next-token loss at 1x-8x the training length", off, on), far.status, source=src)
for a in ab.arms:
    for key, fn, unit in (("final validation loss", lambda r: r.last("valid_loss"), "nats/token"),
                          ("training tokens/s (median)", lambda r: r.tokens_per_second, "tokens/s"),
                          ("max gradient norm", lambda r: max(r.series("grad_norm")[1]), ""),
                          ("loss past the training length", beyond, "nats/token"),
                          ("copy accuracy past the training length", lambda r: r.final["copy_accuracy_beyond"], ""),
                          ("RULER accuracy 2x-8x", lambda r: r.final["ruler_accuracy_beyond"], "")):
        v = abl.spread_summary(ab.values(a.name, fn))
        book.number(f"{key}, {a.name}", round(v["mean"], 4), unit,
                    f"{v['n']} seed(s), spread {None if v['spread'] is None else round(v['spread'], 4)}")
tps = {a.name: abl.spread_summary(ab.values(a.name, lambda r: r.tokens_per_second))["mean"] for a in ab.arms}
print(f"throughput: masking on runs at {tps[on] / tps[off]:.2f}x the tokens/s of masking off")
for d, what in ((short, "short context"), (far, "loss past the training length")):
    print(f"{what}: {d.status} - {d.reason}")
