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
# # 07 · Pretraining
#
# SmolLM3 was pretrained on 11.1T tokens in three stages that change the data mixture, not the model:
# **stable** (web-heavy), **stable-2** (more code and math) and **decay** (more math, code and reasoning data)
# (`stage1_8T.yaml`, `stage2_8T_9T.yaml`, `stage3_9T_11T.yaml`). The optimiser is AdamW (β 0.9/0.95, eps 1e-8,
# weight decay 0.1 except on the token embedding, gradient clipping 1.0) with a **WSD** schedule: a short linear
# warm-up, a long constant phase, and a linear decay to 0.
#
# What ran, per the released configs: stable-2 starts at step 3,450,001 and the decay stage at 4,198,001 of
# 4,720,000, so the stages take **0.731 / 0.158 / 0.111** of the steps, and the learning-rate decay starts *with*
# the decay stage (`lr_decay_starting_step` 4,198,001: the last 11.1% of steps). The blog rounds this to
# 8 : 2 : 1.1 and "the last 10%" (chapter 00's ledger lists both). Here the scale's model runs the three stages at
# the configs' shares of its own steps, with the decay over exactly the decay stage, on the scale's data
# (chapter 01). The whole run is one `RunSpec` — the same description a later chapter uses to continue a model —
# and every curve below is read back from the trainer's own `metrics.jsonl`.

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"

# %%
import dataclasses

import matplotlib.pyplot as plt
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from smolbook import Chapter
from smolbook.chapter import registered_checkpoints
from smolbook.claims import Check, Claim
from smolbook.data import prepare
from smolbook.evaluate import copying
from smolbook.model import count_parameters, smollm3_config
from smolbook.scales import pretraining_shares
from smolbook.train import RunSpec, ScheduleSpec, resolve_config, run, sweep
from smolbook.train.plots import plot_control, plot_metric_family, plot_schedule, read_wsd, stage_shares, stage_steps

# %%
book = Chapter("07_pretraining", scale, seed, output_dir)
s = book.scale
data = prepare(s, output_dir, seed=seed)
spec = RunSpec(chapter=book.name, name="pretrain", scale=s.name, output_dir=str(output_dir), seed=seed,
               register_stages=True)
print(f"{s.name}: {count_parameters(smollm3_config(s, tokenizer=data.tokenizer)):,d} parameters, "
      f"{s.pretrain_tokens:,d} tokens = {s.pretrain_steps} steps of {s.global_batch_size} x {s.seq_len} tokens")
print("stage step boundaries:", s.stage_step_boundaries())
spec_config = resolve_config(spec)
print(spec.to_yaml())

# %%
# Implementation checks: does the run follow the recipe's shape? (Reported apart from the experiments.)
STAGES = Check("Three stages at the configs' shares of the steps (0.731 / 0.158 / 0.111)",
               "stage1_8T / stage2_8T_9T / stage3_9T_11T start_training_step")
SCHEDULE = Check("WSD: constant learning rate, then a linear decay to 0 that starts with the decay stage",
                 "stage3_9T_11T.yaml lr_decay_starting_step = start_training_step, lr_decay_style: linear")

# %% [markdown]
# ## The run
# `run(spec)` trains the way the scale says: in this process at `smoke`/`tiny`, under `accelerate launch` at
# `small`, as a SLURM job at `full`; either way the metrics and checkpoints are read back here, and the
# checkpoint at the end of each stage is registered for later chapters (`checkpoints.json` of the run folder).

# %%
with book.timed("pretraining wall time", note=f"scale {s.name}, including evaluation") as t:
    result = run(spec)
train_rows = result.rows("train")
tok_s = train_rows[-1]["tokens"] / max(1e-9, train_rows[-1]["elapsed_s"])
print(f"{len(train_rows)} steps, {train_rows[-1]['tokens']:,d} tokens in {t.seconds:.0f} s ({tok_s:,.0f} tokens/s); "
      f"final training loss {train_rows[-1]['loss']:.3f}")
book.number("pretraining throughput", round(tok_s), "tokens/s", note="training tokens over loop time incl. evaluation")
book.number("final training loss", round(train_rows[-1]["loss"], 4))

# %% [markdown]
# ## The WSD schedule and the three stages
# The learning rate the trainer's `LambdaLR` applied at each step (from `smolbook.schedules.lr_multiplier`),
# stages shaded as the data stream reported them.

# %%
fig = plot_schedule(result)
book.savefig(fig, "wsd_schedule", caption="The learning rate the trainer applied at each step (WSD), with the training loss; stages shaded as the data stream served them.")
plt.show()

shares, expected = stage_shares(result), pretraining_shares()
print("steps per stage:", stage_steps(result), " shares:", {k: round(v, 3) for k, v in shares.items()})
book.check(STAGES, "step shares " + ", ".join(f"{k} {shares.get(k, 0):.3f} (configs {v:.3f})" for k, v in expected.items()),
           max(abs(shares.get(k, 0) - v) for k, v in expected.items()) <= 1 / len(train_rows))
wsd = read_wsd(result, spec_config.warmup_steps)  # from the learning rates the trainer logged
book.check(SCHEDULE, wsd.describe(expected["decay"]), wsd.follows_stages)

# %% [markdown]
# ## Validation loss per domain
# Held-out documents of each domain (chapter 01), the same packed rows at every evaluation.

# %%
fig = plot_metric_family(result, "valid_loss/", "validation loss")
book.savefig(fig, "validation_loss", headline=True, caption="Validation loss per domain on held-out documents over pretraining; the decay stage is the last shaded span.")
plt.show()
evals = result.rows("eval")
for k in sorted(x for x in evals[-1] if x.startswith("valid_loss")):
    print(f"{k:<32} {evals[0][k]:.3f} -> {evals[-1][k]:.3f}")
    book.number(f"final {k}", round(evals[-1][k], 4))

# %% [markdown]
# ## Does the decay itself lower the loss? A control
# The loss always falls with more training, so comparing the loss before and after the decay says nothing about
# the decay. The control continues the same run from the decay's first step — same model, optimizer state and
# data position, via `branch_from` — over the same tokens with the learning rate held constant. Replicates: two
# more seeds branch from the same checkpoint and draw the decay stage's documents afresh, each with its own
# constant-rate control over its own tokens (one pretraining run, three decay samples). Declared before it runs:

# %%
ANNEAL = Claim("WSD's decay lowers the loss against a constant learning rate over the same tokens",
               "SmolLM3 blog, Training configuration (WSD)", metric="final validation loss (nats/token)",
               direction="better", margin=0.02)

# %%
def branch(name: str, r: int, **changes) -> RunSpec:
    """The decay stage again from the stable-2 checkpoint, under seed ``r`` (``r == seed``: this run's own tokens)."""
    return dataclasses.replace(spec, name=f"{name}-seed{r}", seed=r, register_stages=False, final=False,
                               branch_from=f"chapter:{book.name}/stable-2", **changes)


branches = sweep({("constant LR", r): branch("constant-lr", r, schedule=ScheduleSpec(decay_fraction=0.0),
                                             eval_every=None if r == seed else s.pretrain_steps) for r in book.seeds}
                 | {("WSD decay", r): branch("decay", r, eval_every=s.pretrain_steps) for r in book.seeds[1:]},
                 desc="decay-stage branches")

# %%
constant = [branches["constant LR", r].result for r in book.seeds]
decayed = [result] + [branches["WSD decay", r].result for r in book.seeds[1:]]
final_constant = [c.rows("eval")[-1]["valid_loss"] for c in constant]
final_decay = [d.rows("eval")[-1]["valid_loss"] for d in decayed]
for r, a, b in zip(book.seeds, final_decay, final_constant):
    print(f"seed {r}: validation loss after the decay stage: WSD decay {a:.4f}, constant learning rate {b:.4f}")
book.judge(ANNEAL, final_constant, final_decay, baseline_name="constant LR", recipe_name="WSD decay")
fig = plot_control(result, constant[0], label="constant-LR control (branched at the decay's first step)")
book.savefig(fig, "annealing_control", caption="Mean validation loss with the WSD decay and with the constant-learning-"
             "rate control branched from the decay's first step over the same tokens.")
plt.show()

# %% [markdown]
# ## Held-out tasks over training
# `cloze`: the choice with the lowest loss; `arithmetic`, `code_output`, `translation`: exact match of the
# answer (teacher-forced argmax on every answer token, which is exactly what greedy decoding would produce).

# %%
fig = plot_metric_family(result, "acc/", "accuracy (exact match / cloze)")
fig.axes[0].set_ylim(-0.02, 1.02)
book.savefig(fig, "heldout_accuracy", caption="Held-out tasks over pretraining: cloze (4 choices, chance 0.25) and exact match of arithmetic, code output and translation answers.")
plt.show()
fig = plot_metric_family(result, "token_acc/", "per-token answer accuracy")
book.savefig(fig, "heldout_token_accuracy", caption="Per-token accuracy on the answers of the held-out generation tasks.")
plt.show()
for k in sorted(x for x in evals[-1] if x.startswith(("acc/", "token_acc/"))):
    print(f"{k:<24} {evals[0][k]:.3f} -> {evals[-1][k]:.3f}")
    book.number(f"final {k}", round(evals[-1][k], 4))

# %% [markdown]
# ## The checkpoints, loaded by plain transformers
# Later chapters start from what this chapter registered (`book.start_from("07_pretraining")`): the final
# checkpoint, and the end of each stage. Each is an ordinary Hugging Face folder — model, config and the run's
# tokenizer — with the trainer's state beside it for resuming.

# %%
for c in registered_checkpoints(output_dir):
    if c["chapter"] == book.name:
        print(f"{c['name']:<10} step {c['step']:>6,d}  {c['tokens']:>12,d} tokens  {c['path']}")
path = result.checkpoint
model = AutoModelForCausalLM.from_pretrained(path).eval()
tokenizer = AutoTokenizer.from_pretrained(path)
prompt = data.valid["web"][0]["text"][:80]
ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
ids = {k: v[:, -model.config.max_position_embeddings // 2:] for k, v in ids.items()}  # stay within the trained length
new_tokens = min(40, model.config.max_position_embeddings - ids["input_ids"].shape[1])
with torch.no_grad():
    out = model.generate(**ids, max_new_tokens=new_tokens, do_sample=False)
sample = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
print(f"prompt:     {prompt!r}\ncontinued:  {sample!r}")
book.number("final checkpoint", str(path))

# %% [markdown]
# ## Does the model copy what it has just read?
# A tool call passes a name or a number from the question into its arguments, so the model must copy a span it has
# just read, the mechanism of an induction head. The probe: a passage of random in-distribution tokens, a gap of
# held-out text, the same passage again, all within the training length. If the repeat is predicted no better than
# the first occurrence, the model does not copy, and chapter 11's tool calls can name the right tool but cannot
# carry a new argument.

# %%
copy = copying(model, data, s, seed=seed)
print(f"copy probe, {copy['items']} passages of {copy['passage']} tokens: top-1 accuracy on the repeat "
      f"{copy['repeat_accuracy']:.3f}, on the first occurrence {copy['first_accuracy']:.3f}")
book.number("copy probe: top-1 on the repeat", round(copy["repeat_accuracy"], 4), note=f"{copy['items']} passages")
book.number("copy probe: top-1 on the first occurrence", round(copy["first_accuracy"], 4))

# %% [markdown]
# **Verdict.** The implementation checks say whether the run followed the recipe's shape (three stages at the
# configs' shares, WSD with a linear decay that starts with the decay stage); the annealing claim compares the decay
# with its constant-learning-rate control over the same tokens. The per-domain curves show where each stage's mixture shifts the loss; the held-out task curves show
# what a model of this size picks up within its budget.
