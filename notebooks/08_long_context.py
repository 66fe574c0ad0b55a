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
#     needs: [04_nope, 07_pretraining]
# ---

# %% [markdown]
# # 08 · Long context: 4k → 32k → 64k, then YaRN ×2
#
# After pretraining at 4k tokens, SmolLM3 was taught long context in two more runs (released configs
# `long_context_4k_to_32k.yaml` and `long_context_32k_to_64.yaml`): 50B tokens at 32k with RoPE θ raised from 50k
# to **2M** (the blog says 1.5M; the config's 2M is what ran), then 50B tokens at 64k with θ **5M** and a fresh
# optimizer; each at a peak learning rate of 2e-5 with 1,000 warm-up steps and a cosine decay, on the `lc-32k` and
# `lc-64k` mixtures. At inference YaRN ×2 stretches the 64k model to 128k. The blog's claims: NoPE plus longer
# sequences plus a larger θ suffice; upsampling long documents did not help further; the model works to 64k and,
# with YaRN, 128k.
#
# Here the same two stages run at this scale's lengths (at `tiny`: 256 → 2,048 → 4,096), every number from the
# recipe data and the scale's budgets, one run spec per stage, repeated over seeds (the data order). A long-context
# report reads each checkpoint at 1× to 16× the base length (16× is the final training length): cloze at a
# distance (a held-out person's fact, filler, then the question; 4 choices, chance 0.25) with its control (the fact
# absent), what the far-away fact is worth in loss, and loss against position up to 32× (twice the final length,
# where YaRN claims to reach).

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display
from transformers import AutoConfig

from smolbook import Chapter
from smolbook.claims import Claim
from smolbook.data import prepare
from smolbook.evaluate.longcontext import cloze_at, cloze_items, loss_between, plot_report, reports
from smolbook.extension import extend, recipe_parallelism, report_rows, save_yarn, theta_table, verdict_probe
from smolbook.recipe import load_post_training

# %%
book = Chapter("08_long_context", scale, seed, output_dir)
s = book.scale
data = prepare(s, output_dir, seed=seed)
L, (L32, L64) = s.seq_len, s.long_context
lengths = [L * m for m in (1, 2, 4, 8, 16)]  # the cloze probe up to the final training length
n_probe = s.evaluation.probe_items
source = book.start_from("07_pretraining")
print(f"base length {L}, stages at {L32} and {L64}; {len(book.seeds)} seeds; cloze at {lengths}, loss to {2 * L64}")
thetas = theta_table(s.name)
display(pd.DataFrame(thetas))
for row in thetas:
    book.number(f"{row['stage']} theta / seq_len at {s.name}", row[f"{s.name} theta / seq_len"],
                note=f"recipe {row['recipe theta / seq_len']}")

# %% [markdown]
# θ is the recipe's at every scale, so θ / sequence length is far larger here than in the recipe (the table): a
# short row turns the slowest rotary frequencies through a smaller angle. That is a property of this scale, stated
# here rather than tuned away. Each stage's tokens are the scale's budget (chapter 00 lists it against the recipe's
# share of pretraining).
#
# How the rows fit is a difference too. The recipe (nanotron) split each 32k/64k row over GPUs with tensor and
# context parallelism (printed below from the configs). The book has neither: at `full` it runs the same stages
# with FSDP over whole rows, activation checkpointing per decoder layer, and the loss computed in chunks of
# positions (`smolbook.train.chunked_loss`: a 64k row's logits alone would take 17 GB in bf16), so one GPU holds
# one row's activations. Same schedule and tokens per step; a different way to fit them.
#
# ## The two stages, per seed

# %%
print("\n".join(recipe_parallelism(s.name)))
with book.timed("extension wall time, all seeds"):
    chains = extend(book.name, "chapter:07_pretraining", s.name, output_dir, book.seeds)
main = chains[0]
for stage, res in main.results.items():
    rows = res.rows("train")
    book.number(f"{stage} tokens per seed", rows[-1]["tokens"], "tokens")
    book.number(f"{stage} seconds (seed {main.seed})", round(rows[-1]["elapsed_s"], 1), "s")
yarn_factor = load_post_training().value("inference", "yarn_factor")
yarn = {c.seed: book.checkpoint(f"{c.prefix}lc-64k-yarn", save_yarn(c.path(), book.dir / f"{c.prefix}lc-64k-yarn",
                                                                      yarn_factor, L64))
        for c in chains}

# %% [markdown]
# ## The long-context report per checkpoint
#
# One library call per checkpoint: cloze at a distance at 1×–16× the base length with its control (the fact
# absent), what the far fact is worth in loss, and loss by position up to twice the final training length (where
# only YaRN has a claim).

# %%
t0 = time.perf_counter()  # the report and every verdict probe, to the controls' figure
main_ckpts = {"07 (pretrained)": source, "after lc-32k": main.path("lc-32k"),
              "after lc-64k": main.path(), "lc-64k + YaRN x2": yarn[main.seed]}
probe = dict(n=n_probe, seed=seed, loss_length=2 * L64)  # every report reads the same prompts and windows
rep = reports(main_ckpts, data, s.name, lengths, loss_windows=4, **probe)
display(pd.DataFrame(report_rows(rep, L, L64)))

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
plot_report({k: [v] for k, v in rep.items()}, axes)
for ax in axes:
    for length in (L32, L64):
        ax.axvline(length / L, color="grey", ls=":", lw=0.8)
fig.suptitle("Long-context probes against context length (dashed: base length; dotted: the two extension lengths)")
fig.tight_layout()
book.savefig(fig, "long_context_report", headline=True,
             caption="Cloze at a distance (dotted lines: the fact absent), the far fact's worth in loss, and loss by "
                     "position, for the pretrained model, each extension stage and YaRN x2.")
plt.show()

# %% [markdown]
# ## Verdicts
#
# Each claim is declared with its margin before the runs below are read (the rule prints with the first verdict).
# Per seed, the extended model is compared with the model it started from (07's, the same for every seed). Loss by
# position is the probe with the most power here: the cloze probe needs a model that already retrieves a fact from
# 8× its training length away, which a model of this size may never do. Read loss by position with one caveat: its
# windows are held-out documents run together without a separator, and every model here was trained with
# document masking, so far positions also measure how well a model ignores unrelated earlier documents.

# %%
CLAIMS = {
    "extends": Claim("Extension makes the model use longer context: next-token loss between the base and the final "
                     "training length falls below the pretrained model's", "blog, Long context extension",
                     f"loss at positions {L}-{L64} (nats)", "better", margin=0.05),
    "probe": Claim("Extension makes the model retrieve far facts: cloze at 8x-16x the base length improves over the "
                   "pretrained model", "blog, Long context extension", "cloze accuracy at 8x-16x", "better",
                   margin=0.05, higher_is_better=True, chance=0.25, accuracy=True),
    "short": Claim("Short-context ability survives extension: loss within the base length no worse than before",
                   "blog, Long context extension", f"loss at positions below {L} (nats)", "no_worse", margin=0.05),
    "yarn": Claim("YaRN x2 extends the usable context to twice the final training length", "model card, Long context",
                  f"loss at positions {L64}-{2 * L64} (nats)", "better", margin=0.05),
}

# %%
far = [L32, L64]
per_seed = {main.seed: {"lc-64k": rep["after lc-64k"], "yarn": rep["lc-64k + YaRN x2"]}}
for c in chains[1:]:
    per_seed[c.seed] = {"lc-64k": verdict_probe(c.path(), data, s.name, far, **probe),
                        "yarn": verdict_probe(yarn[c.seed], data, s.name, [L], **probe)}
base = rep["07 (pretrained)"]
ext = [per_seed[c.seed]["lc-64k"] for c in chains]

# %%
book.judge(CLAIMS["extends"], loss_between(base, L, L64), [loss_between(r, L, L64) for r in ext],
           baseline_name="07", recipe_name="lc-64k")
book.judge(CLAIMS["probe"], cloze_at(base, far), [cloze_at(r, far) for r in ext],
           baseline_name="07", recipe_name="lc-64k", items=cloze_items(base, far))
book.judge(CLAIMS["short"], loss_between(base, 0, L), [loss_between(r, 0, L) for r in ext],
           baseline_name="07", recipe_name="lc-64k")
_ = book.judge(CLAIMS["yarn"], [loss_between(r, L64, 2 * L64) for r in ext],
               [loss_between(per_seed[c.seed]["yarn"], L64, 2 * L64) for c in chains], baseline_name="no YaRN",
               recipe_name="YaRN x2")

# %% [markdown]
# ### NoPE after extension, and upsampling long documents
#
# The blog measured NoPE's benefit after extension. A fair twin needs the same pretraining with rotary embeddings in
# every layer: chapter 04 trained exactly that pair (the recipe's NoPE-every-4th-layer arm and a RoPE-everywhere arm,
# the same data and seeds), so both of its arms go through the same two stages here; retraining 07 with every layer
# rotary would cost a full pretraining run per seed for the same comparison. The second control repeats the stages
# from 07's model with documents longer than the base length drawn four times as often. Both are judged on the
# cloze probe at the two extension lengths and on loss between the base and the final length.

# %%
nope_arms = {arm: [book.start_from("04_nope", f"{arm}-seed{k}") for k in book.seeds] for arm in ("recipe", "rope")}
twin = {arm: extend(book.name, dict(zip(book.seeds, paths)), s.name, output_dir, book.seeds, prefix=f"04{arm}-",
                    evaluate=False)
        for arm, paths in nope_arms.items()}
upsampled = extend(book.name, "chapter:07_pretraining", s.name, output_dir, book.seeds, prefix="upsampled-",
                   data_options={"upsample_long": [L + 1, 4]}, evaluate=False)
twin_rep = {arm: [verdict_probe(c.path(), data, s.name, far, **probe) for c in cs] for arm, cs in twin.items()}
up_rep = [verdict_probe(c.path(), data, s.name, far, **probe) for c in upsampled]

# %%
CLAIMS |= {
    "nope": Claim("NoPE helps after extension: the NoPE-every-4th-layer model beats its RoPE-everywhere twin at long "
                  "context, both extended the same way", "blog, NoPE ablation", "cloze accuracy at 8x-16x", "better",
                  margin=0.03, higher_is_better=True, chance=0.25, accuracy=True),
    "nope_loss": Claim("NoPE helps after extension, in loss: the NoPE twin's loss between the base and the final "
                       "length is lower", "blog, NoPE ablation", f"loss at positions {L}-{L64} (nats)", "better",
                       margin=0.02),
    "upsample": Claim("Upsampling long documents does not help further: the recipe's mixture is no worse than the "
                      "same stages with long documents drawn 4x as often", "blog, Long context extension",
                      f"loss at positions {L}-{L64} (nats)", "no_worse", margin=0.05),
}

# %%
book.judge(CLAIMS["nope"], [cloze_at(r, far) for r in twin_rep["rope"]], [cloze_at(r, far) for r in twin_rep["recipe"]],
           baseline_name="RoPE everywhere", recipe_name="NoPE every 4th", items=cloze_items(twin_rep["recipe"][0], far))
book.judge(CLAIMS["nope_loss"], [loss_between(r, L, L64) for r in twin_rep["rope"]],
           [loss_between(r, L, L64) for r in twin_rep["recipe"]], baseline_name="RoPE everywhere",
           recipe_name="NoPE every 4th")
_ = book.judge(CLAIMS["upsample"], [loss_between(r, L, L64) for r in up_rep], [loss_between(r, L, L64) for r in ext],
               baseline_name="long docs x4", recipe_name="recipe mixture")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
arms = {"NoPE every 4th (04 recipe arm)": twin_rep["recipe"], "RoPE everywhere (04 twin)": twin_rep["rope"],
        "07 extended, recipe mixture": ext, "07 extended, long docs x4": up_rep}
plot_report(arms, axes, panels=("cloze", "loss"))
for ax in axes:
    ax.axvline(L64 / L, color="grey", ls=":", lw=0.8)  # the final training length
fig.suptitle("After both extension stages: NoPE vs RoPE twin, and the upsampling control (mean over seeds)")
fig.tight_layout()
book.savefig(fig, "nope_and_upsampling", caption="Cloze at the two extension lengths and loss by position after both "
             "stages: chapter 04's two arms extended the same way, and 07's model extended on the recipe mixture or "
             "with long documents drawn four times as often.")
plt.show()
book.number("report and verdict probes seconds", round(time.perf_counter() - t0, 1), "s")

# %% [markdown]
# ## The extended checkpoint, loaded by plain transformers
# The final checkpoint of this chapter is the main chain's `lc-64k`; its YaRN ×2 variant sits beside it. Both are
# ordinary Hugging Face folders: the config carries the stage-2 θ, the YaRN variant `rope_type: yarn`, factor 2.

# %%
for label, path in (("lc-64k", main.path()), ("lc-64k + YaRN", yarn[main.seed])):
    cfg = AutoConfig.from_pretrained(path)
    print(f"{label:<14} {cfg.rope_parameters}  max_position_embeddings {cfg.max_position_embeddings:,}")
for label, r in rep.items():
    for row in r["cloze"]:
        book.number(f"cloze @{row['length']} ({label})", round(row["accuracy"], 3))

# %% [markdown]
# **Verdict.** The table and figures above come from this run; the verdicts say, seed by seed against the margins
# fixed above, whether the extension made the model use longer context at this scale, whether short context
# survived, whether YaRN doubled the usable context, and how NoPE and long-document upsampling fared.
