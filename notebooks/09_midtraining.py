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
#     needs: [08_long_context]
# ---

# %% [markdown]
# # 09 · Reasoning mid-training
#
# After long-context extension SmolLM3 read 35B tokens of reasoning traces (OpenThoughts3-1.2M and the DeepSeek-R1
# subset of Llama-Nemotron-Post-Training-Dataset v1.1) for 4 epochs, about 140B tokens, written in ChatML and packed
# "wrapped" into full rows, "to reason without targeting a particular domain". The blog later traced a drop on
# RULER, its long-context benchmark, to this stage.
#
# Here 08's final model continues on the scale's reasoning conversations (offline: the teacher's think-mode traces
# for the training prompts of math, code, facts and multi-turn questions, each checked for correctness; at
# small/full the released mid-training mixture) rendered by the book's chat template. Conversations are packed one
# after another into full rows, but the position ids restart at every conversation, so none attends into another:
# TRL's `packing_strategy="wrapped"` packs the same way but leaves positions running on, which in transformers
# means attention across conversations. Every token is in the loss. The epochs are the recipe's; the tokens per
# epoch are the scale's (`smolbook/scales.yaml`, `mid_training`; at `tiny` a few steps per seed, so that three
# seeds and the probes fit the chapter's three minutes: printed below). The claims measured: think-mode reasoning
# rises over 08's model (exact match, and the loss of the correct answer), and long context drops (the blog's RULER
# drop).

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"

# %%
import time

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from smolbook import Chapter
from smolbook.claims import Claim
from smolbook.data import prepare
from smolbook.data.chat import shared_chat_data
from smolbook.evaluate.chat import answer_loss, items_in, learning_curve, plot_learning_curve
from smolbook.evaluate.longcontext import loss_between, plot_report, reports
from smolbook.midtraining import REASONING_KINDS, recipe_line, seed_specs, think_scores, think_table
from smolbook.train import sweep

# %%
book = Chapter("09_midtraining", scale, seed, output_dir)
s = book.scale
data = prepare(s, output_dir, seed=seed)
L, (L32, L64) = s.seq_len, s.long_context
source = book.start_from("08_long_context")
b = s.budget("mid_training")
print(recipe_line(s))

# %% [markdown]
# ## One run per seed
# Each seed continues the same 08 model on the same conversations in its own order. The run spec names the
# `reasoning-traces` data builder and the pretraining loop as its trainer; below, the first row of the main run's
# data: where conversations start (position 0) and how many share a row.

# %%
specs = seed_specs(book.name, "chapter:08_long_context", source, s.name, output_dir, book.seeds, seed)
with book.timed("mid-training seconds, all seeds") as t:
    results = {k: r.result for (_, k), r in sweep(specs, desc="mid-training").items()}
main = results[seed]
train_rows = main.rows("train")
print(f"{len(book.seeds)} runs of {train_rows[-1]['step']} steps, {train_rows[-1]['tokens']:,} tokens each, "
      f"in {t.seconds:.0f} s; loss {train_rows[0]['loss']:.2f} -> {train_rows[-1]['loss']:.2f}")
book.number("mid-training tokens per seed", train_rows[-1]["tokens"], "tokens")

# %% [markdown]
# ## Reasoning before and after, in think mode
# Held-out problems of the same kinds (people, arithmetic and programs no training conversation holds), asked
# through the chat template in think mode and scored by exact match of the final answer; `format_ok` says whether
# the completion closed a think block and then answered. A second measure moves before exact match does: the loss
# of the correct think-mode answer (trace and final line) given the question, in nats per token.

# %%
n_eval = s.evaluation.midtraining_chat_items
heldout = shared_chat_data(s.name, data.seed).heldout_set(REASONING_KINDS, per_kind=2 * n_eval)
checkpoints = {"08 (long context)": source, **{f"09 seed {k}": r.checkpoint for k, r in results.items()}}
t0 = time.perf_counter()  # "evaluation and probe seconds" adds this to the probes' time below
records = think_scores(checkpoints, heldout, max_new_tokens=s.evaluation.trace_tokens)
seconds_eval = time.perf_counter() - t0
trace_loss = {rec["checkpoint"]: rec["answer loss"] for rec in records}
display(think_table(records))

# %% [markdown]
# ## The learning curve
# The main seed kept a checkpoint every quarter of its steps; each answers the same held-out problems in think mode,
# and the loss of the correct answer is read at each. The scale's mid-training budget (`smolbook/scales.yaml`,
# `mid_training`) was sized from this curve.

# %%
steps = main.checkpoints_by_step()
curve = learning_curve({0: source, **steps}, heldout, modes=("think",),
                       max_new_tokens=s.evaluation.trace_tokens, label="09")
curve_loss = {0: trace_loss["08 (long context)"]} | {k: answer_loss(p, heldout) for k, p in steps.items()}
fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
plot_learning_curve(curve, axes[:2], REASONING_KINDS, tokens_per_step=b.rows_per_step * b.seq_len,
                    panels=("format", "exact_match"))
axes[2].plot([k * b.rows_per_step * b.seq_len for k in curve_loss], list(curve_loss.values()), marker="o")
axes[2].set(xlabel="tokens trained", ylabel="nats per token", title="loss of the correct think-mode answer")
fig.suptitle(f"Held-out think-mode reasoning along mid-training (seed {seed}, {items_in(heldout, 'think')} problems)")
fig.tight_layout()
book.savefig(fig, "learning_curve", caption="Format adherence, exact match per kind and the loss of the correct "
             "answer on held-out problems in think mode, at each kept checkpoint of the main mid-training run.")
plt.show()

# %% [markdown]
# ## Long context before and after
# Chapter 08's report on 08's final model and on the main mid-training run: cloze at a distance from the base length
# to 8x it, and loss by position to the final training length (16x), the verdict's measure; the other seeds get the
# loss by position only (their cloze is read at the base length).

# %%
lengths = [L * m for m in (1, 4, 8)]  # cloze to 8x: the 16x prompts cost most and move least
n_probe = s.evaluation.probe_items
probe = dict(n=n_probe, seed=seed, loss_length=L64, loss_windows=2, control=False)
t0 = time.perf_counter()
rep = reports({"08 (long context)": source, "09 (mid-trained)": main.checkpoint}, data, s.name, lengths, **probe)
per_seed = {seed: rep["09 (mid-trained)"]} | {
    k: reports({"x": r.checkpoint}, data, s.name, [L], **probe)["x"] for k, r in results.items() if k != seed}
seconds_probe = time.perf_counter() - t0
display(pd.DataFrame([{"checkpoint": k, **{f"cloze @{r['length']}": round(r["accuracy"], 3) for r in v["cloze"]},
                       f"loss <{L}": round(loss_between(v, 0, L), 3), f"loss {L}-{L64}": round(loss_between(v, L, L64), 3)}
                      for k, v in rep.items()]))

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
by_ckpt = pd.DataFrame(records).set_index("checkpoint")
labels = list(by_ckpt.index)
axes[0].bar(range(len(labels)), by_ckpt["answer loss"], color=["C0"] + ["C1"] * (len(labels) - 1))
axes[0].set(xticks=range(len(labels)), xticklabels=labels, ylabel="nats per token",
            title=f"loss of the correct think-mode answer\n(exact match: 08 {by_ckpt['answer_em'].iloc[0]:.2f}, "
                  f"09 {by_ckpt['answer_em'].iloc[1:].mean():.2f})")
plot_report({label: [v] for label, v in rep.items()}, axes[1:], panels=("cloze", "loss"))
fig.suptitle("08's model against the mid-trained one: reasoning in think mode, and long context per length")
fig.tight_layout()
book.savefig(fig, "reasoning_and_long_context", headline=True,
             caption="Loss of the correct think-mode answer to held-out problems (08 and each mid-training seed; exact "
                     "match in the title), cloze at a "
                     "distance and loss by position for 08's model and the main mid-training run.")
plt.show()

# %% [markdown]
# ## Verdicts
# Declared with their margins before the numbers above are read. Each seed's mid-trained model is compared with
# 08's model (the same start for every seed). The long-context claim is the blog's drop: it holds when 08's model
# is better than the mid-trained one by the margin, in loss between the base and the final training length.

# %%
CLAIMS = {
    "reasoning": Claim("Reasoning mid-training raises think-mode reasoning on held-out problems over the "
                       "long-context model", "blog, Mid-training", "exact match, think mode (held-out math, code, "
                       "facts, multi-turn)", "better", margin=0.02, higher_is_better=True, chance=0.0, accuracy=True),
    "trace_loss": Claim("Reasoning mid-training makes correct think-mode answers to held-out problems more likely",
                        "blog, Mid-training", "loss of the reference think-mode answer (nats per token)", "better",
                        margin=0.05),
    "drop": Claim("Mid-training costs long context (the blog's RULER drop): the model before it is better at long "
                  "range", "blog, Model merging", f"loss at positions {L}-{L64} (nats)", "better", margin=0.02),
}

# %%
base = by_ckpt.loc["08 (long context)"]
book.judge(CLAIMS["reasoning"], base["answer_em"], [by_ckpt.loc[f"09 seed {k}", "answer_em"] for k in book.seeds],
           baseline_name="08", recipe_name="09", items=int(base["n"]))
book.judge(CLAIMS["trace_loss"], trace_loss["08 (long context)"],
           [trace_loss[f"09 seed {k}"] for k in book.seeds], baseline_name="08", recipe_name="09")
_ = book.judge(CLAIMS["drop"], [loss_between(per_seed[k], L, L64) for k in book.seeds],
               loss_between(rep["08 (long context)"], L, L64), baseline_name="09 (after)",
               recipe_name="08 (before)")

# %% [markdown]
# ## The mid-trained checkpoint
# The main run's final checkpoint is this chapter's: chapter 11 fine-tunes it and chapter 13 merges it back in.

# %%
for k in book.seeds:
    book.number(f"think-mode exact match, 09 seed {k}", round(by_ckpt.loc[f"09 seed {k}", "answer_em"], 3))
book.number("think-mode exact match, 08", round(base["answer_em"], 3))
book.number("think-mode answer loss, 08", round(trace_loss["08 (long context)"], 3), "nats")
book.number(f"think-mode answer loss, 09 seed {seed}", round(trace_loss[f"09 seed {seed}"], 3), "nats")
book.number(f"loss {L}-{L64}, 08", round(loss_between(rep["08 (long context)"], L, L64), 3), "nats")
book.number(f"loss {L}-{L64}, 09", round(loss_between(rep["09 (mid-trained)"], L, L64), 3), "nats")
book.number("evaluation and probe seconds", round(seconds_eval + seconds_probe, 1), "s")
last = train_rows[-1]
_ = book.checkpoint("mid", main.checkpoint, step=last["step"], tokens=last["tokens"], final=True)

# %% [markdown]
# **Verdict.** The verdicts above say, seed by seed against the margins fixed before the runs, whether mid-training
# on reasoning traces raised think-mode reasoning at this scale (exact match needs a model that solves held-out
# problems at all; a probe that stays at zero is reported as inconclusive, not tuned), whether it made correct
# answers more likely, and whether it cost long context as the blog found.
