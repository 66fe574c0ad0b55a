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
#     needs: []
# ---

# %% [markdown]
# # 00 · Blueprint: the SmolLM3 recipe as data
#
# SmolLM3 is a 3B decoder pretrained on about 11T tokens in three stages, then taught long
# context in two more. Hugging Face told the story in a blog post
# ([huggingface.co/blog/smollm3](https://huggingface.co/blog/smollm3), July 2025) and released the
# nanotron configs that actually ran. This chapter reads the configs as data: the architecture,
# the optimizer, the learning-rate schedule, the five data stages and every dataset of every
# mixture, transcribed into `smolbook/recipe/smollm3.yaml` (the tests check each value against
# the released files).
#
# Then it puts the blog's sentences beside the configs' numbers. The blog's statements are data
# too (a small table in the same file, each with its stated precision), so every row of the
# ledger at the end is computed: where the two disagree, the disagreement falls out of the
# arithmetic rather than being typed in.
#
# Nothing here trains; the chapter is the same at every scale. Later chapters build the recipe at
# the scale you chose from these facts.

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from smolbook import Chapter
from smolbook.recipe import CATEGORIES, facts_of, human_tokens, ledger, load_recipe, share_rows, stage_rows
from smolbook.recipe_plots import departure_numbers, ledger_verdicts, plot_lr_schedule, plot_stage_shares

book = Chapter("00_blueprint", scale, seed, output_dir)
recipe = load_recipe()
pd.set_option("display.max_colwidth", 90)
pd.set_option("display.width", 200)
pd.set_option("display.max_rows", 120)

# %% [markdown]
# ## The model and the optimizer
#
# The same model block and optimizer sit in all five configs. The parameter count is computed
# from the shapes (tied embeddings, no biases).

# %%
arch, opt = recipe.architecture, recipe.optimizer
pd.DataFrame({"architecture": facts_of(arch) | {"parameters": f"{arch.parameter_count():,}"}})

# %%
pd.DataFrame({"optimizer": facts_of(opt)})

# %% [markdown]
# ## Three runs, five stages
#
# Pretraining is one run of 4.72M steps whose data mixture changes twice; each long-context
# extension is a separate, short run with its own schedule. Tokens per stage are steps × micro
# batch × data-parallel replicas × gradient accumulation × sequence length. Every run moves
# 2,359,296 tokens per step, whatever its sequence length.

# %%
runs = pd.DataFrame([{
    "run": name, "config": run.config_file, "seq_len": run.sequence_length, "rope_theta": f"{run.rope_theta:,.0f}",
    "micro_batch x dp x accum": f"{run.micro_batch_size} x {run.dp} x {run.batch_accumulation_per_replica}",
    "tokens/step": f"{run.tokens_per_step:,}", "GPUs (tp x pp x cp x dp)": run.gpus, "steps": f"{run.schedule.train_steps:,}",
    "tokens": human_tokens(run.tokens), "schedule": run.schedule.describe(),
} for name, run in recipe.runs.items()])
runs

# %%
stages = pd.DataFrame(stage_rows(recipe))
stages

# %% [markdown]
# ## The learning rate over the whole run
#
# Warm-up–stable–decay (WSD) for pretraining: linear warm-up over 2,000 steps, constant 2e-4, then
# a linear decay to 0 that starts exactly where the decay stage's mixture starts. The long-context
# runs restart from a tenth of that peak with a cosine. The third panel is the same shape at this
# book's scale (the schedule the trainer uses, from `smolbook.schedules.wsd_for`), with the
# scale's stage boundaries.

# %%
fig = plot_lr_schedule(recipe, book.scale)
book.savefig(fig, "lr_schedule", caption="Learning-rate schedules: the released pretraining run (WSD), the two long-context runs (cosine), and this scale's pretraining with its stages.")
plt.show()

# %% [markdown]
# The configs' steps split pretraining at 0.731 / 0.158 / 0.111 (stable-2 from step 3,450,001, decay from
# 4,198,001 of 4,720,000), and the learning-rate decay starts with the decay stage. Every scale of the book splits
# its own steps at these shares and decays over exactly its decay stage (third panel); the blog's 8 : 2 : 1.1
# and "the last 10%" stay in the ledger below as blog statements.

# %%
from smolbook.scales import departures, pretraining_shares

pre = recipe.runs["pretraining"]
bounds = book.scale.stage_step_boundaries()
pd.DataFrame([{"stage": name, "configs (share of pretraining steps)": round(share, 4),
               f"{book.scale.name} (steps)": f"{bounds[name][0]}-{bounds[name][1]}",
               f"{book.scale.name} (share)": round((bounds[name][1] - bounds[name][0]) / book.scale.pretrain_steps, 4)}
              for name, share in pretraining_shares().items()]
             + [{"stage": "LR decay", "configs (share of pretraining steps)": round(pre.schedule.decay_fraction, 4),
                 f"{book.scale.name} (steps)": f"from {bounds['decay'][0]}",
                 f"{book.scale.name} (share)": round(book.scale.lr_decay_fraction(), 4)}])

# %% [markdown]
# ## What each stage feeds the model
#
# Shares come from the config weights, divided by each stage's weight sum: the decay stage's 56
# weights add up to 1.00565, not 1, so the book keeps the released weights and normalises when it
# samples. The blog splits each stage into web, code and math. To compare, web includes
# multilingual web, and reasoning/instruction data (new in the decay stage) is counted with the
# subject it trains: OpenMathInstruct, OpenMathReasoning and the synthetic math dialogues as
# math, OpenCodeReasoning as code. What fits none of the three (natural_reasoning, the ChatML
# reasoning mixes of the long-context stages) is the residual, "other".

# %%
shares = pd.DataFrame(share_rows(recipe))
pivot = shares.pivot(index="stage", columns="bucket", values="config_pct").loc[recipe.stage_names,
                                                                               ["web", "multilingual", "code", "math", "other"]]
blog = shares.dropna(subset=["blog_pct"]).pivot(index="stage", columns="bucket", values="blog_pct")
blog = blog.reindex(columns=["web", "multilingual", "code", "math"])
print("config shares (%)")
display(pivot)
print("blog shares (%)")
display(blog.loc[[s for s in recipe.stage_names if s in blog.index]])
print("config - blog (percentage points; the blog states whole percents, so |diff| <= 0.5 agrees)")
shares.dropna(subset=["blog_pct"])[["stage", "bucket", "config_pct", "blog_pct", "diff_pp", "agrees"]]

# %% [markdown]
# Counted by category instead (reasoning data as its own category), the same weights give:

# %%
pd.DataFrame({s.name: {c: round(100 * v, 2) for c, v in s.category_shares().items()} for s in recipe.stages}).T[list(CATEGORIES)]

# %%
fig = plot_stage_shares(pivot, blog)
book.savefig(fig, "stage_shares", caption="Each stage's mixture in percent: the released configs (solid) against the blog (pale).")
plt.show()

# %% [markdown]
# ## Every dataset of a stage
#
# The decay stage, as released: 56 datasets. `p` is the weight divided by the stage's weight sum.
# Hub ids come from the configs' comments where they name one, otherwise they are our reading of
# the folder name (`hub_id_source: inferred`). `smolbook recipe mixture --stage NAME` prints any
# stage.

# %%
decay = recipe.stage("decay")
probs = decay.probabilities()
pd.DataFrame([{"name": d.name, "weight": d.weight, "p": round(probs[d.name], 5), "category": d.category,
               "hub_id": d.hub_id, "subset": d.subset, "hub_id_source": d.hub_id_source} for d in decay.datasets])

# %% [markdown]
# ## The ledger: the blog against the configs
#
# Each blog statement is compared with the config value it describes, within the precision the
# blog states it to (a whole percent for shares, 0.1T for 11.2T, ...; exact for settings such as
# β₂). Then come the settings only one side states, and the places where the configs disagree with
# themselves.

# %%
rows = ledger(recipe)
table = pd.DataFrame([vars(r) for r in rows])[["kind", "group", "topic", "blog", "config", "config_file", "agrees", "tolerance"]]
table

# %% [markdown]
# The disagreements alone:

# %%
table[table["agrees"] == False][["kind", "topic", "blog", "config", "config_file"]]  # noqa: E712

# %% [markdown]
# Reading the ledger: most of the blog is exact. The differences are of three kinds.
# *Rounding and shares*: the stage-2 and stage-3 mixtures move a point or two away from the blog's
# percentages (the decay stage's weights also sum to 1.0057), and the decay covers 11.1% of the
# steps rather than 10%; the 11.2T headline is 11.14T of pretraining by the configs' steps
# (11.24T if both long-context runs are added). *A real difference*: the 4k→32k run uses RoPE
# θ = 2,000,000, not the blog's 1.5M. *Config-internal*: the file names say stage 2 ends at 9T
# where the steps put it at 9.9T, one comment links the Hungarian FineWeb2-HQ subset for the
# French folder, and one read path ends in a storage folder (`tokenized`). The configs also fix
# what the blog does not say: the long-context runs train at 2e-5 with a cosine decay, on 96
# GPUs, with 10-13% reasoning/instruction data, and swap Persian for Arabic in the multilingual web.

# %% [markdown]
# ## After pretraining: the post-training recipe
#
# No configs were released for reasoning mid-training, SFT, APO or merging, so these facts come from the blog and
# the model card, each with its source (`smolbook/recipe/post_training.yaml`; `smolbook recipe post-training
# --json` prints them). A setting the sources leave unsaid is marked as such; the book then makes a scale choice.

# %%
from smolbook.recipe import load_post_training

post = load_post_training()
pd.DataFrame([{"step": sec, "fact": k, "value": "(not stated)" if f.value is None else f.value, "source": f.source,
               "note": f.note} for sec, section in post.sections.items() for k, f in section.facts.items()])

# %%
pd.DataFrame([{"step": sec, "dataset": d.name, "hub id": d.hub_id, "subset": d.subset or "", "role": d.role}
              for sec, d in post.datasets()])

# %% [markdown]
# ## Where this scale departs from the recipe's proportions
#
# At `tiny` the recipe's 50B-token long-context stages would be a fraction of one step of an 11T-token run, so
# every later phase gets a larger share of the pretraining budget than in the recipe. Computed from the scales
# table and the recipe, not typed: each phase's tokens (times its epochs) as a share of pretraining, the factor
# by which this scale exceeds the recipe's share, and where the learning rate comes from.

# %%
pd.DataFrame(departures(book.scale))

# %%
book.number("parameters", arch.parameter_count(), note="computed from the architecture in the configs")
end = recipe.pretraining_stages[-1]
book.number("pretraining tokens (configs)", end.end_tokens, "tokens", note=human_tokens(end.end_tokens))
for s in recipe.stages:
    book.number(f"tokens in stage {s.name}", s.tokens, "tokens", note=f"{human_tokens(s.tokens)}, {s.config_file}")
book.number("decay-stage weight sum", round(decay.weight_sum, 6),
            note=f"{decay.weight_sum:.5f} as released (56 weights); normalised when sampling")
book.number("decay share of pretraining steps", round(100 * pre.schedule.decay_fraction, 2), "%")
for row in departure_numbers(book.scale):
    book.number(**row)
book.number("datasets (distinct names over all stages)", len(recipe.all_datasets()))
compared = [r for r in rows if r.kind == "compared"]
book.number("blog statements checked", len(compared))
book.number("blog statements that differ from the configs", sum(r.agrees is False for r in compared))
book.number("config-internal inconsistencies", sum(r.agrees is False for r in rows if r.kind == "config-internal"))

# %% [markdown]
# ## Verdicts
#
# One verdict per group of blog statements: it holds when every statement of the group agrees with
# the configs within its stated precision.

# %%
verdicts = []
for v in ledger_verdicts(rows):
    # The ledger checks a transcription (what the blog says against what the configs set), not an experiment.
    ok = book.check(v.claim, v.measured, v.agrees,
                    source="https://huggingface.co/blog/smollm3 vs the released nanotron configs")
    verdicts.append({"claim": v.claim, "blog matches the configs": ok, "measured": v.measured})
pd.DataFrame(verdicts)
