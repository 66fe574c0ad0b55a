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
#     needs: [08_long_context, 09_midtraining]
# ---

# %% [markdown]
# # 11 · Dual-mode SFT
#
# SmolLM3's supervised fine-tuning read 1.8B tokens (1B non-reasoning, 0.8B reasoning) for 4 epochs, packed with
# BFD (best-fit decreasing) and with the loss on assistant turns only: user turns and tool results are masked. The
# data covered math, code, general reasoning, instruction following, multilinguality and tool calling, in both
# modes (`/think`, `/no_think`). Where a domain had no reasoning traces, Qwen3-32B wrote them in think mode from the
# prompts of the non-reasoning data.
#
# Here TRL's `SFTTrainer` fine-tunes chapter 09's model through the run spec (trainer `sft`): BFD packing,
# `assistant_only_loss=True`, each row's own `chat_template_kwargs` (mode, XML or Python tools, date), the
# think : no_think token ratio of the recipe (a chapter option), multi-turn conversations, tool calls with their
# results, prompts in six languages and IFEval-style instructions; the scale's tokens per epoch and epochs
# (`smolbook/scales.yaml`, `sft`: at `tiny` one epoch of distinct conversations in rows of 2,048 tokens, so no
# conversation is cut, sized from the learning curve drawn below); on CPU no gradient checkpointing, bf16 with the
# attention in fp32, each packed conversation attended alone. One domain (`lacking`, a chapter option)
# has its think-mode rows removed, and a teacher writes them back from its no_think prompts, kept only when right.
#
# Four claims are judged, each over 3 seeds: both modes work (format per mode); think mode beats no_think on
# multi-step problems; the teacher's traces help the domain that lacked them (SFT with vs without them); and
# mid-training helps SFT (the same SFT from 09's model vs from 08's). The last two are read by exact match and by the
# loss of the correct think-mode answer, which moves before exact match does (chapter 09). The recipe arm trains the
# scale's SFT budget on three seeds; the two controls compare three arms at a sixth of it (`control_share`), each
# against the recipe's own data and start at that budget, so that nine extra runs fit the chapter's time.

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"
think_ratio = 0.8          # think tokens per no_think token (the recipe's 0.8B : 1B)
lacking = "facts"          # the domain whose reasoning traces come from the teacher
teacher_error_rate = 0.1   # the offline teacher's slips, which the correctness filter must catch
control_share = 1 / 6      # the control arms' budget, a share of the recipe arm's steps

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from smolbook import Chapter, sft
from smolbook.data import prepare
from smolbook.data.chat import KINDS, describe_row, shared_chat_data
from smolbook.evaluate.chat import chat_scores, learning_curve, plot_learning_curve
from smolbook.sft_plots import plot_mask_and_packing, plot_per_domain
from smolbook.teacher import SolverTeacher
from smolbook.train import build_data, sweep

# %%
book = Chapter("11_sft", scale, seed, output_dir)
s = book.scale
data = prepare(s, output_dir, seed=seed)
mid, long_context = book.start_from("09_midtraining"), book.start_from("08_long_context")
chat = shared_chat_data(s.name, data.seed)
b = s.budget("sft")
print(sft.recipe_line(s))

# %% [markdown]
# ## The teacher's traces for the domain that lacks them
# The offline teacher writes the generator's own step-by-step solution (at `small`/`full` a model teacher,
# `smolbook.teacher.ModelTeacher`, does this with a checkpoint); it slips on a share of answers, and the one
# correctness filter (`smolbook.teacher.filter_correct`) keeps only right, well-formed think-mode answers.

# %%
traces, report = sft.teacher_rows(chat, lacking, SolverTeacher(error_rate=teacher_error_rate, seed=seed))
traces_file = sft.save_rows(traces, book.dir / f"teacher_traces_{lacking}.jsonl")
display(pd.DataFrame([report]))
book.number(f"teacher traces kept / generated ({lacking})", f"{report['kept']} / {report['generated']}")
book.number("teacher seconds", report["seconds"], "s",
            note=f"tokens/s: {report['tokens_per_s']}" if report["tokens_per_s"] else "the offline solver counts no tokens")
options = {"think_ratio": think_ratio, "without_traces": [lacking], "extra_rows": str(traces_file)}
print(describe_row(traces[0]))

# %% [markdown]
# ## What one run trains on: the loss mask and the packing
# A tool-calling conversation as the trainer sees it (assistant tokens in the loss; system, user and the tool's
# result masked), and the rows of one epoch packed by BFD against one conversation per padded row.

# %%
main_spec = sft.sft_spec(book.name, "sft", "chapter:09_midtraining", s.name, output_dir, seed, options)
tok = sft.chat_tokenizer(mid)
fill = sft.packing_fill(build_data(main_spec, data), tok, b.seq_len)  # one epoch, as the trainer packs it
example = next(r for r in chat.train["tools_xml"] if r["mode"] == "think")
pieces, mask, roles = sft.loss_mask(example, tok)
fig = plot_mask_and_packing(pieces, mask, roles, fill)
book.savefig(fig, "loss_mask_and_packing", caption="Left: one tool-calling conversation token by token (in the loss: "
             "assistant turns; masked: system, user and the tool result). Right: share of row positions holding a "
             "token, BFD packing against one conversation per padded row.")
plt.show()
print(sft.describe_fill(fill))
book.number("BFD packing fill", round(fill["bfd_fill"], 4), note="target >= 0.99")
book.number("padded rows fill", round(fill["padded_fill"], 4))
_ = book.check(*sft.assistant_only_check(mask, roles))

# %% [markdown]
# ## The SFT runs: the recipe arm, and three short arms for the two controls
# The recipe arm (09's model, the teacher's traces in) trains the scale's SFT budget on each seed: it is the chat
# model handed on, and its main seed keeps five checkpoints for the learning curve. The two controlled claims compare
# arms at one shorter budget (`control_share` of the steps), each against the recipe's data and start at that same
# budget: without the teacher's traces, and from 08's model instead of 09's. Every run of a budget has the same data
# order for its seed.

# %%
short = sft.control_steps(b.steps, control_share)
recipe_specs = sft.recipe_specs(book.name, s.name, output_dir, book.seeds, seed, options)
control_specs = sft.control_specs(book.name, s.name, output_dir, book.seeds, options, short)
with book.timed("SFT seconds, recipe arm") as t_recipe:
    recipe_runs = sweep(recipe_specs, desc="SFT, recipe arm")
with book.timed("SFT seconds, control arms", note=f"{len(control_specs)} runs of {short} steps") as t_controls:
    control_runs = sweep(control_specs, desc="SFT, control arms")
main = recipe_runs["recipe", seed].result
rows = main.rows("train")
print(sft.runs_line(rows, b, len(recipe_specs), t_recipe.seconds, len(control_specs), short, t_controls.seconds))
book.number("SFT tokens trained (recipe arm)", rows[-1]["tokens"], "tokens")

# %% [markdown]
# ## The learning curve
# The recipe arm's main seed kept a checkpoint every fifth of its steps; each answers the held-out conversations of
# every kind in both modes. The scale's SFT budget (`smolbook/scales.yaml`, `sft`) was sized from curves like this
# one: at tiny it sits below the knee a longer run measured (600-750 steps of the first tokenizer, the table's
# comment gives that curve), because three seeds at the knee do not fit the chapter's time; where this curve still
# rises at its last step, more steps would still help.

# %%
n, long_answers, short_answers = s.evaluation.chat_items, s.evaluation.chat_tokens, s.evaluation.short_chat_tokens
every = chat.heldout_set(KINDS, per_kind=n)
with book.timed("learning-curve seconds"):
    curve = learning_curve(main.checkpoints_by_step(), every, max_new_tokens=long_answers, label="recipe")
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
plot_learning_curve(curve, axes, KINDS, tokens_per_step=b.rows_per_step * b.seq_len)
fig.suptitle(f"Held-out scores along the recipe arm's SFT run (seed {seed}, {len(every)} conversations, half in each mode)")
fig.tight_layout()
book.savefig(fig, "learning_curve", caption="Held-out format adherence per mode, exact match per answer kind and "
             "tool-call match per style at each kept checkpoint of the recipe arm's main SFT run.")
plt.show()

# %% [markdown]
# ## Evaluations, generated with plain transformers through each checkpoint's own template
# Held-out rows of every kind in both modes for the recipe arm. For the controls, at their shorter budget: the lacking
# domain in think mode with and without the teacher's traces, and multi-step problems in think mode from 09's and
# from 08's model, each by exact match and by the loss of the correct answer (it moves before exact match does).

# %%
with book.timed("evaluation seconds"):
    scores = sft.evaluate_arms(recipe_runs, control_runs, chat, every, lacking, book.seeds, n, long_answers,
                               short_answers)
per_kind = scores.per_kind()
display(scores.recipe[sft.RECIPE_COLUMNS].round(3))

# %%
fig = plot_per_domain(per_kind, scores.recipe, KINDS, len(book.seeds))
book.savefig(fig, "per_domain_accuracy", headline=True,
             caption="Held-out score per domain in each mode (exact match; IFEval strict; tool-call match), and "
                     "format adherence, language match and parsable tool calls per mode, mean over the recipe arm's "
                     "seeds.")
plt.show()

# %% [markdown]
# A tool call is matched on its name and its arguments. The name is one of three the template lists; the argument
# (a held-out person, a held-out city, two numbers) has to be copied from the question, and chapter 07's copy probe
# measures whether the pretrained model copies a span it has just read: where it does not, SFT teaches the call's
# shape and tool name but not the copy, and tool-call match stays low however the budget is set.

# %% [markdown]
# ## Verdicts
# The margins are fixed here, before the numbers above are read. Format adherence is compared with 09's model
# (before SFT) in the same mode; think against no_think is paired by seed on the multi-step kinds; the teacher's
# traces and mid-training are paired by seed between arms.

# %%
CLAIMS = sft.claims(lacking)
before = pd.DataFrame(chat_scores({"09 (before SFT)": mid}, every, modes=("think", "no_think"),
                                  max_new_tokens=long_answers)).set_index("mode")
for key, args in sft.judge_args(scores, before, every, book.seeds, short).items():
    book.judge(CLAIMS[key], **args)

# %% [markdown]
# ## The chat model
# The recipe arm's main seed is this chapter's final checkpoint (chapter 12 starts from it). It loads with plain
# transformers, carries its chat template, and ends its turns with `<|im_end|>` (tokenizer eos and generation
# config); its format rates per mode are the ones measured above.

# %%
for mode in ("think", "no_think"):
    format_ok = scores.by_mode(mode).loc[f"recipe seed {seed}", "format_ok"]
    book.number(f"format adherence, {mode} (seed {seed})", round(format_ok, 3))
    for kind in KINDS:
        if pd.notna(per_kind.loc[f"correct/{kind}", mode]):  # a kind may have no held-out row in a mode at smoke
            book.number(f"{kind}, {mode} (mean of seeds)", round(per_kind.loc[f"correct/{kind}", mode], 3))
example = next(r for r in chat.heldout["math"] if r["mode"] == "think")
for mode, text in sft.generate_in_both_modes(main.checkpoint, example, max_new_tokens=long_answers).items():
    print(f"--- {mode} (enable_thinking={mode == 'think'}) ---\n{text}")
last = rows[-1]
_ = book.checkpoint("sft", main.checkpoint, step=last["step"], tokens=last["tokens"], final=True)

# %% [markdown]
# **Verdict.** The verdicts above say, seed by seed against margins fixed before the runs, whether both modes work
# at this scale, whether thinking helps on multi-step problems, whether the teacher's traces helped the domain that
# lacked them, and whether mid-training made SFT better.
