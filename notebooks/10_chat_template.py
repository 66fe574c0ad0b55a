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
# # 10 · The chat template
#
# SmolLM3's interface is its chat template (released with the model as `chat_template.jinja`; described in
# the SmolLM3 blog post, section *"Chat template"*). One model serves two modes: it reasons in a
# `<think>` block (`/think`) or answers at once (`/no_think`). The mode is set by the `enable_thinking`
# keyword, but a `/think` or `/no_think` flag in the system prompt wins over the keyword. Every system
# block carries a metadata section (knowledge cut-off, today's date, reasoning mode) unless the system
# prompt says `/system_override`. Tools come in two styles: XML tools, called as
# `<tool_call>{json}</tool_call>`, and Python tools, called as `<code>f(x=1)</code>`.
#
# A model trained by smolbook must speak exactly the released format, quirks included, so smolbook
# writes its own template (`smolbook/templates/chat_template.jinja`) and checks it renders the same bytes
# as the released one. It adds two things that change no byte: `{% generation %}` markers, so TRL's
# `assistant_only_loss` trains only what the assistant writes, and a `current_date` keyword, so renders
# are reproducible.

# %% tags=["parameters"]
scale = "tiny"
seed = 0
output_dir = "runs/tiny"

# %%
from smolbook import Chapter
from smolbook import chat
from smolbook.chat.conformance import compare_with_reference, find_reference, sample_cases
from smolbook.data import prepare

book = Chapter("10_chat_template", scale, seed, output_dir)
DATE = "23 November 2026"  # pinned so every render in this chapter is reproducible

# %% [markdown]
# The tokenizer is the book's (chapter 01): `smolbook.data` builds it and gives it this template through
# `chat.attach_template`, so whatever the SFT chapter tokenizes is rendered by the text checked here.
# Rendering itself does not depend on the vocabulary; the loss mask below is drawn over its tokens.

# %%
tokenizer = prepare(scale, output_dir, seed).tokenizer
print(type(tokenizer).__name__, len(tokenizer), "tokens; carries smolbook's chat template:",
      tokenizer.chat_template == chat.CHAT_TEMPLATE)

# %% [markdown]
# ## Five modes, side by side
#
# The same two-turn exchange rendered in each mode. Things to look for:
#
# * **think** (the default): the long default system prompt describing the Thought/Solution format; the
#   assistant turn is rendered as written, its `<think>` block included.
# * **no_think**: a short default prompt, `Reasoning Mode: /no_think`, and an *empty* think block
#   `<think>\n\n</think>\n` pre-filled before every assistant turn and after the generation prompt: the
#   model is shown that it has already finished thinking.
# * **xml tools** / **python tools**: a `### Tools` section listing each tool with Python's `str()`
#   (single quotes, not JSON), the call format, and, only here, an `<|im_end|>` closing the system block.
# * **system_override**: just the user's instructions, no metadata and no tools.
#
# The quirk that surprises everyone: **without tools the system block is never closed**. There is no
# `<|im_end|>` after the custom instructions; `<|im_start|>user` follows after a blank line. The released
# model was trained on exactly this, so smolbook reproduces it rather than fixing it.

# %%
exchange = [{"role": "user", "content": "What is 17 * 3?"},
            {"role": "assistant", "content": "<think>\n17 * 3 = 51.\n</think>\n51."}]
weather = [{"role": "user", "content": "Weather in Paris?"}]
pinned = dict(date=DATE, tokenizer=tokenizer)
prompt = dict(pinned, add_generation_prompt=True)
renders = {
    "think": chat.render(exchange, **pinned),
    "no_think": chat.render([exchange[0], {"role": "assistant", "content": "51."}], enable_thinking=False, **pinned),
    "xml tools": chat.render(weather, xml_tools=[{"name": "get_weather", "parameters": {"city": "string"}}],
                             enable_thinking=False, **prompt),
    "python tools": chat.render(weather, python_tools=["def get_weather(city: str) -> dict: ..."],
                                enable_thinking=False, **prompt),
    "system_override": chat.render([{"role": "system", "content": "/system_override You are terse. /no_think"},
                                    *weather], **prompt),
}

# %%
fig = chat.draw_renders(renders)
book.savefig(fig, "modes");

# %%
empty_think = "<think>\n\n</think>"
for mode, text in renders.items():
    system_block = text.split("<|im_start|>user", 1)[0]
    print(f"{mode:16s} system block closed by <|im_end|>: {'<|im_end|>' in system_block!s:5s}  "
          f"metadata: {'## Metadata' in system_block!s:5s}  empty think block: {empty_think in text}")

# %% [markdown]
# The precedence rules: the keyword sets the mode, a flag in the system prompt overrides it, and
# `/no_think` beats `/think` when both appear. The flags are cut out of the instructions shown to the
# model (in that order, so `/no_/thinkthink` leaves a `/no_think` behind, as in the released template).

# %%
for system, keyword in [(None, None), (None, False), ("Be brief. /think", False), ("Be brief. /no_think", True),
                        ("/no_think and /think", None)]:
    messages = ([{"role": "system", "content": system}] if system else []) + weather
    text = chat.render(messages, enable_thinking=keyword, **pinned)
    mode = text.split("Reasoning Mode: ", 1)[1].split("\n", 1)[0]
    print(f"system={system!r:24s} enable_thinking={keyword!s:5s} -> {mode}")

# %% [markdown]
# ## Conformance with the released template
#
# Random conversations with random flags (system prompts with and without `/think`, `/no_think` and
# `/system_override`, `enable_thinking` True / False / absent, XML and Python tools, tool results, think
# blocks in assistant turns, generation prompt on or off), rendered with both templates through
# `apply_chat_template`. The released template is reference material kept beside the repository; if it
# is missing the check is reported as inconclusive. The count does not depend on the scale: a render
# costs a millisecond, so every scale checks the same 200 conversations.

# %%
reference_path = find_reference()
if reference_path is None:
    print("released template not found in the reference material beside the repository: conformance not checked")
    book.verdict("smolbook's template renders byte-identical text to the released SmolLM3 template",
                 "not checked: released template not found", "inconclusive", source="SmolLM3 chat_template.jinja",
                 kind="implementation")
else:
    result = compare_with_reference(reference_path.read_text(encoding="utf-8"), sample_cases(200, seed), tokenizer)
    print(f"{result.identical} / {result.total} conversations rendered byte-identical; "
          f"first mismatch: {result.first_mismatch}")
    book.number("conformance", result.identical, unit=f"of {result.total} conversations",
                note="byte-identical renders, smolbook vs released SmolLM3 template")
    book.check("smolbook's template renders byte-identical text to the released SmolLM3 template",
               f"{result.identical}/{result.total} random conversations identical",
               result.identical == result.total, source="SmolLM3 chat_template.jinja")

# %% [markdown]
# ## The loss mask
#
# SFT trains on assistant turns only (the recipe masks user turns and tool results). TRL does it with
# `assistant_only_loss=True`: it asks `apply_chat_template(..., return_assistant_tokens_mask=True)` for the
# characters inside `{% generation %}` blocks and sets every other label to -100. smolbook's markers hold
# what the assistant writes after its prompt: its content and the `<|im_end|>` that stops it. The header
# `<|im_start|>assistant\n` (and, in `/no_think`, the pre-filled empty think block) is the generation
# prompt at inference, so it is not trained; `<|im_end|>` is, so the model learns to stop. (The released
# template wraps the whole turn, header and trailing newline included.)

# %%
conversation = [
    {"role": "system", "content": "Use tools when needed."},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "<think>\nAsk the tool.\n</think>\n<code>get_weather(city='Paris')</code>"},
    {"role": "tool", "content": "{'temp': 21}"},
    {"role": "assistant", "content": "It is 21 degrees."},
]
ids, mask = chat.assistant_token_mask(conversation, tokenizer, python_tools=["def get_weather(city: str): ..."],
                                      current_date=DATE)
start = ids.index(tokenizer.convert_tokens_to_ids("<|im_start|>"), 1)  # skip the long system block in the figure
tokens = [tokenizer.decode([t]) for t in ids]
fig = chat.draw_loss_mask(tokens[start:], mask[start:], per_row=16)
book.savefig(fig, "loss_mask");

# %%
trained = tokenizer.decode([t for t, m in zip(ids, mask) if m])
expected = "".join(m["content"].lstrip("\n") + "<|im_end|>" for m in conversation if m["role"] == "assistant")
print("trained text:", repr(trained))
mask_ok = trained == expected
book.number("trained tokens", sum(mask), unit=f"of {len(ids)} tokens",
            note="assistant-only loss on a tool conversation")
book.check("SFT loss covers assistant turns only (user turns and tool results masked), each turn's <|im_end|> included",
           f"trained tokens decode to exactly the assistant turns: {mask_ok}", mask_ok,
           source="SmolLM3 blog, SFT; TRL assistant_only_loss")

# %% [markdown]
# ## Reading what the model writes
#
# `chat.parse_completion` splits a completion into reasoning (the think block) and answer, and reads
# tool calls from the answer in both styles into one form, `ToolCall(name, arguments)`. Python calls are
# parsed with `ast` and only literal keyword arguments are accepted: nothing the model writes is ever
# evaluated. A malformed call comes back as a `CallError` naming what is wrong, never as an exception.

# %%
completions = [
    "<think>\nI need the weather.\n</think>\n"
    "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call><|im_end|>",
    "<think>\n\n</think>\n<code>get_weather(city='Paris', days=3)</code>",
    "Two calls: <code>search(query='smollm3')\nsummarize(max_words=50)</code>",
    "<tool_call>{'name': 'get_weather'}</tool_call>",
    "<code>x = get_weather('Paris')</code>",
    "<code>get_weather(city=open('/etc/passwd').read())</code>",
    "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}",
    "<think>\nStill thinking when the budget ran out",
]

# %%
parsed = [chat.parse_completion(text) for text in completions]
for text, result in zip(completions, parsed):
    print(repr(text[:70]))
    print(f"   reasoning={result.reasoning!r}  answer={result.answer[:40]!r}  error={result.error!r}")
    for call in result.tool_calls:
        print("   ->", call)

# %% [markdown]
# Rendering a call and parsing it back gives the same call, in both styles.

# %%
call = chat.ToolCall("get_weather", {"city": "Paris", "days": 3, "units": ["C", "F"], "alerts": None})
round_trips = {render.__name__: chat.parse_tool_calls(render(call)) == [call]
               for render in (chat.render_xml_call, chat.render_python_call)}
print(chat.render_xml_call(call), chat.render_python_call(call), round_trips, sep="\n")
calls = [c for r in parsed for c in r.tool_calls]
errors = [c for c in calls if isinstance(c, chat.CallError)] + [r for r in parsed if r.error]
book.number("tool calls parsed", sum(isinstance(c, chat.ToolCall) for c in calls),
            unit=f"calls, from {len(completions)} sample completions")
book.number("malformed completions reported as errors", len(errors), unit="error values, 0 exceptions")
book.check("a tool call rendered in either style parses back to the same call", str(round_trips),
           all(round_trips.values()), source="SmolLM3 chat template tool sections")
