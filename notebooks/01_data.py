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
# # 01 · Data: mixtures, a corpus you can train on, the tokenizer, packing
#
# SmolLM3 saw 11.2T tokens drawn from about fifty datasets — English web (FineWeb-Edu, DCLM),
# multilingual web (FineWeb2-HQ in a dozen languages), code (The Stack v2, then Stack-Edu), math
# (FineMath, InfiWebMath, MegaMath) and, from the long-context stages on, reasoning data. The
# released nanotron configs give every dataset a weight in every stage; the decay stage
# up-samples code and math, and the long-context stages bring in reasoning traces
# ([SmolLM3 blog](https://huggingface.co/blog/smollm3); configs in `smollm3-nanotron-configs`).
#
# At `small`/`full` the book streams those datasets from the hub. At `smoke`/`tiny` there is no
# hub: the library generates an offline corpus with one domain per recipe category, built so a
# 1–5M-parameter model can learn something real in minutes (facts stated and restated within a
# document, a small world of entities, arithmetic on small numbers), with held-out evaluations
# that the recipe's choices can move. Each recipe dataset is stood in for by the domain of its
# category and sampled by its own weight, so the domain shares equal the stage's category shares.

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"

# %%
import time

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from smolbook import Chapter
from smolbook.data import (ATTN_IMPLEMENTATION, DOMAINS, EVAL_TASKS, PretrainStream, card_table, plots, prepare,
                           time_attention)
from smolbook.recipe import load_recipe

book = Chapter("01_data", scale, seed, output_dir)
recipe = load_recipe()

# %% [markdown]
# ## The data cards
#
# One card per dataset lives in `data_cards/` (generated from the recipe plus a hand-written table of
# descriptions and licences). The overview: every dataset with its weight in each stage, as released.

# %%
rows = card_table(recipe)
display(Markdown(plots.markdown_table(rows, ["dataset", "category", "hub_id", "licence", *recipe.stage_names])))
book.number("recipe datasets", len(rows), note="distinct dataset folders over the five stages")

# %% [markdown]
# ## The mixtures by category
#
# Weights are normalised by each stage's sum (the decay stage's weights sum to 1.00565, not 1).

# %%
fig = plots.stage_mixture_bars(recipe)
book.savefig(fig, "stage_mixtures")
plt.show()
for s in recipe.stage_names:
    st = recipe.stage(s)
    print(f"{s:9s} weight sum {st.weight_sum:.6g}  " + "  ".join(f"{c} {100 * v:.1f}%" for c, v in st.category_shares().items()))

# %% [markdown]
# ## The offline corpus
#
# `prepare` generates the corpus (deterministic from the seed, sized by the scale), trains the
# tokenizer, pre-tokenizes every document once and caches it all under `output_dir/data`; a second
# call loads the cache.

# %%
t0 = time.perf_counter()
data = prepare(scale, output_dir, seed=seed)
wall = time.perf_counter() - t0
m = data.manifest
print(f"{'loaded from cache' if data.from_cache else 'built'} in {wall:.1f}s; build timings: {m['seconds']}")
print("world:", m["world"])
stats = [{"domain": d, **data.sizes()[d]} for d in DOMAINS]
display(Markdown(plots.markdown_table(stats)))
book.number("corpus build time", m["seconds"]["total"], "s", note="generate + tokenizer + tokenize + write")
book.number("corpus generation time", m["seconds"]["generate"], "s")
book.number("tokenizer vocabulary", len(data.tokenizer), "tokens")
for d in DOMAINS:
    book.number(f"{d} documents", data.sizes()[d]["docs"])
    book.number(f"{d} tokens", data.sizes()[d]["tokens"], "tokens")

# %% [markdown]
# Document lengths have a long tail past the training context (dashed line), so packing has to
# split documents across rows, and the long-context chapter has long documents to learn from.

# %%
fig = plots.length_histograms(data, data.scale.seq_len)
book.savefig(fig, "length_distribution")
plt.show()

# %% [markdown]
# ## One document per domain

# %%
for d in DOMAINS:
    text = data.train[d][0]["text"]
    print(f"===== {d} ({len(data.tokens['train'][d].doc(0))} tokens)\n{text[:700]}{' …' if len(text) > 700 else ''}\n")

# %% [markdown]
# ## Held-out evaluations
#
# Built from people never mentioned in training and arithmetic problems (a, op, b) set aside by a
# keyed hash: knowledge cloze with 4 choices (the fact is stated earlier in the prompt, so copying
# at a distance answers it), arithmetic exact match, code-output prediction, translation.

# %%
for t in EVAL_TASKS:
    row = data.evals[t][0]
    print(f"===== {t} ({len(data.evals[t])} rows)\n{row['prompt'][-400:]}\n--> {row['answer']!r}"
          + (f"  choices {row['choices']}" if "choices" in row else "") + "\n")

# %% [markdown]
# ## The tokenizer
#
# A byte-level BPE with Llama-3's pre-tokenization split, trained on the corpus at the scale's
# vocabulary size, carrying SmolLM3's special tokens. Base eos is `<|end_of_text|>` (appended to
# every pretraining document); the chat chapters stop on `<|im_end|>`.

# %%
tok = data.tokenizer
print("vocabulary:", len(tok), "| bos/eos/pad:", tok.bos_token, tok.eos_token, tok.pad_token)
sample = "Problem: What is 7 + 5?\n<think>\n7 + 5 = 12.\n</think>\nThe answer is 12."
print(tok.convert_ids_to_tokens(tok(sample, add_special_tokens=False)["input_ids"]))

# %% [markdown]
# ## Packing, with document boundaries
#
# The stream interleaves the stage's datasets by weight, one row per source, and packs documents
# into rows of `seq_len`. With intra-document masking, `position_ids` restart at every document;
# called without an `attention_mask` and with `use_cache=False`, transformers turns that into the
# block-diagonal causal mask below.

# %%
stream = PretrainStream(data, stages=["stable", "stable-2", "decay"], seed=seed)
batch = next(stream)
fig = plots.packed_batch_figure(batch, tok)
book.savefig(fig, "packed_batch")
plt.show()

n = min(len(stream) - 1, 200)
for _ in range(n):
    next(stream)
served = stream.tokens_by(stream.stage)
total = sum(served.values())
target = recipe.stage(stream.stage).category_shares()
print(f"after {stream.tokens_seen} tokens (stage {stream.stage}):")
for c in target:
    print(f"  {c:17s} served {100 * served.get(c, 0) / total:5.1f}%   target {100 * target[c]:5.1f}%")

# %% [markdown]
# Does the masking really keep documents apart? A document packed after another must give the
# same logits as the document alone when positions restart, and different ones when they do not.
# Both attention implementations are checked, and timed side by side on packed rows.

# %%
match = {impl: plots.logits_match_alone(data.scale.model.vocab_size, impl, seed) for impl in ("sdpa", "eager")}
print(match)
timing = time_attention(data.scale.model, seq_len=data.scale.seq_len, batch_size=4, steps=3)
print({k: f"{v * 1000:.0f} ms/step" for k, v in timing.items()}, "| the book uses", ATTN_IMPLEMENTATION)
book.number("sdpa step time", round(timing["sdpa"] * 1000, 1), "ms", note="median forward+backward, batch 4 packed rows")
book.number("eager step time", round(timing["eager"] * 1000, 1), "ms", note="median forward+backward, batch 4 packed rows")
ok = all(v["masking on"] <= 1e-5 and v["masking off"] > 1e-3 for v in match.values())
book.check(
    "Intra-document masking (reset position_ids, no attention_mask, use_cache=False) keeps packed documents apart",
    "max |logit diff| packed vs alone: " + ", ".join(f"{k} {v['masking on']:.1e} on / {v['masking off']:.2f} off"
                                                     for k, v in match.items()),
    ok, source="stage1_8T.yaml: _use_doc_masking: true",
)

# %% [markdown]
# ## Post-training conversations
#
# SmolLM3's post-training is data work: reasoning traces in ChatML, a dual-mode SFT mixture (think /
# no_think) over math, code, reasoning, instruction following, multilinguality and tool calling,
# and preference pairs. The hub data stands in at `small`/`full`; at `smoke`/`tiny` the library
# generates conversations from the same world as the corpus, one kind per recipe domain, half in each
# mode, each with a held-out split drawn from held-out people, cities, arithmetic triples and
# programs (cards in `data_cards/offline_chat/`). The SFT, APO and evaluation chapters train and
# score on them. One example of each kind, in think mode where the kind has one (the reasoning is the
# generator's own solution, step by step):

# %%
from smolbook.data import build_chat_data, describe_row

chat = build_chat_data(data.scale, seed=seed)
for kind in chat.train:
    print(describe_row(chat.train[kind][0], width=110), end="\n\n")

# %% [markdown]
# Sizes per kind and mode. Nothing in a held-out split occurs in training; the evaluation chapter
# generates through the chat template on the held-out rows and scores exact answers, IFEval's
# instructions, tool calls, language and format.

# %%
display(Markdown(plots.markdown_table(chat.table())))
book.number("offline chat conversations (train)", sum(len(d) for d in chat.train.values()),
            note=f"{len(chat.train)} kinds, both modes")
book.number("offline chat conversations (held out)", sum(len(d) for d in chat.heldout.values()),
            note="held-out people, cities, arithmetic and programs")
