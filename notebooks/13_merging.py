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
#     needs: [08_long_context, 09_midtraining, 12_apo]
# ---

# %% [markdown]
# # 13 · Merging: a soup of APO models, then 0.9 soup + 0.1 mid-training
#
# Alignment cost SmolLM3 long context (RULER dropped after APO; chapter 12). The recipe's last step wins it back by
# merging with MergeKit: first a *soup*, a uniform linear merge of the APO checkpoints, then a linear merge of
# **0.9** soup + **0.1** of a mid-training checkpoint "with strong long-context performance", which "recovered the
# base model's RULER score on contexts up to 128k" (blog, Model merging). Which mid-training checkpoint is not said:
# the book takes its mid-training chapter's final checkpoint (09), the one the SFT of chapter 11 started from.
#
# Every merge below is mergekit's (`smolbook.merging`: mergekit's Python API, absolute paths, no model card, the
# chat tokenizer and template carried into each merged folder, the mergekit YAML saved beside the weights). A sweep
# of the mid-training weight (0, 0.1, 0.2, 0.3, 0.5, 1) shows what 0.1 trades, on the chat tasks of chapter 12 and
# on the long-context probes of chapter 08.

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"
apo_loss = None  # the loss of chapter 12's APO runs to merge (None: the recipe's default, as in chapter 12)

# %%
import matplotlib.pyplot as plt
from IPython.display import display

from smolbook import Chapter
from smolbook.alignment import both_modes_by_slice, task_scores_by_slice
from smolbook.claims import Claim
from smolbook.data import build_chat_data, prepare
from smolbook.evaluate.longcontext import cloze_at, cloze_items, nearest_cloze_length, reports
from smolbook.merging import (CONFIG_FILE, linear_merge, mean, plot_sweep, read_merge_config, soup, soup_members,
                              sweep, sweep_choice, sweep_table)
from smolbook.recipe import load_post_training

# %%
book = Chapter("13_merging", scale, seed, output_dir)
s = book.scale
pt = load_post_training()
data = prepare(s, output_dir, seed=seed)
apo_loss = apo_loss or pt.value("apo", "default_loss_type")
w_soup, w_mid = pt.value("merge", "soup_weight"), pt.value("merge", "mid_training_weight")
weights = [0.0, w_mid, 0.2, 0.3, 0.5, 1.0]  # the sweep of the mid-training weight, the recipe's among them
apo = {k: book.start_from("12_apo", f"{apo_loss}-seed{k}") for k in book.seeds}
mid = book.start_from("09_midtraining")
base_long = book.start_from("08_long_context", "lc-64k")  # the extended base model: the level to win back
print(f"soup of {len(book.seeds)} APO seed(s) ({apo_loss}); recipe merge {w_soup} soup + {w_mid} mid-training (09)")

# %% [markdown]
# ## The soup and the recipe's merge

# %%
with book.timed("merge seconds, all merges"):
    members = soup_members(list(apo.values()))
    soup_path = book.checkpoint("soup", soup(members, book.dir / "soup"))
    recipe_path = linear_merge({soup_path: w_soup, mid: w_mid}, book.dir / f"soup{w_soup:g}-mid{w_mid:g}")
    points = sweep(soup_path, mid, weights, book.dir / "sweep", reuse={w_mid: recipe_path})
    # The same 0.9 / 0.1 merge per APO seed: the soup is one model, these three are the training-seed replicates
    # of the merge's effect on long context and on the APO gains.
    per_seed = {k: book.checkpoint(f"{apo_loss}-seed{k}-mid{w_mid:g}",
                                   linear_merge({p: w_soup, mid: w_mid}, book.dir / f"seed{k}-mid{w_mid:g}"))
                for k, p in apo.items()}
    for w in weights:
        if 0 < w < 1 and w != w_mid:  # the sweep's own merges; its ends are the soup and 09's model themselves
            book.checkpoint(f"sweep-mid{w:g}", points[w])
    book.number("soup members", len(members))
print(f"the recipe's merge: {recipe_path.name}; its mergekit YAML:\n{(recipe_path / CONFIG_FILE).read_text()}")

# %% [markdown]
# ## Task scores and long context along the sweep
#
# Task scores as in chapter 12 (held-out math, code and facts conversations, both modes, greedy), kept per slice of
# three disjoint slices of the held-out set; the long-context probe is chapter 08's cloze at a distance at the base
# length, where 08's model is above chance (4 choices, chance 0.25; at 4x it is at chance), on 64 held-out people.

# %%
with book.timed("task evaluation seconds"):
    chat = build_chat_data(s.name, seed=data.seed)
    heldout = chat.heldout_set(("math", "code", "facts"), per_kind=s.evaluation.task_items)
    sweep_labels = {w: f"w={w:g}" for w in weights}
    swept = {sweep_labels[w]: p for w, p in points.items()}
    merged = {f"APO seed {k} + mid": p for k, p in per_seed.items()}
    models = {**{f"APO seed {k}": p for k, p in apo.items()}, **swept, **merged}
    tasks = task_scores_by_slice(models, heldout, max_new_tokens=s.evaluation.task_tokens)
    both = both_modes_by_slice(tasks)  # label -> score per slice, both modes
    task = {label: mean(v) for label, v in both.items()}

# %%
with book.timed("long-context report seconds"):
    near = [nearest_cloze_length(data, s.name)]  # the base length: 08's model is above chance there, at 4x it is not
    lc_models = {"08 (extended base)": base_long, **swept, **merged}
    lc = reports(lc_models, data, s.name, near, n=s.evaluation.lc_probe_items, seed=seed, control=False,
                 loss_windows=1)
    cloze = {label: cloze_at(r, near) for label, r in lc.items()}
    cloze_n = cloze_items(lc["08 (extended base)"], near)
display(sweep_table(task, cloze, [*models, *lc_models]))

# %%
fig = plot_sweep(sweep_labels, task, cloze, long_context_level=cloze["08 (extended base)"], recipe_weight=w_mid)
book.savefig(fig, "merge_sweep", headline=True, caption="Task score and long-context cloze along the merge weight; "
             "the vertical line is the recipe's 0.1.")
plt.show()

# %% [markdown]
# ## Verdicts
#
# Declared with their margins before the runs are read. The soup and each point of the sweep are one model each, so
# (1) and (4) use the three held-out slices as replicates (the training seeds enter through the soup's members);
# (2) and (3) compare, per APO seed, that seed's model merged 0.9 / 0.1 with the mid-training checkpoint against
# 08's extended model (long context) and against the APO model itself (tasks).

# %%
CLAIMS = {
    "soup": Claim("The soup is no worse than its best member on tasks", "blog, Model merging",
                  "held-out task score, both modes (3 held-out slices)", "no_worse", margin=0.03,
                  higher_is_better=True, chance=0.0, accuracy=True),
    "long": Claim(f"{w_soup}/{w_mid} with mid-training recovers long context to the extended base's (08) level",
                  "blog, Model merging", "cloze accuracy at the base length", "no_worse", margin=0.05,
                  higher_is_better=True, chance=0.25, accuracy=True),
    "keeps": Claim(f"{w_soup}/{w_mid} keeps the APO gains on tasks: no worse than the APO model it starts from",
                   "blog, Model merging", "held-out task score, both modes", "no_worse",
                   margin=0.03, higher_is_better=True, chance=0.0, accuracy=True),
    "weight": Claim(f"{w_mid} is near the best weight of the sweep: no worse than the best other weight on tasks + "
                    "long context", "blog, Model merging", "task score + cloze at the base length (3 held-out slices)",
                    "no_worse", margin=0.05, higher_is_better=True, chance=0.25),  # chance: 0 + 0.25
}

# %%
best_member = max((f"APO seed {k}" for k in book.seeds), key=lambda m: task[m])
book.judge(CLAIMS["soup"], both[best_member], both["w=0"], baseline_name=f"best member ({best_member})",
           recipe_name="soup", items=len(heldout) // 3)
book.judge(CLAIMS["long"], cloze["08 (extended base)"], [cloze[f"APO seed {k} + mid"] for k in book.seeds],
           baseline_name="08 lc-64k", recipe_name=f"APO + {w_mid:g} mid", items=cloze_n)
_ = book.judge(CLAIMS["keeps"], [task[f"APO seed {k}"] for k in book.seeds],
               [task[f"APO seed {k} + mid"] for k in book.seeds], baseline_name="APO",
               recipe_name=f"APO + {w_mid:g} mid", items=len(heldout))

# %%
choice = sweep_choice(both, cloze, sweep_labels, recipe_weight=w_mid)
print(f"best weight of the sweep on tasks + long context: {choice.best:g} ({choice.mean(choice.best):.3f}; "
      f"{w_mid:g}: {choice.mean(w_mid):.3f})")
book.number("best sweep weight (tasks + long context)", choice.best)
book.judge(CLAIMS["weight"], choice.combined[choice.rival], choice.combined[w_mid],
           baseline_name=f"best other weight, w={choice.rival:g}", recipe_name=sweep_labels[w_mid],
           items=len(heldout) // 3, note=f"plus the same {cloze_n} cloze prompts in every slice")
for w in weights:
    book.number(f"task score (w={w:g})", round(task[sweep_labels[w]], 3))
    book.number(f"cloze @1x (w={w:g})", round(cloze[sweep_labels[w]], 3))
book.number("cloze @4x (08 extended base)", round(cloze["08 (extended base)"], 3))

# %% [markdown]
# ## The merged model, for the chapters after this one
#
# The recipe's merge is this chapter's final checkpoint: chapters 14 (evaluation) and 15 (inference) start from it.
# It is an ordinary Hugging Face folder, loaded here with plain transformers, with its mergekit YAML beside it.

# %%
from transformers import AutoModelForCausalLM, AutoTokenizer

final = book.checkpoint(recipe_path.name, recipe_path, final=True)
model = AutoModelForCausalLM.from_pretrained(final)
tok = AutoTokenizer.from_pretrained(final)
cfg = read_merge_config(final)
print(f"{final.name}: {sum(p.numel() for p in model.parameters()):,} parameters; eos {tok.eos_token}; "
      f"merged from {[(m['model'].split('/')[-2], m['parameters']['weight']) for m in cfg['models']]}")

# %% [markdown]
# **Verdict.** From this run: whether the soup kept its best member's task scores, whether 0.9 / 0.1 with the
# mid-training checkpoint brought the long-context probe back to the extended base model's level while keeping the
# APO gains, and where the best mid-training weight of the sweep lies at this scale.
