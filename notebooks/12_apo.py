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
#     needs: [11_sft]
# ---

# %% [markdown]
# # 12 · Alignment: APO against DPO
#
# After SFT, SmolLM3 was aligned off-policy with **Anchored Preference Optimization** (APO), a variant of DPO: for
# no_think the Tulu-3 preference mixture, for think synthetic pairs whose chosen answer came from Qwen3-32B and the
# rejected one from Qwen3-0.6B, every pair capped at 24k tokens. The blog reports that alignment lifted math,
# science, instruction following, code, chat and multilingual scores, and that RULER (long context) dropped, which
# the merge of chapter 13 wins back. The blog names no APO variant: the book uses TRL's `apo_zero`
# (`post_training.yaml`, `apo.default_loss_type`), a chapter option
# (`smolbook run --only 12 --param apo_loss=apo_down`).
#
# Here the pairs are the book's own (the chosen answer from the solver, verified right; the rejected one from a
# weaker solver, verified wrong), in both modes; TRL's `DPOTrainer` trains the SFT model of chapter 11 through one
# run spec per loss and seed, APO and plain DPO (`loss_type="sigmoid"`) on the same pairs, budget and seeds. The
# scale's row length stands for the 24k cap.

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"
apo_loss = None  # None: the recipe's default (apo.default_loss_type); any TRL loss_type but sigmoid, the baseline

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from smolbook import Chapter
from smolbook.alignment import (DPO, LOSS_NAMES, apo_variant, arm_checkpoints, both_modes, claim_in_mode,
                                curves_figure, final_log_means, long_context_figure, mode_reaches_template,
                                pair_counts, pair_lengths, plot_task_scores, preference_spec, task_scores,
                                train_arms)
from smolbook.claims import Check, Claim
from smolbook.data import build_chat_data, prepare
from smolbook.evaluate.chat import items_in
from smolbook.evaluate.longcontext import cloze_at, cloze_items, nearest_cloze_length, reports
from smolbook.recipe import load_post_training
from smolbook.train import build_data, chat_tokenizer

# %%
book = Chapter("12_apo", scale, seed, output_dir)
s = book.scale
pt = load_post_training()
apo = apo_variant(apo_loss, pt.value("apo", "default_loss_type"))  # DPO ("sigmoid") is the baseline arm
data = prepare(s, output_dir, seed=seed)
source = book.start_from("11_sft")
budget = s.budget("preference")
print(f"{len(book.seeds)} seeds; losses {apo} and {DPO}; rows of {budget.seq_len} tokens stand for the recipe's "
      f"{pt.value('apo', 'max_tokens'):,}")

# %% [markdown]
# ## The pairs, in both modes
#
# The pairs of one run, as its data builder makes them (as many as its budget reads): prompts of the math, code and
# facts conversations in each mode, a pair kept only when the stronger source is right and the weaker wrong. The mode reaches TRL through
# the chat-template keyword `enable_thinking` of each row's `chat_template_kwargs` (TRL passes them to
# `apply_chat_template`; the template writes the mode into the system block), which the check below reads.

# %%
pairs = build_data(preference_spec(book.name, "chapter:11_sft", s.name, output_dir, seed, apo), data)
tok = chat_tokenizer(source)
lengths = pair_lengths(pairs, tok)
display(pair_counts(pairs))
over = sum(n > budget.seq_len for n in lengths)
print(f"{len(pairs)} pairs; longest {max(lengths)} tokens, {over} over the {budget.seq_len}-token cap "
      "(TRL truncates those)")
book.number("preference pairs", len(pairs))
book.number("pairs over the length cap", over)
flags = mode_reaches_template(pairs, tok)
_ = book.check(Check("Each pair's mode reaches TRL through enable_thinking: its rendered prompt carries its mode's "
                     "flag", "blog, Off-policy model alignment (pairs in both modes)"),
               ", ".join(f"{m}: {v:.0%} of pairs" for m, v in flags.items()), all(v == 1.0 for v in flags.values()))

# %% [markdown]
# ## APO and DPO, same pairs, budget and seeds

# %%
with book.timed("preference training seconds, all runs"):
    arms = train_arms(book.name, "chapter:11_sft", s.name, output_dir, book.seeds, [apo, DPO])
main = arms[apo][0]  # the chapter's final checkpoint (registered last): the APO model of this seed
for loss, runs in arms.items():
    for a in sorted(runs, key=lambda a: a is main):
        book.checkpoint(a.name, a.path, step=a.rows()[-1]["step"], final=a is main)
    last = final_log_means(runs)
    book.number(f"final reward margin ({loss})", round(last["rewards/margins"], 4))
    book.number(f"final preference accuracy ({loss})", round(last["rewards/accuracies"], 3))

fig = curves_figure(arms)
book.savefig(fig, "reward_curves", caption="Reward margin (chosen minus rejected implicit reward) and preference "
             "accuracy over training, APO against DPO, same pairs, budget and seeds.")
plt.show()

# %% [markdown]
# ## Task scores per mode, before and after
#
# Each checkpoint answers held-out conversations of the kinds the pairs cover, in each mode, greedily through its
# chat template; the score is the share answered correctly, the mean over kinds.

# %%
with book.timed("task evaluation seconds"):
    chat = build_chat_data(s.name, seed=data.seed)
    heldout = chat.heldout_set(("math", "code", "facts"), per_kind=s.evaluation.task_items)
    scores = task_scores(arm_checkpoints(arms, {"11 (SFT)": source}), heldout,
                         max_new_tokens=s.evaluation.task_tokens)
table = pd.DataFrame(scores).T.round(3)
display(table)
modes = list(table.columns)

fig = plot_task_scores(scores, arms, modes, start="11 (SFT)")
book.savefig(fig, "task_scores", caption="Held-out task scores (math, code, facts) per mode for the SFT model and "
             "after APO and DPO.")
plt.show()

# %% [markdown]
# ## The long-context report before and after

# %%
with book.timed("long-context report seconds"):
    # The verdict reads cloze at the base length: the distance where 08's model is above chance (chapter 08's
    # report), on enough held-out people that the seeds can differ; at 4x (the SFT and preference rows' length) it
    # is at chance before alignment already, and is drawn beside it.
    near = [nearest_cloze_length(data, s.name)]
    aligned = {f"{LOSS_NAMES[apo]} seed {a.seed}": a.path for a in arms[apo]}
    lc = reports({"11 (SFT)": source, **aligned}, data, s.name, sorted({near[0], 4 * s.seq_len}),
                 n=s.evaluation.lc_probe_items, seed=seed, loss_windows=2)
fig = long_context_figure(lc, before="11 (SFT)", after=LOSS_NAMES[apo])
book.savefig(fig, "long_context", caption="Cloze at a distance, the far fact's worth in loss and loss by position, "
             "before and after alignment.")
plt.show()

# %% [markdown]
# ## Verdicts
#
# Declared with their margins before the runs are read. Per seed, each aligned model is compared with the SFT model
# it started from (the same for every seed).

# %%
CLAIMS = {
    "tasks": Claim("Alignment improves task scores over SFT in {mode} mode", "blog, Off-policy model alignment",
                   "held-out task score ({mode})", "better", margin=0.02, higher_is_better=True, chance=0.0,
                   accuracy=True),
    "apo": Claim("APO is at least as good as DPO at the same budget (the recipe's choice)",
                 "blog, Off-policy model alignment", "held-out task score, both modes", "no_worse", margin=0.03,
                 higher_is_better=True, chance=0.0, accuracy=True),
    "lc": Claim("Long context drops after alignment: the SFT model beats the aligned one at the base length",
                "blog, Off-policy model alignment (RULER drop)", "cloze accuracy at the base length", "better",
                margin=0.02, higher_is_better=True, chance=0.25, accuracy=True),
}

# %%
sft = scores["11 (SFT)"]
for mode in modes:
    book.judge(claim_in_mode(CLAIMS["tasks"], mode), sft[mode], [scores[a.label][mode] for a in arms[apo]],
               baseline_name="11 (SFT)", recipe_name=LOSS_NAMES[apo], items=items_in(heldout, mode))
book.judge(CLAIMS["apo"], [both_modes(scores[a.label]) for a in arms[DPO]],
           [both_modes(scores[a.label]) for a in arms[apo]], baseline_name=LOSS_NAMES[DPO],
           recipe_name=LOSS_NAMES[apo], items=len(heldout))
book.judge(CLAIMS["lc"], [cloze_at(lc[k], near) for k in aligned], cloze_at(lc["11 (SFT)"], near),
           baseline_name="after APO", recipe_name="11 (SFT)", items=cloze_items(lc["11 (SFT)"], near))
for label, by_mode in scores.items():
    for mode, v in by_mode.items():
        book.number(f"task score {mode} ({label})", round(v, 3))

# %% [markdown]
# **Verdict.** The figures and verdicts above come from this run: whether preference training lifted the held-out
# task scores in each mode over the SFT model, whether APO did at least as well as DPO with the same pairs, budget
# and seeds, and whether the long-context probe fell after alignment, as the blog saw with RULER. The chapter's
# final checkpoint is the seed-`seed` APO model; chapter 13 merges every seed's.
