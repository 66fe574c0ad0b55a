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
#     needs: [07_pretraining, 08_long_context, 09_midtraining, 11_sft, 12_apo, 13_merging]
# ---

# %% [markdown]
# # 14 · Evaluation: every checkpoint through lighteval
#
# "All evaluations are zero-shot unless stated otherwise, and we use lighteval" (model card). SmolLM3's tables
# score the base model on cloze-form (CF) and multiple-choice-form (MCF) questions, generative math and code, and
# translation; the instruct model on math, code, instruction following (IFEval), tool calling (BFCL) and more,
# **in both modes** (`/think` and `/no_think`); the blog then compares its checkpoints by **win rate**: for each
# checkpoint, the share of (benchmark, other checkpoint) pairs it wins.
#
# Here every checkpoint of the recipe's line this run registered — the three pretraining stages, both long-context
# stages, mid-training, SFT, APO and DPO, the soup and the merges — goes through the same suites, run by lighteval's own pipeline (its
# transformers backend, offline) on the book's tasks written as lighteval custom tasks
# (`smolbook/evaluate/lighteval_tasks.py`): cloze as CF (length-normalised log-likelihood) and MCF, arithmetic,
# code output and translation as generative exact match, and the held-out conversations of every kind in both
# modes, scored by the book's own scorers (answer exact match, IFEval's checkers, tool calls parsed and compared).
# The same command runs outside the book: `smolbook eval CHECKPOINT --suite base|chat --json`. Beside them, the
# long-context probe of chapter 08 (a fact recalled from 8× the base length back) for every checkpoint.

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"

# %%
import matplotlib.pyplot as plt
import pandas as pd

from smolbook import Chapter
from smolbook.claims import Check, Claim
from smolbook.evaluate.lighteval_book import (LONG_CONTEXT, card_beside, describe_sizes, eval_sizes,
                                              evaluate_registered, paired, plot_scores, plot_win_rate, score_columns,
                                              score_table, stage_values, win_rates)
from smolbook.evaluate.lighteval_full import full_commands, released_tasks

# %%
book = Chapter("14_evaluation", scale, seed, output_dir)
s = book.scale
sizes = eval_sizes(s)
# The recipe's order of post-training stages, each the final checkpoint of its chapter (or its seeds' checkpoints):
# the base model is the long-context one, which mid-training continues.
STAGES = {"base": "08_long_context", "mid-training": "09_midtraining", "SFT": "11_sft", "APO": "12_apo",
          "merge": "13_merging"}
# The recipe's line of checkpoints; the chapters' ablation arms (07's constant learning rate, 08's NoPE and
# upsampling twins, 11's control arms) were judged in their own chapters; 11 keeps its recipe arm's seeds.
ONLY = {"07_pretraining": ("stable", "stable-2", "decay", "pretrain"), "08_long_context": ("lc-32k", "lc-64k"),
        "11_sft": ("recipe", "sft")}
for chapter in book.needs:
    book.start_from(chapter)   # a clear error names the chapter to run first when one is missing
print(describe_sizes(s.name, sizes))

# %% [markdown]
# ## Claims, fixed before the runs
# The recipe orders its post-training so that each stage adds to the last: mid-training on reasoning traces, SFT
# in both modes, APO on preference pairs, then a merge. Each step is judged on the chat score (mean of the two
# modes' per-row correctness) with a margin of 0.02 (a score at the floor in both stages is inconclusive: the probe did
# not move). The blog's merge exists to win back long context that APO
# lost: the merge should be no worse than the long-context checkpoint the chain started from (margin 0.05, chance
# 0.25). Whatever the numbers say is what the verdicts say.

# %%
chain = list(STAGES)
STEP_CLAIMS = {(a, b): Claim(f"The recipe's order improves the chat tasks: {b} beats {a}",
                             "blog, Post-training (mid-training, SFT, APO) and Model merging", "chat score (0-1)",
                             "better", margin=0.02, higher_is_better=True, chance=0.0, accuracy=True)
               for a, b in zip(chain, chain[1:])}
LC_KEPT = Claim("The merge keeps long context: no worse than the long-context checkpoint", "blog, Model merging",
                f"cloze accuracy, the fact {', '.join(f'{n // s.seq_len}x' for n in sizes.lc_lengths)} the base length back",
                "no_worse", margin=0.05, higher_is_better=True, chance=0.25, accuracy=True)
SUITE = Check("lighteval's pipeline scores the book's tasks offline on every registered checkpoint",
              "model card: 'we use lighteval'")

# %% [markdown]
# ## Every checkpoint, the same suites
# One lighteval run per checkpoint (base and chat tasks together); its results JSON and per-item details stay in
# `lighteval/<checkpoint>/all/` of the run folder, beside the items it read.

# %%
with book.timed("evaluation wall time") as wall:
    rows = evaluate_registered(output_dir, s, seed=seed, sizes=sizes, chapters=book.needs, only=ONLY)
    wall.note = f"{len(rows)} checkpoints, scale {s.name}"
tasks = score_columns(rows)
print(f"{len(rows)} checkpoints in {wall.seconds:.0f} s")
pd.DataFrame(score_table(rows, tasks)).set_index("checkpoint").round(3)

# %%
_ = book.check(SUITE, f"{len(rows)} checkpoints x {len(tasks) - 1} lighteval tasks, every score in [0, 1]",
           bool(rows) and all(r.get(t) is None or 0 <= r[t] <= 1 for r in rows for t in tasks))
fig = plot_scores(rows, tasks)
book.savefig(fig, "scores", caption="Every registered checkpoint (rows) on every task (columns): lighteval's scores "
                                    "of the book's tasks, and the long-context cloze.")
plt.show()

# %% [markdown]
# ## Win rate
# As the blog's figure: for each checkpoint, the share of (task, other checkpoint) pairs it wins (a tie counts
# half; dotted line: 0.5). The chain's final checkpoints are highlighted.

# %%
rates = win_rates(rows, tasks)
finals = [r["label"] for r in rows if r["chapter_final"] and r["chapter"] in STAGES.values()]
fig = plot_win_rate(rates, highlight=finals)
book.savefig(fig, "win_rate", headline=True,
             caption="Win rate of each registered checkpoint over the book's tasks (share of task x other-checkpoint "
                     "pairs won; ties half). Red: the final checkpoint of each stage of the recipe's chain.")
plt.show()
for label, rate in sorted(rates.items(), key=lambda kv: -kv[1])[:3]:
    book.number(f"win rate {label}", round(rate, 3))

# %% [markdown]
# ## The verdicts
# Each step of the chain, stage against the stage before, seed by seed where the chapters trained seeds (APO's
# seeds; for the merge, its per-seed merges when chapter 13 made them, the soup being one model of all seeds); a
# stage with one checkpoint is the common start of the next stage's seeds. Then the merge's long context against
# chapter 08's final checkpoint, the model the chain started from.

# %%
chat = {stage: stage_values(rows, chapter, "chat") for stage, chapter in STAGES.items()}
for (a, b), claim in STEP_CLAIMS.items():
    base_v, recipe_v = paired(chat[a], chat[b])
    book.judge(claim, base_v, recipe_v, baseline_name=a, recipe_name=b, items=sizes.chat_items)
lc_before, lc_merge = paired(stage_values(rows, STAGES["base"], LONG_CONTEXT),
                             stage_values(rows, STAGES["merge"], LONG_CONTEXT))
_ = book.judge(LC_KEPT, lc_before, lc_merge, baseline_name="long context (08)", recipe_name="merge",
               items=sizes.lc_total)

# %% [markdown]
# ## The model card beside this scale
# The released SmolLM3-3B's scores (model card, `smolbook/evaluate/model_card.yaml`) beside the book task that
# stands for each row, for the chain's final checkpoints. At `full` the released model's scores are the target; at
# this scale they are a reference only — a model of about a million parameters on generated text is not compared
# with a 3B model on real benchmarks.

# %%
by_label = {r["label"]: r for r in rows}
shown = [r["label"] for r in rows if r["chapter_final"] and r["chapter"] in (STAGES["base"], STAGES["merge"])]
pd.DataFrame(card_beside(by_label, shown))

# %% [markdown]
# ## At `full`: the released evaluation
# The released task lists, as lighteval 0.13 reads them, run on the vLLM backend (base list; instruct list in both
# modes, the mode set by `/think` or `/no_think` as the system prompt). Tasks lighteval ships were checked against
# its own registry here; the `custom|` tasks' definitions were never published, so they are listed, not invented.

# %%
status = pd.DataFrame([{"list": w, "task": t.line, "0.13 syntax": t.spec, "status": t.status}
                       for w in ("base", "instruct") for t in released_tasks(w)])
print(status.groupby(["list", "status"]).size().to_string())
for c in full_commands("HuggingFaceTB/SmolLM3-3B"):
    print(f"\n# {c.name}: {len(c.tasks)} tasks; left out: {len(c.left_out)} custom tasks\n{c.command[:300]}"
          + (" ..." if len(c.command) > 300 else ""))

# %% [markdown]
# **Verdict.** Every number above came from this run's checkpoints through lighteval. The chain's verdicts say,
# step by step, whether each stage of post-training improved the chat tasks at this scale by the margin fixed
# above, and whether the merge kept the long context of chapter 08's model; an under-powered step (one checkpoint
# per stage) is reported as inconclusive, not as a result.
