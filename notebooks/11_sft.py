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
import time

import datasets
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from smolbook import Chapter
from smolbook.claims import Check, Claim
from smolbook.data import prepare
from smolbook.data.chat import KINDS, describe_row
from smolbook.evaluate.chat import chat_scores, items_in, learning_curve, plot_learning_curve
from smolbook.data.chat import shared_chat_data
from smolbook.midtraining import answer_loss
from smolbook.recipe import load_post_training
from smolbook.sft import (MULTI_STEP_KINDS, generate_in_both_modes, loss_mask, packing_fill, save_rows, sft_spec,
                          teacher_rows)
from smolbook.sft_plots import plot_loss_mask, plot_packing
from smolbook.teacher import SolverTeacher
from smolbook.train import sweep
from smolbook.train.run import DATA_BUILDERS, budget_of
from smolbook.train.trl import chat_tokenizer

book = Chapter("11_sft", scale, seed, output_dir)
s = book.scale
data = prepare(s, output_dir, seed=seed)
seeds = [seed + k for k in range(len(s.seeds))]
mid, long_context = book.start_from("09_midtraining"), book.start_from("08_long_context")
chat = shared_chat_data(s.name, data.seed)
pt, b = load_post_training(), s.budget("sft")
print(f"recipe: {pt.value('sft', 'tokens'):,} tokens x {pt.value('sft', 'epochs')} epochs, "
      f"{pt.value('sft', 'packing')} packing, loss {pt.value('sft', 'loss')}; {s.name}: {b.tokens:,} tokens x "
      f"{b.epochs} epochs in rows of {b.seq_len}, {b.steps} steps per run, lr {b.learning_rate:g}")

# %% [markdown]
# ## The teacher's traces for the domain that lacks them
# The offline teacher writes the generator's own step-by-step solution (at `small`/`full` a model teacher,
# `smolbook.teacher.ModelTeacher`, does this with a checkpoint); it slips on a share of answers, and the one
# correctness filter (`smolbook.teacher.filter_correct`) keeps only right, well-formed think-mode answers.

# %%
traces, report = teacher_rows(chat, lacking, SolverTeacher(error_rate=teacher_error_rate, seed=seed))
traces_file = save_rows(traces, book.dir / f"teacher_traces_{lacking}.jsonl")
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
main_spec = sft_spec(book.name, "sft", "chapter:09_midtraining", s.name, output_dir, seed, options)
epoch = DATA_BUILDERS["conversations"](main_spec, data, budget_of(main_spec))
tok = chat_tokenizer(mid)
fill = packing_fill(epoch, tok, b.seq_len)
example = next(r for r in chat.train["tools_xml"] if r["mode"] == "think")
pieces, mask, roles = loss_mask(example, tok)
fig, axes = plt.subplots(1, 2, figsize=(15, 4.2), gridspec_kw={"width_ratios": [2, 1]})
plot_loss_mask(axes[0], pieces, mask, roles)
plot_packing(axes[1], fill)
fig.tight_layout()
book.savefig(fig, "loss_mask_and_packing", caption="Left: one tool-calling conversation token by token (in the loss: "
             "assistant turns; masked: system, user and the tool result). Right: share of row positions holding a "
             "token, BFD packing against one conversation per padded row.")
plt.show()
print(f"one epoch: {fill['conversations']} conversations, {fill['tokens']:,} tokens; BFD {fill['bfd_rows']} rows "
      f"({fill['bfd_fill']:.1%} full), padded {fill['padded_rows']} rows ({fill['padded_fill']:.1%} full)")
book.number("BFD packing fill", round(fill["bfd_fill"], 4), note="target >= 0.99")
book.number("padded rows fill", round(fill["padded_fill"], 4))
_ = book.check(Check("Loss on assistant turns only: the tool result and user turns are masked",
                 "blog, Supervised finetuning"),
           f"{sum(mask)} of {len(mask)} tokens in the loss; tool tokens in it: "
           f"{sum(m for m, r in zip(mask, roles) if r == 'tool')}",
           sum(mask) > 0 and not any(m for m, r in zip(mask, roles) if r in ("tool", "user")))

# %% [markdown]
# ## The SFT runs: the recipe arm, and three short arms for the two controls
# The recipe arm (09's model, the teacher's traces in) trains the scale's SFT budget on each seed: it is the chat
# model handed on, and its main seed keeps five checkpoints for the learning curve. The two controlled claims compare
# arms at one shorter budget (`control_share` of the steps), each against the recipe's data and start at that same
# budget: without the teacher's traces, and from 08's model instead of 09's. Every run of a budget has the same data
# order for its seed.

# %%
no_traces = {k: v for k, v in options.items() if k != "extra_rows"}
curve_every = max(1, b.steps // 5)
recipe_specs = {("recipe", k): sft_spec(book.name, "sft" if k == seed else f"sft-seed{k}", "chapter:09_midtraining",
                                        s.name, output_dir, k, options,
                                        checkpoint_every=curve_every if k == seed else None, final=k == seed)
                for k in seeds}
short = max(1, round(b.steps * control_share))
controls = {"short recipe": ("short-recipe", "chapter:09_midtraining", options),
            "no teacher": ("short-no-teacher", "chapter:09_midtraining", no_traces),
            "from 08": ("short-from08", "chapter:08_long_context", options)}
control_specs = {(arm, k): sft_spec(book.name, f"{name}-seed{k}", src, s.name, output_dir, k, opts, steps=short,
                                    final=False)
                 for arm, (name, src, opts) in controls.items() for k in seeds}
t0 = time.perf_counter()
recipe_runs = sweep(recipe_specs, desc="SFT, recipe arm")
seconds_sft = time.perf_counter() - t0
control_runs = sweep(control_specs, desc="SFT, control arms")
seconds_controls = time.perf_counter() - t0 - seconds_sft
main = recipe_runs["recipe", seed].result
rows = main.rows("train")
capacity = rows[-1]["step"] * b.rows_per_step * b.seq_len
print(f"recipe arm: {len(seeds)} runs of {rows[-1]['step']} steps in {seconds_sft:.0f} s, {rows[-1]['tokens']:,} "
      f"tokens trained per run ({rows[-1]['tokens'] / capacity:.1%} of the packed rows' positions), loss "
      f"{rows[0]['loss']:.2f} -> {rows[-1]['loss']:.2f}; control arms: {len(control_specs)} runs of {short} steps in "
      f"{seconds_controls:.0f} s")
book.number("SFT tokens trained (recipe arm)", rows[-1]["tokens"], "tokens")
book.number("SFT seconds, recipe arm", round(seconds_sft, 1), "s")
book.number("SFT seconds, control arms", round(seconds_controls, 1), "s", note=f"{len(control_specs)} runs of {short} steps")

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
t0 = time.perf_counter()
curve = learning_curve(main.checkpoints_by_step(), every, max_new_tokens=long_answers, label="recipe")
seconds_curve = time.perf_counter() - t0
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
plot_learning_curve(curve, axes, KINDS, tokens_per_step=b.rows_per_step * b.seq_len)
fig.suptitle(f"Held-out scores along the recipe arm's SFT run (seed {seed}, {len(every)} conversations, half in each mode)")
fig.tight_layout()
book.savefig(fig, "learning_curve", caption="Held-out format adherence per mode, exact match per answer kind and "
             "tool-call match per style at each kept checkpoint of the recipe arm's main SFT run.")
plt.show()
book.number("learning-curve seconds", round(seconds_curve, 1), "s")

# %% [markdown]
# ## Evaluations, generated with plain transformers through each checkpoint's own template
# Held-out rows of every kind in both modes for the recipe arm. For the controls, at their shorter budget: the lacking
# domain in think mode with and without the teacher's traces, and multi-step problems in think mode from 09's and
# from 08's model, each by exact match and by the loss of the correct answer (it moves before exact match does).

# %%
t0 = time.perf_counter()
rec = pd.DataFrame(chat_scores({f"recipe seed {k}": recipe_runs["recipe", k].checkpoint for k in seeds}, every,
                               modes=("think", "no_think"), max_new_tokens=long_answers))
lacking_rows = chat.heldout_set((lacking,), per_kind=2 * n)
multi = chat.heldout_set(MULTI_STEP_KINDS, per_kind=n)
probes = {"lacking": lacking_rows, "multi": multi}
short_scores = pd.DataFrame(chat_scores({f"{arm} seed {k}": control_runs[arm, k].checkpoint for arm, k in control_runs},
                                        datasets.concatenate_datasets([lacking_rows, multi]), modes=("think",),
                                        max_new_tokens=short_answers)).set_index("checkpoint")
loss = {(arm, k, what): answer_loss(control_runs[arm, k].checkpoint, probes[what])
        for arm, what in (("short recipe", "lacking"), ("no teacher", "lacking"), ("short recipe", "multi"),
                          ("from 08", "multi"))
        for k in seeds}
seconds_eval = time.perf_counter() - t0
per_kind = rec.groupby("mode")[[f"correct/{k}" for k in KINDS]].mean().T
display(rec[["checkpoint", "mode", "format_ok", "answer_em", "ifeval_prompt_strict", "tool_call_match",
             "language_match", "tokens_per_s"]].round(3))

# %%
fig, (ax, ax2) = plt.subplots(1, 2, figsize=(15, 3.8), gridspec_kw={"width_ratios": [3, 1]})
per_kind.plot.bar(ax=ax, color={"think": "C1", "no_think": "C0"}, width=0.7)
ax.set(ylabel="held-out score (mean over seeds)", ylim=(0, 1), xticklabels=KINDS,
       title=f"The SFT model per domain and mode (recipe arm, {len(seeds)} seeds)")
ax.tick_params(axis="x", rotation=30)
rec.groupby("mode")[["format_ok", "language_match", "tool_call_validity"]].mean().T.plot.bar(
    ax=ax2, color={"think": "C1", "no_think": "C0"}, width=0.7)
ax2.set(ylim=(0, 1), title="format, language, parsable tool calls")
ax2.tick_params(axis="x", rotation=30)
fig.tight_layout()
book.savefig(fig, "per_domain_accuracy", headline=True,
             caption="Held-out score per domain in each mode (exact match; IFEval strict; tool-call match), and "
                     "format adherence, language match and parsable tool calls per mode, mean over the recipe arm's "
                     "seeds.")
plt.show()

# %% [markdown]
# ## Verdicts
# The margins are fixed here, before the numbers above are read. Format adherence is compared with 09's model
# (before SFT) in the same mode; think against no_think is paired by seed on the multi-step kinds; the teacher's
# traces and mid-training are paired by seed between arms.

# %%
CLAIMS = {
    "think_format": Claim("Think mode works: a closed think block, then the answer", "blog, Chat template",
                          "format adherence, think mode", "better", margin=0.3, higher_is_better=True, chance=0.0,
                          accuracy=True),
    "no_think_format": Claim("No_think mode works: an answer with no reasoning", "blog, Chat template",
                             "format adherence, no_think mode", "better", margin=0.3, higher_is_better=True,
                             chance=0.0, accuracy=True),
    "think_helps": Claim("Think mode beats no_think on multi-step problems", "blog, Supervised finetuning",
                         "exact match, multi-step kinds", "better", margin=0.02, higher_is_better=True, chance=0.0,
                         accuracy=True),
    "teacher": Claim(f"The teacher's traces help the domain that lacked them ({lacking}, think mode)",
                     "blog, Synthetic data generation", f"exact match, {lacking}, think mode", "better", margin=0.02,
                     higher_is_better=True, chance=0.0, accuracy=True),
    "teacher_loss": Claim(f"The teacher's traces make correct think-mode answers of the domain that lacked them ({lacking}) "
                          "more likely", "blog, Synthetic data generation",
                          f"loss of the reference think-mode answer, {lacking} (nats per token)", "better", margin=0.05),
    "mid_helps": Claim("Mid-training helps SFT: the same SFT from the mid-trained model beats it from 08's model",
                       "blog, Mid-training", "exact match, multi-step kinds, think mode", "better", margin=0.02,
                       higher_is_better=True, chance=0.0, accuracy=True),
    "mid_loss": Claim("Mid-training helps SFT, in loss: correct think-mode answers to multi-step problems are more likely "
                      "after SFT from 09's model than from 08's", "blog, Mid-training",
                      "loss of the reference think-mode answer, multi-step kinds (nats per token)", "better", margin=0.05),
}
before = pd.DataFrame(chat_scores({"09 (before SFT)": mid}, every, modes=("think", "no_think"),
                                  max_new_tokens=long_answers)).set_index("mode")
r = {m: rec[rec["mode"] == m].set_index("checkpoint") for m in ("think", "no_think")}
ids = [f"recipe seed {k}" for k in seeds]
multi_em = lambda df, names: [df.loc[i, [f"correct/{k}" for k in MULTI_STEP_KINDS]].mean() for i in names]  # noqa: E731
for mode in ("think", "no_think"):
    book.judge(CLAIMS[f"{mode}_format"], before.loc[mode, "format_ok"], r[mode].loc[ids, "format_ok"].tolist(),
               baseline_name="09 (before SFT)", recipe_name="SFT", items=items_in(every, mode))
book.judge(CLAIMS["think_helps"], multi_em(r["no_think"], ids), multi_em(r["think"], ids), baseline_name="no_think",
           recipe_name="think", items=items_in(every, "think", MULTI_STEP_KINDS))
short_em = lambda arm, kinds: [short_scores.loc[f"{arm} seed {k}", [f"correct/{x}" for x in kinds]].mean()  # noqa: E731
                                for k in seeds]
book.judge(CLAIMS["teacher"], short_em("no teacher", [lacking]), short_em("short recipe", [lacking]),
           baseline_name="without traces", recipe_name="with the teacher's traces",
           items=items_in(lacking_rows, "think"), note=f"control arms: {short} steps")
book.judge(CLAIMS["teacher_loss"], [loss["no teacher", k, "lacking"] for k in seeds],
           [loss["short recipe", k, "lacking"] for k in seeds], baseline_name="without traces",
           recipe_name="with the teacher's traces", items=items_in(lacking_rows, "think"),
           note=f"control arms: {short} steps")
book.judge(CLAIMS["mid_loss"], [loss["from 08", k, "multi"] for k in seeds],
           [loss["short recipe", k, "multi"] for k in seeds],
           baseline_name="SFT from 08", recipe_name="SFT from 09", items=items_in(multi, "think"),
           note=f"control arms: {short} steps")
_ = book.judge(CLAIMS["mid_helps"], short_em("from 08", MULTI_STEP_KINDS), short_em("short recipe", MULTI_STEP_KINDS),
               baseline_name="SFT from 08", recipe_name="SFT from 09", items=items_in(multi, "think"),
               note=f"control arms: {short} steps")

# %% [markdown]
# ## The chat model
# The recipe arm's main seed is this chapter's final checkpoint (chapter 12 starts from it). It loads with plain
# transformers, carries its chat template, and ends its turns with `<|im_end|>` (tokenizer eos and generation
# config); its format rates per mode are the ones measured above.

# %%
for mode in ("think", "no_think"):
    book.number(f"format adherence, {mode} (seed {seed})", round(r[mode].loc[f"recipe seed {seed}", "format_ok"], 3))
    for kind in KINDS:
        if pd.notna(per_kind.loc[f"correct/{kind}", mode]):  # a kind may have no held-out row in a mode at smoke
            book.number(f"{kind}, {mode} (mean of seeds)", round(per_kind.loc[f"correct/{kind}", mode], 3))
book.number("evaluation seconds", round(seconds_eval, 1), "s")
example = next(r for r in chat.heldout["math"] if r["mode"] == "think")
for mode, text in generate_in_both_modes(main.checkpoint, example, max_new_tokens=long_answers).items():
    print(f"--- {mode} (enable_thinking={mode == 'think'}) ---\n{text}")
last = rows[-1]
_ = book.checkpoint("sft", main.checkpoint, step=last["step"], tokens=last["tokens"], final=True)

# %% [markdown]
# **Verdict.** The verdicts above say, seed by seed against margins fixed before the runs, whether both modes work
# at this scale, whether thinking helps on multi-step problems, whether the teacher's traces helped the domain that
# lacked them, and whether mid-training made SFT better.
