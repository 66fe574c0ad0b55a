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
# SmolLM3 was pretrained on 11.2T tokens in three stages that change the data mixture, not the model:
# **stable** (8T tokens: web-heavy), **stable-2** (2T: more code and math) and **decay** (1.1T: more math,
# code and reasoning data) (`stage1_8T.yaml`, `stage2_8T_9T.yaml`, `stage3_9T_11T.yaml`). The optimiser is
# AdamW (β 0.9/0.95, eps 1e-8, weight decay 0.1 except on the token embedding, gradient clipping 1.0) with a
# **WSD** schedule: a short linear warm-up, a long constant phase, and a linear decay to 0 over the last ~10% of
# steps (`lr_decay_starting_step` 4,198,001 of 4,720,000 in the released configs).
#
# Here the scale's model runs the same three stages at 8 : 2 : 1.1 of its token budget, with the scale's data
# (chapter 01). Every curve below is read back from the trainer's own `metrics.jsonl`: the learning rate is the
# one its scheduler applied, the stage is the one the data stream was serving. The final checkpoint, saved in
# Hugging Face format at `output_dir/07_pretraining/final`, is where the later chapters start.

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"

# %%
import time

import matplotlib.pyplot as plt
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from smolbook import Chapter
from smolbook.data import prepare
from smolbook.model import count_parameters, smollm3_config
from smolbook.train import TrainConfig, final_checkpoint, run_pretraining
from smolbook.train.plots import plot_metric_family, plot_schedule, stage_spans

book = Chapter("07_pretraining", scale, seed, output_dir)
s = book.scale
data = prepare(s, output_dir, seed=seed)
config = TrainConfig.for_scale(s, seed=seed)
print(f"{s.name}: {count_parameters(smollm3_config(s, tokenizer=data.tokenizer)):,d} parameters, "
      f"{s.pretrain_tokens:,d} tokens = {config.steps} steps of {s.global_batch_size} x {s.seq_len} tokens")
print("stage token boundaries:", s.stage_token_boundaries())

# %% [markdown]
# ## The run
# At `smoke`/`tiny` it trains in this process; at `small` the same call runs `accelerate launch` and at `full`
# it writes an sbatch script (FSDP over 24 nodes); either way the metrics and checkpoints are read back here.

# %%
t0 = time.perf_counter()
result = run_pretraining(s, output_dir, seed=seed)
seconds = time.perf_counter() - t0
train_rows = result.rows("train")
tok_s = train_rows[-1]["tokens"] / max(1e-9, train_rows[-1]["elapsed_s"])
print(f"{len(train_rows)} steps, {train_rows[-1]['tokens']:,d} tokens in {seconds:.0f} s ({tok_s:,.0f} tokens/s); "
      f"final training loss {train_rows[-1]['loss']:.3f}")
book.number("pretraining wall time", round(seconds, 1), "s", note=f"scale {s.name}, including evaluation")
book.number("pretraining throughput", round(tok_s), "tokens/s", note="training tokens over loop time incl. evaluation")
book.number("final training loss", round(train_rows[-1]["loss"], 4))

# %% [markdown]
# ## The WSD schedule and the three stages
# The learning rate the trainer's `LambdaLR` applied at each step (from `smolbook.schedules.lr_multiplier`),
# stages shaded as the data stream reported them.

# %%
fig = plot_schedule(result)
book.savefig(fig, "wsd_schedule")
plt.show()

spans = stage_spans(result)
steps_per_stage = {st: b - a + 1 for st, (a, b) in spans.items()}
shares = {st: n / len(train_rows) for st, n in steps_per_stage.items()}
print("steps per stage:", steps_per_stage, " shares:", {k: round(v, 3) for k, v in shares.items()})
expected = {"stable": 8 / 11.1, "stable-2": 2 / 11.1, "decay": 1.1 / 11.1}
off = max(abs(shares.get(k, 0) - v) for k, v in expected.items())
book.verdict("Three stages at 8 : 2 : 1.1 of the token budget",
             "step shares " + ", ".join(f"{k} {shares.get(k, 0):.3f}" for k in expected),
             "holds" if off <= 2 / len(train_rows) else "differs", source="stage1_8T / stage2_8T_9T / stage3_9T_11T")

lrs = [r["lr"] for r in train_rows]
peak = max(lrs)
# The decay starts at the last step still at the peak (its multiplier is 1 - 0/decay_steps).
decay_start = next(i for i in range(len(lrs)) if i >= config.warmup_steps and lrs[i] < peak) - 1
flat = all(abs(x - peak) < 1e-12 for x in lrs[config.warmup_steps:decay_start + 1])
linear_to_zero = all(a > b for a, b in zip(lrs[decay_start:], lrs[decay_start + 1:])) and lrs[-1] <= peak / 5
decay_frac = (len(lrs) - decay_start) / len(lrs)
book.verdict("WSD: constant learning rate, then linear decay to 0 over the last 10% of steps",
             f"constant at {peak:g} from step {config.warmup_steps} to {decay_start}; decays over the last "
             f"{100 * decay_frac:.1f}% to {lrs[-1]:.2g} (0 after the last update)",
             "holds" if flat and linear_to_zero and abs(decay_frac - 0.1) < 0.02 else "differs",
             source="stage1_8T.yaml lr_decay_style: linear, min_decay_lr: 0")

# %% [markdown]
# ## Validation loss per domain
# Held-out documents of each domain (chapter 01), the same packed rows at every evaluation.

# %%
fig = plot_metric_family(result, "valid_loss/", "validation loss")
book.savefig(fig, "validation_loss")
plt.show()
evals = result.rows("eval")
for k in sorted(x for x in evals[-1] if x.startswith("valid_loss")):
    print(f"{k:<32} {evals[0][k]:.3f} -> {evals[-1][k]:.3f}")
    book.number(f"final {k}", round(evals[-1][k], 4))

# The decay phase is where WSD earns its keep: the loss drops as the learning rate anneals.
before = [r for r in evals if r["step"] <= decay_start]
drop = before[-1]["valid_loss"] - evals[-1]["valid_loss"]
book.verdict("The loss falls during the learning-rate decay (WSD's annealing gain)",
             f"mean validation loss {before[-1]['valid_loss']:.3f} at step {before[-1]['step']} (decay starts at "
             f"{decay_start}) -> {evals[-1]['valid_loss']:.3f} at the end (change {-drop:+.3f})",
             "holds" if drop > 0.01 else ("differs" if drop < -0.01 else "inconclusive"),
             source="SmolLM3 blog, Training configuration (WSD)")

# %% [markdown]
# ## Held-out tasks over training
# `cloze`: the choice with the lowest loss; `arithmetic`, `code_output`, `translation`: exact match of the
# answer (teacher-forced argmax on every answer token, which is exactly what greedy decoding would produce).

# %%
fig = plot_metric_family(result, "acc/", "accuracy (exact match / cloze)")
fig.axes[0].set_ylim(-0.02, 1.02)
book.savefig(fig, "heldout_accuracy")
plt.show()
fig = plot_metric_family(result, "token_acc/", "per-token answer accuracy")
book.savefig(fig, "heldout_token_accuracy")
plt.show()
for k in sorted(x for x in evals[-1] if x.startswith(("acc/", "token_acc/"))):
    print(f"{k:<24} {evals[0][k]:.3f} -> {evals[-1][k]:.3f}")
    book.number(f"final {k}", round(evals[-1][k], 4))

# %% [markdown]
# ## The checkpoint, loaded by plain transformers
# Later chapters start from `final_checkpoint(output_dir)`. It is an ordinary Hugging Face folder: model,
# config and the run's tokenizer, with the trainer's state beside them for resuming.

# %%
path = final_checkpoint(output_dir)
model = AutoModelForCausalLM.from_pretrained(path).eval()
tokenizer = AutoTokenizer.from_pretrained(path)
prompt = data.valid["web"][0]["text"][:80]
ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
with torch.no_grad():
    out = model.generate(**ids, max_new_tokens=40, do_sample=False)
sample = tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
print(f"checkpoint: {path}\nprompt:     {prompt!r}\ncontinued:  {sample!r}")
book.number("final checkpoint", str(path))

# %% [markdown]
# **Verdict.** The recorded verdicts say whether the run followed the recipe's shape (three stages at
# 8 : 2 : 1.1, WSD with a linear decay over the last 10%) and whether the loss fell during the decay at this
# scale. The per-domain curves show where each stage's mixture shifts the loss; the held-out task curves show
# what a model of this size picks up within its budget.
