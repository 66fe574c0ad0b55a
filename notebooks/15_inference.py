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
#     needs: [13_merging]
# ---

# %% [markdown]
# # 15 · Inference: both modes, tools, 128k, and the model served
#
# The released SmolLM3 is used the way its model card shows: through the chat template, with extended thinking on
# or off (`enable_thinking`, or `/think` and `/no_think` in the system prompt) and the recommended sampling
# (temperature 0.6, top_p 0.95); with tools, listed to the model as XML (`xml_tools`) or Python (`python_tools`)
# functions; at 128k tokens with YaRN ×2 over the 64k it was trained to; and served over an OpenAI-compatible API
# (vLLM, SGLang, or `transformers serve`), `enable_thinking` travelling in `chat_template_kwargs`.
#
# Here chapter 13's merged model does each of these: generation in both modes, an **agent loop** (the model's
# calls parsed in both styles, run from a registry of allowed Python functions over the book's world, results fed
# back as tool turns, a bounded number of turns, every malformed or unknown call answered with an error turn), the
# YaRN configuration written and loaded, and the model **served** by `transformers serve` on 127.0.0.1 and asked
# through the `openai` client.

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"

# %%
import time

import pandas as pd
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from smolbook import Chapter
from smolbook.agent import agent_on_rows, generate_in_process, generate_served, try_modes, world_tools
from smolbook.chat import parse_completion
from smolbook.claims import Check
from smolbook.data import build_chat_data, generate_corpus, load_tokenizer
from smolbook.extension import save_yarn
from smolbook.model import kv_cache_bytes_per_token, smollm3_config
from smolbook.recipe import load_post_training
from smolbook.serve import compare_answers, process_gone, released_serving_commands, serve

# %%
book = Chapter("15_inference", scale, seed, output_dir)
s = book.scale
post = load_post_training()
ckpt = book.start_from("13_merging")
model, tok = AutoModelForCausalLM.from_pretrained(ckpt).eval(), load_tokenizer(ckpt)
temperature, top_p = post.value("inference", "temperature"), post.value("inference", "top_p")
new_tokens = s.evaluation.agent_tokens
print(f"the merged model of chapter 13: {ckpt}\nrecommended sampling: temperature {temperature}, top_p {top_p}")

# %% [markdown]
# ## Both modes through the chat template
# Four ways to ask one held-out question: `enable_thinking` on and off, the `/no_think` flag in a system prompt
# (the flag wins over the keyword), and a custom system instruction with `/think`. Each prompt is rendered by the
# model's own chat template; each answer is drawn with the recommended sampling and split into its think block and
# its answer by `smolbook.chat.parse_completion`.

# %%
corpus = generate_corpus(s.corpus_docs_per_domain or 1500, s.eval_examples_per_task or 500, seed)   # its world
chat = build_chat_data(s, seed=seed, corpus=corpus)
question = next(r for r in chat.heldout["facts"] if r["mode"] == "no_think")["messages"]
question = [m for m in question if m["role"] == "user"][:1]
CASES = {"enable_thinking=True": ([], {"enable_thinking": True}),
         "enable_thinking=False": ([], {"enable_thinking": False}),
         "system /no_think": ([{"role": "system", "content": "/no_think"}], {"enable_thinking": True}),
         "custom system + /think": ([{"role": "system", "content": "You answer with one sentence. /think"}], {})}
torch.manual_seed(seed)
sampled = generate_in_process(model, tok, max_new_tokens=new_tokens, sampling={"temperature": temperature, "top_p": top_p})
modes = try_modes(sampled, tok, question, CASES)
print("question:", question[0]["content"])
pd.DataFrame(modes)

# %%
MODES = Check("The chat template sets the mode as the card says: enable_thinking, the system flag winning over it",
              "model card, Chat template; blog, Chat template")
says = {m["case"]: m["prompt says"] for m in modes}
_ = book.check(MODES, ", ".join(f"{k}: {v}" for k, v in says.items()),
           says == {"enable_thinking=True": "/think", "enable_thinking=False": "/no_think",
                    "system /no_think": "/no_think", "custom system + /think": "/think"})

# %% [markdown]
# ## An agent loop over the world's tools
# Three tools as Python functions over the generated world (`get_birthplace`, `get_city_info`, `calculate`), in a
# registry of allowed functions. The loop shows the model its tools in the row's style, parses each call it writes
# (JSON inside `<tool_call>`, or a Python call inside `<code>` read with `ast`, never `eval`), runs allowed calls,
# answers anything else with an error turn, and stops at an answer without a call or after three turns. It runs
# greedily on held-out tool questions of both styles and both modes.

# %%
tools = world_tools(corpus.world)
greedy = generate_in_process(model, tok, max_new_tokens=new_tokens)
per_kind = s.evaluation.agent_items
rows = [r for k in ("tools_xml", "tools_python") for r in chat.heldout[k].select(range(per_kind))]
t0 = time.perf_counter()
agent = pd.DataFrame(agent_on_rows(greedy, rows, tools, max_turns=3))
print(f"{len(agent)} agent runs in {time.perf_counter() - t0:.1f} s")
agent

# %%
for col in ("parsed", "malformed", "error_turns"):
    book.number(f"agent {col.replace('_', ' ')} (total)", int(agent[col].sum()))
book.number("agent runs calling the expected tool first", round(float(agent["expected_call"].mean()), 3),
            note=f"{len(agent)} held-out tool questions, greedy")
book.number("agent runs answering correctly after the tool results", round(float(agent["answer_correct"].mean()), 3),
            note=f"{len(agent)} held-out tool questions, greedy, exact match of the final answer")
demo = tools.execute(parse_completion('<tool_call>{"name": "rm", "arguments": {}}</tool_call>').tool_calls[0])
bad = tools.execute(parse_completion("<code>get_birthplace(person=open('x'))</code>").tool_calls[0])
print("an unknown tool  ->", demo, "\na non-literal call ->", bad)
AGENT = Check("Every call the loop met was parsed or answered with an error turn, within the turn bound",
              "blog, Chat template (tool calling in both styles)")
_ = book.check(AGENT, f"{int(agent['calls'].sum())} calls: {int(agent['parsed'].sum())} parsed, "
                  f"{int(agent['malformed'].sum())} malformed; at most {int(agent['turns'].max())} turns",
           bool((agent["parsed"] + agent["malformed"] == agent["calls"]).all() and agent["turns"].max() <= 3
                and "error" in demo and "error" in bad))

# %% [markdown]
# ## 128k with YaRN ×2
# The card's long-context note: the config is set for 65,536 tokens; for 128k set `rope_scaling` to YaRN, factor 2,
# over `original_max_position_embeddings` 65,536. The same is written here over this model's own training length,
# saved, and reloaded by plain transformers; beside it, what one token of context costs the 3B in KV cache at 128k.

# %%
factor = post.value("inference", "yarn_factor")
trained = AutoConfig.from_pretrained(ckpt).max_position_embeddings
yarn_dir = save_yarn(ckpt, book.dir / "yarn", factor, trained)
cfg = AutoConfig.from_pretrained(yarn_dir)
print(f"{yarn_dir.name}: {cfg.rope_parameters}, max_position_embeddings {cfg.max_position_embeddings:,}")
cfg_3b = smollm3_config("smollm3-3b")
per_token = kv_cache_bytes_per_token(cfg_3b)
ctx = post.value("inference", "max_position_embeddings")
print(f"SmolLM3-3B KV cache (bf16): {per_token:,d} bytes per token; at {ctx:,d} tokens "
      f"{per_token * ctx / 2 ** 30:.1f} GiB per sequence")
book.number("3B KV cache at 128k", round(per_token * ctx / 2 ** 30, 2), "GiB", note="bf16, GQA 4 KV heads, one sequence")

# %%
YARN = Check("YaRN x2 written and reloaded: rope_type yarn, factor 2, context twice the trained length",
             "model card, Long context processing")
_ = book.check(YARN, f"{cfg.rope_parameters.get('rope_type')} x{cfg.rope_parameters.get('factor')}, "
                 f"{cfg.max_position_embeddings:,} = 2 x {trained:,}",
           cfg.rope_parameters.get("rope_type") == "yarn" and cfg.rope_parameters.get("factor") == factor
           and cfg.max_position_embeddings == int(factor * trained))

# %% [markdown]
# ## Served: `transformers serve` and the `openai` client
# The merged checkpoint is served on 127.0.0.1 (a free port; the server's log kept in this chapter's folder),
# asked through the `openai` client in both modes, with XML tools and Python tools, and through the same agent loop;
# then stopped, and checked gone. `transformers serve` decodes greedily unless the checkpoint's generation config
# enables sampling (it ignores a request's `temperature` otherwise), so the served answers can be compared with the
# in-process greedy ones token for token.

# %%
with serve(ckpt, log=book.dir / "server.log", timeout=180) as server:
    pid = server.process.pid
    served = {mode: server.chat(question, mode=mode, max_tokens=new_tokens) for mode in ("think", "no_think")}
    served_tools = {style: server.chat(question, mode="no_think", max_tokens=new_tokens,
                                       **{f"{style}_tools": tools.descriptions()}) for style in ("xml", "python")}
    served_agent = pd.DataFrame(agent_on_rows(generate_served(server, max_tokens=new_tokens), rows[:2], tools,
                                              max_turns=2))
    requests = pd.DataFrame(server.requests)
    started = server.started_s
print(f"server up in {started:.1f} s; {len(requests)} requests; stopped, process gone: {process_gone(pid)}")
local = {mode: greedy(question, {"enable_thinking": mode == "think"}) for mode in ("think", "no_think")}
compared = compare_answers(served, local)
same = {r["mode"]: r["same"] for r in compared}
pd.DataFrame(compared)

# %%
book.number("server start", round(started, 1), "s")
book.number("served request mean latency", round(float(requests["seconds"].mean()), 3), "s",
            note=f"{len(requests)} requests, CPU, {new_tokens} new tokens at most")
SERVED = Check("The served model answers through the openai client in both modes and with tools, as the same "
               "model does in process (greedy), and the server leaves no process behind",
               "model card, vLLM and SGLang (OpenAI-compatible serving, chat_template_kwargs)")
_ = book.check(SERVED, f"{len(requests)} requests answered; same answer as in process: {same}; process gone: "
                   f"{process_gone(pid)}", all(same.values()) and process_gone(pid) and len(requests) >= 4)
print("\n".join(f"{k}: {v}" for k, v in released_serving_commands().items()))
served_agent

# %% [markdown]
# **Verdict.** These are implementation checks, not claims about quality: the template puts each mode where the
# card says, the agent loop turns every call into a result or an error turn within its bound, YaRN ×2 reloads with
# twice the trained context, and the served model answers the `openai` client as the same weights do in process.
# The answers themselves are those of a model of this scale; at `full` the same cells serve the released recipe's
# merged model (or the released SmolLM3-3B with the vLLM and SGLang commands above).
