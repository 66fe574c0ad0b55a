"""The agent loop: calls parsed in both styles, run from a registry of allowed functions over the world, results fed
back as tool turns, a bounded number of turns, and every malformed or unknown call answered with an error turn."""
from __future__ import annotations

import json

import pytest

from smolbook.agent import AgentResult, ToolRegistry, run_agent, world_tools
from smolbook.chat import CallError, ToolCall, render_python_call, render_xml_call
from smolbook.data.corpus import generate_corpus
from smolbook.errors import SmolbookError


@pytest.fixture(scope="module")
def world():
    return generate_corpus(20, 4, seed=0).world


def scripted(*turns):
    """A 'model' that writes the given turns in order and records what it was shown."""
    seen = []

    def generate(messages, kwargs):
        seen.append(([dict(m) for m in messages], dict(kwargs)))
        return turns[len(seen) - 1]

    generate.seen = seen
    return generate


@pytest.mark.parametrize("style,render", [("xml", render_xml_call), ("python", render_python_call)])
def test_a_call_runs_and_its_result_comes_back_as_a_tool_turn(world, style, render):
    person = world.people[0]
    model = scripted(render(ToolCall("get_birthplace", {"person": person.name})),
                     f"The answer is {person.city}.")
    result = run_agent(model, [{"role": "user", "content": f"Where was {person.name} born?"}], world_tools(world),
                       style=style)
    assert result.stopped == "answer" and result.answer == f"The answer is {person.city}."
    assert [m["role"] for m in result.messages] == ["user", "assistant", "tool", "assistant"]
    assert json.loads(result.messages[2]["content"]) == {"person": person.name, "birthplace": person.city}
    # the model saw its tools listed in the chosen style, and the tool turn before its second answer
    _, kwargs = model.seen[0]
    assert ("xml_tools" if style == "xml" else "python_tools") in kwargs and kwargs["enable_thinking"] is False
    assert model.seen[1][0][-1]["role"] == "tool"


def test_malformed_unknown_and_wrong_calls_become_error_turns(world):
    model = scripted('<tool_call>{"name": "get_birthplace", "arguments": {"person": </tool_call>',   # bad JSON
                     "<code>__import__('os').system('true')</code>",                                  # not a literal call
                     render_xml_call(ToolCall("delete_everything", {})),                              # not allowed
                     render_xml_call(ToolCall("calculate", {"a": 1, "b": 2})),                        # missing argument
                     "I give up.")
    result = run_agent(model, [{"role": "user", "content": "hi"}], world_tools(world), max_turns=6)
    errors = [json.loads(m["content"])["error"] for m in result.messages if m["role"] == "tool"]
    assert len(errors) == 4 and result.errors == 4 and result.stopped == "answer"
    assert "malformed xml" in errors[0] and "malformed python" in errors[1]
    assert "unknown tool 'delete_everything'" in errors[2] and "takes arguments" in errors[3]
    assert isinstance(result.steps[0].calls[0], CallError)


def test_the_loop_is_bounded(world):
    call = render_xml_call(ToolCall("calculate", {"a": 2, "op": "*", "b": 21}))
    result = run_agent(scripted(*[call] * 10), [{"role": "user", "content": "2*21?"}], world_tools(world), max_turns=3)
    assert result.stopped == "max_turns" and len(result.steps) == 3
    assert all(json.loads(s.results[0]) == {"result": 42} for s in result.steps)
    with pytest.raises(SmolbookError, match="max_turns"):
        run_agent(scripted("x"), [], world_tools(world), max_turns=0)
    with pytest.raises(SmolbookError, match="tool style"):
        run_agent(scripted("x"), [], world_tools(world), style="yaml")


def test_a_tool_that_raises_is_an_error_turn_not_an_exception():
    def boom(x: int) -> str:
        raise ValueError("no")

    reg = ToolRegistry()
    reg.register(boom, {"name": "boom", "parameters": {}})
    assert json.loads(reg.execute(ToolCall("boom", {"x": 1}))) == {"error": "boom failed: no"}
    with pytest.raises(SmolbookError, match="does not match"):
        reg.register(boom, {"name": "other"})


def test_in_process_generation_runs_the_loop_on_a_real_checkpoint(pretrained_run, world):
    from transformers import AutoModelForCausalLM

    from smolbook.agent import generate_in_process
    from smolbook.chapter import find_checkpoint
    from smolbook.data.tokenizer import load_tokenizer

    ckpt = find_checkpoint(pretrained_run, "07_pretraining")
    gen = generate_in_process(AutoModelForCausalLM.from_pretrained(ckpt), load_tokenizer(ckpt), max_new_tokens=8)
    result = run_agent(gen, [{"role": "user", "content": "Where was Ada Darsa born?"}], world_tools(world), max_turns=2)
    assert isinstance(result, AgentResult) and 1 <= len(result.steps) <= 2
    assert result.stopped in ("answer", "max_turns")


def test_try_modes_reads_the_mode_off_the_rendered_prompt():
    """The chapter's four ways of asking: the keyword sets the mode, and a /no_think system flag wins over it."""
    from smolbook.agent import try_modes
    from smolbook.chat.template import template_tokenizer

    cases = {"on": ([], {"enable_thinking": True}), "off": ([], {"enable_thinking": False}),
             "flag": ([{"role": "system", "content": "/no_think"}], {"enable_thinking": True})}
    model = scripted("<think>\nhm\n</think>\nLora", "Lora", "Lora")
    got = try_modes(model, template_tokenizer(), [{"role": "user", "content": "Where?"}], cases)
    assert [(r["case"], r["prompt says"]) for r in got] == [("on", "/think"), ("off", "/no_think"),
                                                            ("flag", "/no_think")]
    assert [r["empty think block in prompt"] for r in got] == [False, True, True]
    assert got[0]["reasoning"] == "hm" and got[0]["answer"] == "Lora"
    assert model.seen[2][0][0] == {"role": "system", "content": "/no_think"}  # the system turn reaches the model
