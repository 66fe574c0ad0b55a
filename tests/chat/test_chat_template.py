"""smolbook's chat template against the released SmolLM3 template: byte-identical renders, and a loss mask
that TRL's assistant_only_loss puts on exactly what the assistant writes."""
from __future__ import annotations

import itertools
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import transformers.utils.chat_template_utils as ctu
from smolbook.chat import CHAT_TEMPLATE, attach_template, render, template_tokenizer

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "smollm3_chat_template.jinja"
PINNED = datetime(2026, 11, 3)  # a one-digit day: the released template zero-pads it ("03 November 2026")
PINNED_TEXT = "03 November 2026"
NO_THINK_PREFILL = "<think>\n\n</think>\n"


@pytest.fixture(scope="module")
def reference() -> str:
    if not REFERENCE.is_file():
        pytest.skip(f"released SmolLM3 chat template not found at {REFERENCE}")
    return REFERENCE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tok():
    return template_tokenizer()


@contextmanager
def pinned_today(day: datetime):
    """Pin strftime_now (transformers' date global for chat templates) to ``day``."""
    class Fixed(datetime):
        @classmethod
        def now(cls, tz=None):
            return day

    with mock.patch.object(ctu, "datetime", Fixed):
        yield


def both(tok, reference: str, messages: list, kwargs: dict) -> tuple[str, str, str]:
    """(released, ours with the date pinned the same way, ours with the date passed as current_date)."""
    with pinned_today(PINNED):
        released = tok.apply_chat_template(messages, chat_template=reference, tokenize=False, **kwargs)
        ours = tok.apply_chat_template(messages, chat_template=CHAT_TEMPLATE, tokenize=False, **kwargs)
    with pinned_today(datetime(2031, 1, 1)):  # current_date must win over the clock
        ours_dated = tok.apply_chat_template(messages, chat_template=CHAT_TEMPLATE, tokenize=False,
                                             current_date=PINNED_TEXT, **kwargs)
    return released, ours, ours_dated


# ── the hand-written conformance set ─────────────────────────────────────────────────────────

XML_TOOLS = [{"name": "get_weather", "description": "Weather in a city", "parameters": {"city": {"type": "string"}}},
             {"name": "add", "description": "Add two numbers", "parameters": {"a": "int", "b": "int"}}]
PY_TOOLS = ["def search(query: str) -> list:\n    \"\"\"Search the web.\"\"\"",
            {"name": "calculator", "args": ["expression"]}]
TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "Look a word up",
                                           "parameters": {"type": "object", "properties": {"w": {"type": "string"}}}}}]

SYSTEMS = [
    None,
    "You are a pirate.",
    "Be brief. /think",
    "Be brief. /no_think",
    "/no_think",
    "/think",
    "/system_override You are terse.",
    "/system_override /no_think Answer in French.",
    "Trailing blanks   \n\n",
    "Both /no_think and /think: no_think wins",
    "/no_/thinkthink",  # cutting /think out leaves "/no_think" behind, as in the released template
    "",
]
BODIES = [
    [{"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}],
    [{"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": "<think>\nSimple sum.\n</think>\n4"},
     {"role": "user", "content": "and 3+3?"}],
    [{"role": "user", "content": "Weather in Paris?"},
     {"role": "assistant", "content": "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"},
     {"role": "tool", "content": "{\"temp\": 21}"},
     {"role": "assistant", "content": "\n\nIt is 21 degrees."}],
    [{"role": "user", "content": "Search it"},
     {"role": "assistant", "content": "<code>search(query='smollm3')</code>"},
     {"role": "tool", "content": "['a', 'b']"},
     {"role": "assistant", "content": "Found two."},
     {"role": "user", "content": "thanks"}],
]
TOOL_SETS = [{}, {"xml_tools": XML_TOOLS}, {"python_tools": PY_TOOLS}, {"tools": TOOLS},
             {"xml_tools": XML_TOOLS, "python_tools": PY_TOOLS}]
THINKING = [{}, {"enable_thinking": True}, {"enable_thinking": False}]


def conformance_cases() -> list[tuple[str, list, dict]]:
    cases = []
    # Every system prompt meets every enable_thinking value; bodies, tools and the generation prompt rotate.
    for i, (system, thinking) in enumerate(itertools.product(SYSTEMS, THINKING)):
        messages = ([{"role": "system", "content": system}] if system is not None else []) + BODIES[i % len(BODIES)]
        kwargs = {**thinking, **TOOL_SETS[i % len(TOOL_SETS)], "add_generation_prompt": bool(i % 2)}
        label = f"enable_thinking={thinking['enable_thinking']}" if thinking else "no-keyword"
        cases.append((f"system{SYSTEMS.index(system)}-{label}-{i}", messages, kwargs))
    # Corners the rotation does not reach.
    extra = [
        ("tools-beat-xml_tools", BODIES[3], {"tools": TOOLS, "xml_tools": XML_TOOLS}),
        ("override-ignores-tools", [{"role": "system", "content": "/system_override Short."}] + BODIES[3],
         {"xml_tools": XML_TOOLS, "python_tools": PY_TOOLS, "add_generation_prompt": True}),
        ("no_think-keyword-vs-think-flag", [{"role": "system", "content": "/think"}] + BODIES[2],
         {"enable_thinking": False, "add_generation_prompt": True}),
        ("think-block-in-no_think", BODIES[2], {"enable_thinking": False}),
        ("non-string-content", [{"role": "user", "content": "q"}, {"role": "assistant", "content": None},
                                {"role": "user", "content": [{"type": "text", "text": "multimodal"}]}], {}),
        ("late-system-and-unknown-role", [{"role": "user", "content": "a"}, {"role": "system", "content": "late"},
                                          {"role": "narrator", "content": "dropped"}], {"add_generation_prompt": True}),
        ("enable_thinking-None", BODIES[1], {"enable_thinking": None, "add_generation_prompt": True}),
        ("empty-tool-lists", BODIES[0], {"xml_tools": [], "python_tools": [], "tools": []}),
        ("unicode", [{"role": "system", "content": "Réponds en français. /no_think"},
                     {"role": "user", "content": "Ça va ? 🙂"}, {"role": "assistant", "content": "Très bien."}],
         {"python_tools": ["def f(): ..."]}),
    ]
    return cases + extra


CASES = conformance_cases()


def test_conformance_set_covers_every_flag():
    def count(pred):
        return sum(1 for _, messages, kwargs in CASES if pred(messages, kwargs))

    system = lambda m: m[0]["content"] if m[0]["role"] == "system" else None  # noqa: E731
    coverage = {
        "no system": count(lambda m, k: system(m) is None),
        "custom system": count(lambda m, k: bool(system(m)) and "/" not in system(m)),
        "/think flag": count(lambda m, k: "/think" in (system(m) or "")),
        "/no_think flag": count(lambda m, k: "/no_think" in (system(m) or "")),
        "flag against keyword": count(lambda m, k: "/think" in (system(m) or "") and k.get("enable_thinking") is False),
        "enable_thinking True": count(lambda m, k: k.get("enable_thinking") is True),
        "enable_thinking False": count(lambda m, k: k.get("enable_thinking") is False),
        "enable_thinking absent": count(lambda m, k: "enable_thinking" not in k),
        "/system_override": count(lambda m, k: "/system_override" in (system(m) or "")),
        "xml_tools": count(lambda m, k: bool(k.get("xml_tools"))),
        "python_tools": count(lambda m, k: bool(k.get("python_tools"))),
        "tools": count(lambda m, k: bool(k.get("tools"))),
        "tool role": count(lambda m, k: any(x["role"] == "tool" for x in m)),
        "multi-turn": count(lambda m, k: sum(x["role"] == "user" for x in m) >= 2),
        "assistant with think": count(lambda m, k: any(x["role"] == "assistant" and "<think>" in str(x["content"]) for x in m)),
        "assistant without think": count(lambda m, k: any(x["role"] == "assistant" and "<think>" not in str(x["content"]) for x in m)),
        "generation prompt on": count(lambda m, k: k.get("add_generation_prompt") is True),
        "generation prompt off": count(lambda m, k: not k.get("add_generation_prompt")),
    }
    assert len(CASES) >= 30
    assert all(n >= 2 for n in coverage.values()), coverage


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_renders_byte_identical_to_released_template(case, tok, reference):
    _, messages, kwargs = case
    released, ours, ours_dated = both(tok, reference, messages, kwargs)
    assert ours == released
    assert ours_dated == released
    if "/system_override" not in str(messages[0]["content"]):
        assert f"Today Date: {PINNED_TEXT}\n" in released


def test_quirk_no_im_end_after_system_block_without_tools(tok, reference):
    released, ours, _ = both(tok, reference, BODIES[0], {})
    assert ours == released
    system_block = ours.split("<|im_start|>user", 1)[0]
    assert "<|im_end|>" not in system_block and system_block.endswith("\n\n")
    with_tools, _, _ = both(tok, reference, BODIES[0], {"xml_tools": XML_TOOLS})
    assert with_tools.split("<|im_start|>user", 1)[0].endswith("\n\n<|im_end|>\n")


def test_render_api_matches_released_template(tok, reference):
    """smolbook.chat.render (what the CLI prints) is the released template's text for the same date."""
    messages = [{"role": "system", "content": "Be kind."}] + BODIES[4]
    with pinned_today(PINNED):
        released = tok.apply_chat_template(messages, chat_template=reference, tokenize=False,
                                           enable_thinking=False, python_tools=PY_TOOLS, add_generation_prompt=True)
    assert render(messages, enable_thinking=False, python_tools=PY_TOOLS, date="3 November 2026",
                  add_generation_prompt=True) == released


def test_attach_template_sets_the_template():
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models

    bare = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]")))
    assert attach_template(bare) is bare and bare.chat_template == CHAT_TEMPLATE
    assert "{%- generation -%}" in CHAT_TEMPLATE and "{%- endgeneration -%}" in CHAT_TEMPLATE


# ── random conversations ──────────────────────────────────────────────────────────────────────

FRAGMENTS = ["hello", " ", "\n", "\n\n", "/think", "/no_think", "/system_override", "<think>", "</think>",
             "é🙂", "{'a': 1}", "<tool_call>", "x  ", "Knowledge"]
texts = st.lists(st.sampled_from(FRAGMENTS), max_size=6).map("".join)
turns = st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "tool"]), "content": texts}),
                 min_size=1, max_size=6)
tool_dicts = st.fixed_dictionaries({"name": texts, "n": st.integers(0, 9)})
tool_lists = st.none() | st.lists(st.one_of(texts, tool_dicts), max_size=3)
schema_lists = st.none() | st.lists(tool_dicts, max_size=3)  # transformers' `tools` keyword takes dicts only


@settings(max_examples=100, deadline=None)
@given(system=st.none() | texts, body=turns, thinking=st.sampled_from([None, True, False, "absent"]),
       xml_tools=tool_lists, python_tools=tool_lists, tools=schema_lists, generation_prompt=st.booleans())
def test_random_conversations_render_identically(tok, reference, system, body, thinking, xml_tools, python_tools,
                                                tools, generation_prompt):
    messages = ([{"role": "system", "content": system}] if system is not None else []) + body
    kwargs = {"add_generation_prompt": generation_prompt, "tools": tools}
    kwargs.update({k: v for k, v in (("xml_tools", xml_tools), ("python_tools", python_tools)) if v is not None})
    if thinking != "absent":
        kwargs["enable_thinking"] = thinking
    released, ours, ours_dated = both(tok, reference, messages, kwargs)
    assert ours == released
    assert ours_dated == released
    # The generation markers hold exactly what each assistant turn writes: its content and <|im_end|>.
    (text,), (spans,) = ctu.render_jinja_template([messages], chat_template=CHAT_TEMPLATE,
                                                  return_assistant_tokens_mask=True, current_date=PINNED_TEXT,
                                                  **kwargs)
    assert text == released
    assistant = [m["content"].lstrip("\n") + "<|im_end|>" for m in messages if m["role"] == "assistant"]
    assert [text[a:b] for a, b in spans] == assistant


# ── TRL's assistant_only_loss ────────────────────────────────────────────────────────────────

SFT_EXAMPLES = [  # (messages, template kwargs, reasoning mode the template ends up in)
    ([{"role": "user", "content": "What is 2+2?"},
      {"role": "assistant", "content": "<think>\nTwo and two.\n</think>\nIt is 4."},
      {"role": "user", "content": "And 3+3?"},
      {"role": "assistant", "content": "<think>\nThree and three.\n</think>\n6."}], {}, "/think"),
    ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"},
      {"role": "assistant", "content": "Paris."}], {"enable_thinking": False}, "/no_think"),
    ([{"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"},
      {"role": "tool", "content": "{\"temp\": 21, \"sky\": \"clear\"}"},
      {"role": "assistant", "content": "It is 21 degrees and clear."}],
     {"xml_tools": XML_TOOLS, "enable_thinking": False}, "/no_think"),
    ([{"role": "system", "content": "/think Use tools."}, {"role": "user", "content": "Search smollm3"},
      {"role": "assistant", "content": "<think>\nI should search.\n</think>\n<code>search(query='smollm3')</code>"},
      {"role": "tool", "content": "['SmolLM3 is a 3B model']"},
      {"role": "assistant", "content": "SmolLM3 is a 3B model."}],
     {"python_tools": PY_TOOLS, "enable_thinking": False}, "/think"),
    ([{"role": "system", "content": "/system_override You are terse. /no_think"}, {"role": "user", "content": "Hello there"},
      {"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Goodbye now"},
      {"role": "assistant", "content": "Bye."}], {}, "/no_think"),
]


def trained_bpe_tokenizer():
    """A byte-level BPE trained on the rendered examples, so tokens span several characters and a mask
    boundary inside a token would show."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from smolbook.chat import CHAT_SPECIAL_TOKENS, CHAT_TAG_TOKENS

    corpus = [render(m, date=PINNED_TEXT, **k) for m, k, _ in SFT_EXAMPLES]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=[*CHAT_SPECIAL_TOKENS, "<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(corpus, trainer)
    core.add_tokens(list(CHAT_TAG_TOKENS))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    return attach_template(tokenizer)


def assistant_spans(text: str, messages: list, mode: str) -> list[tuple[int, int]]:
    """Character spans of what each assistant turn writes, found in the rendered text independently of the
    template's generation markers."""
    header = "<|im_start|>assistant\n" + ("" if mode == "/think" else NO_THINK_PREFILL)
    spans, cursor = [], 0
    for message in (m for m in messages if m["role"] == "assistant"):
        start = text.index(header, cursor) + len(header)
        written = message["content"].lstrip("\n") + "<|im_end|>"
        assert text[start:start + len(written)] == written
        spans.append((start, start + len(written)))
        cursor = start + len(written)
    return spans


def test_trl_assistant_only_loss_masks_exactly_the_assistant_turns(tmp_path):
    from datasets import Dataset
    from transformers import SmolLM3Config, SmolLM3ForCausalLM
    from trl import SFTConfig, SFTTrainer
    from trl.chat_template_utils import has_generation_markers, is_chat_template_stop_token_trained

    tokenizer = trained_bpe_tokenizer()
    assert has_generation_markers(tokenizer.chat_template)
    assert is_chat_template_stop_token_trained(tokenizer)

    dataset = Dataset.from_list([
        {"messages": m, "chat_template_kwargs": {"current_date": PINNED_TEXT, "enable_thinking": k.get("enable_thinking", True),
                                                 "xml_tools": [str(t) for t in k.get("xml_tools", [])],
                                                 "python_tools": [str(t) for t in k.get("python_tools", [])]}}
        for m, k, _ in SFT_EXAMPLES])
    config = SmolLM3Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                           pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    args = SFTConfig(output_dir=str(tmp_path), assistant_only_loss=True, max_length=2048, max_steps=1,
                     per_device_train_batch_size=len(SFT_EXAMPLES), report_to="none", save_strategy="no",
                     logging_strategy="no", use_cpu=True, disable_tqdm=True)
    trainer = SFTTrainer(model=SmolLM3ForCausalLM(config), args=args, train_dataset=dataset,
                         processing_class=tokenizer)

    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for row, (messages, kwargs, mode) in zip(trainer.train_dataset, SFT_EXAMPLES):
        tool_kwargs = {k: [str(t) for t in v] for k, v in kwargs.items() if k.endswith("tools")}
        text = render(messages, date=PINNED_TEXT, enable_thinking=kwargs.get("enable_thinking", True), **tool_kwargs)
        encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
        assert row["input_ids"] == encoded["input_ids"]
        spans = assistant_spans(text, messages, mode)
        expected = [any(a <= start and end <= b for a, b in spans) for start, end in encoded["offset_mapping"]]
        # No token straddles a span edge, so "inside a span" and "masked" can be compared exactly.
        assert not any(start < a < end or start < b < end for start, end in encoded["offset_mapping"] for a, b in spans)
        trained = [label != -100 for label in row["labels"]]
        assert trained == expected
        masked_text = tokenizer.decode([t for t, keep in zip(row["input_ids"], trained) if keep])
        assert masked_text == "".join(text[a:b] for a, b in spans)
        # Every assistant turn ends its trained span on <|im_end|>: the model learns to stop.
        ends = [i for i in range(len(trained)) if trained[i] and (i + 1 == len(trained) or not trained[i + 1])]
        assert len(ends) == len(spans) and all(row["input_ids"][i] == im_end for i in ends)
        for message in messages:  # user turns, tool results and the system prompt stay out of the loss
            if message["role"] != "assistant" and message["content"]:
                assert message["content"] not in masked_text

    result = trainer.train()
    assert result.training_loss == result.training_loss and result.training_loss > 0


def test_notebook_conformance_check_counts_and_catches_a_difference(tok, reference):
    from smolbook.chat.conformance import compare_with_reference, find_reference, sample_cases

    assert find_reference() == REFERENCE
    cases = sample_cases(60, seed=1)
    assert compare_with_reference(reference, cases, tok).identical == 60
    altered = reference.replace("Knowledge Cutoff Date: June 2025", "Knowledge Cutoff Date: July 2025")
    result = compare_with_reference(altered, cases, tok)
    assert result.identical < 60 and result.first_mismatch is not None
