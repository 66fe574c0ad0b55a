"""An agent loop over the model's tool calls: parse, run an allowed function, feed the result back, repeat.

    from smolbook.agent import generate_in_process, run_agent, world_tools
    tools = world_tools(world)                               # get_birthplace, get_city_info, calculate
    result = run_agent(generate_in_process(model, tok), [{"role": "user", "content": "..."}], tools, style="xml")

* :class:`ToolRegistry` — the allowed functions, each a Python function with its schema; :meth:`ToolRegistry.execute`
  runs a parsed call, and answers anything else — a malformed call (:class:`smolbook.chat.CallError`), a function
  that is not registered, arguments it does not take, an exception — with an error the model reads as the tool turn.
* :func:`run_agent` — at most ``max_turns`` assistant turns: each completion is parsed with :mod:`smolbook.chat`
  (JSON for XML-style calls, ``ast`` for Python-style ones, never ``eval``); a turn without a call ends the loop.
* :func:`generate_in_process` / :func:`generate_served` — the two ways a turn is generated: the model in this
  process through the chat template, or a :class:`smolbook.serve.Server` through the ``openai`` client.

Why hand-written: the serving stacks parse calls for one format; the book's model writes two (XML and Python
style), and the loop has to turn every failure into a turn the model sees rather than an exception.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from smolbook.chat import CallError, ToolCall, parse_completion
from smolbook.data.chat import template_kwargs
from smolbook.data.chat_tools import TOOL_SCHEMAS, run_tool
from smolbook.errors import SmolbookError
from smolbook.evaluate.lighteval_run import quiet_evaluation
from smolbook.evaluate.scoring import answer_matches

STYLES = ("xml", "python")


@dataclass
class ToolRegistry:
    """Allowed functions by name, with the schemas the chat template lists."""

    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    schemas: dict[str, dict] = field(default_factory=dict)

    def register(self, fn: Callable[..., Any], schema: dict) -> None:
        if schema.get("name") != fn.__name__:
            raise SmolbookError(f"schema name {schema.get('name')!r} does not match the function {fn.__name__!r}")
        self.functions[fn.__name__], self.schemas[fn.__name__] = fn, schema

    def descriptions(self) -> list[str]:
        """The tools as the book's conversations list them for the template (``str`` of each schema)."""
        return [str(s) for s in self.schemas.values()]

    def execute(self, call: ToolCall | CallError) -> str:
        """The JSON text of the tool turn answering ``call``: the function's result, or ``{"error": ...}``."""
        def error(message: str) -> str:
            return json.dumps({"error": message})

        if isinstance(call, CallError):
            return error(f"malformed {call.style} tool call: {call.message}")
        fn = self.functions.get(call.name)
        if fn is None:
            return error(f"unknown tool {call.name!r}; the allowed tools are {', '.join(self.functions)}")
        params = inspect.signature(fn).parameters
        if set(call.arguments) != set(params):
            return error(f"{call.name} takes arguments {sorted(params)}, got {sorted(call.arguments)}")
        try:
            result = fn(**call.arguments)
        except Exception as e:  # a tool's failure is the model's to read, not the loop's to raise
            return error(f"{call.name} failed: {e}")
        return result if isinstance(result, str) else json.dumps(result)


def world_tools(world: Any, key: str = "smolbook") -> ToolRegistry:
    """The three tools of the book's tool conversations as Python functions over ``world`` (the results are
    :func:`smolbook.data.chat_tools.run_tool`'s, so the model sees the tool turns it was trained on)."""
    def get_birthplace(person: str) -> str:
        """The city where a person was born."""
        return run_tool(world, ToolCall("get_birthplace", {"person": person}), key)

    def get_city_info(city: str) -> str:
        """A city's country, river, founding year and population."""
        return run_tool(world, ToolCall("get_city_info", {"city": city}), key)

    def calculate(a: int, op: str, b: int) -> str:
        """Apply '+', '-' or '*' to two integers."""
        return run_tool(world, ToolCall("calculate", {"a": a, "op": op, "b": b}), key)

    registry = ToolRegistry()
    for fn in (get_birthplace, get_city_info, calculate):
        registry.register(fn, TOOL_SCHEMAS[fn.__name__])
    return registry


@dataclass
class Step:
    """One assistant turn of the loop: what the model wrote, the calls parsed from it and the tool turns answering them."""

    completion: str
    calls: list[ToolCall | CallError]
    results: list[str]


@dataclass
class AgentResult:
    """The conversation the loop built, its steps, and why it stopped (``answer`` or ``max_turns``)."""

    messages: list[dict]
    steps: list[Step]
    stopped: str

    @property
    def answer(self) -> str:
        """The last assistant turn's answer (think block removed)."""
        return parse_completion(self.steps[-1].completion).answer if self.steps else ""

    @property
    def errors(self) -> int:
        return sum(r.startswith('{"error"') for s in self.steps for r in s.results)


Generate = Callable[[list[dict], dict], str]


def template_tools(registry: ToolRegistry, style: str) -> dict:
    """The chat-template keywords that list the registry's tools in ``style``."""
    if style not in STYLES:
        raise SmolbookError(f"tool style {style!r} is not one of {', '.join(STYLES)}")
    return {"xml_tools" if style == "xml" else "python_tools": registry.descriptions()}


def run_agent(generate: Generate, messages: Sequence[dict], registry: ToolRegistry, style: str = "xml",
              mode: str = "no_think", max_turns: int = 4) -> AgentResult:
    """Let the model call tools until it answers without one, or for at most ``max_turns`` assistant turns.

    ``generate(messages, template_kwargs)`` returns the model's next assistant turn. Each call in a turn is run
    through ``registry`` (every failure becomes an error result) and answered by one ``tool`` turn, in order."""
    if max_turns < 1:
        raise SmolbookError(f"max_turns must be at least 1, got {max_turns}")
    kwargs = {**template_tools(registry, style), "enable_thinking": mode == "think"}
    convo, steps = [dict(m) for m in messages], []
    for _ in range(max_turns):
        completion = generate(convo, kwargs)
        calls = parse_completion(completion).tool_calls
        convo.append({"role": "assistant", "content": completion})
        results = [registry.execute(c) for c in calls]
        steps.append(Step(completion, calls, results))
        if not calls:
            return AgentResult(convo, steps, "answer")
        convo.extend({"role": "tool", "content": r} for r in results)
    return AgentResult(convo, steps, "max_turns")


def generate_in_process(model: Any, tokenizer: Any, max_new_tokens: int = 64, sampling: dict | None = None) -> Generate:
    """A turn generated by ``model`` in this process through the chat template (greedy unless ``sampling`` gives
    ``temperature``/``top_p``), stopped at ``<|im_end|>``."""
    import torch

    stop = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def generate(messages: list[dict], template_kwargs: dict) -> str:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **template_kwargs)
        with quiet_evaluation():
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
        options = {"do_sample": True, **sampling} if sampling else {"do_sample": False}
        # long tool conversations run past max_position_embeddings on purpose (RoPE runs there): drop that notice
        with torch.no_grad(), quiet_evaluation():
            out = model.generate(**ids, max_new_tokens=max_new_tokens, eos_token_id=stop,
                                 pad_token_id=tokenizer.pad_token_id, **options)
        new = out[0, ids["input_ids"].shape[1]:].tolist()
        new = new[: new.index(stop)] if stop in new else new
        return tokenizer.decode(new, skip_special_tokens=False)

    return generate


def generate_served(server: Any, max_tokens: int = 64, **request: Any) -> Generate:
    """A turn generated by a served model (:class:`smolbook.serve.Server`), the template keywords sent as
    ``chat_template_kwargs``."""
    def generate(messages: list[dict], template_kwargs: dict) -> str:
        kw = dict(template_kwargs)
        mode = "think" if kw.pop("enable_thinking", False) else "no_think"
        return server.chat(messages, mode=mode, xml_tools=kw.get("xml_tools"), python_tools=kw.get("python_tools"),
                           max_tokens=max_tokens, **request)

    return generate


def try_modes(generate: Generate, tokenizer: Any, question: list[dict],
              cases: Mapping[str, tuple[list[dict], dict]]) -> list[dict]:
    """One question asked each way of ``cases`` (name -> system turns to prepend, chat-template keywords): what mode
    the rendered prompt says, whether it carries the empty think block of ``/no_think``, and the start of the think
    block and answer drawn. It shows where the template puts the mode, whichever way the user asks for it."""
    out = []
    for name, (system, kwargs) in cases.items():
        prompt = tokenizer.apply_chat_template(system + question, tokenize=False, add_generation_prompt=True, **kwargs)
        c = parse_completion(generate(system + question, kwargs))
        out.append({"case": name, "prompt says": "/think" if "Reasoning Mode: /think" in prompt else "/no_think",
                    "empty think block in prompt": prompt.rstrip().endswith("<think>\n\n</think>"),
                    "reasoning": (c.reasoning or "")[:60], "answer": c.answer[:60]})
    return out


def agent_on_rows(generate: Generate, rows: Sequence[dict], registry: ToolRegistry, max_turns: int = 3) -> list[dict]:
    """The loop on held-out tool conversations (``tools_xml`` / ``tools_python`` rows of :mod:`smolbook.data.chat`):
    the row's first user turn, its tool style and mode; one record per row: the calls made, whether they parsed,
    whether the first call is the expected one, error turns, why the loop stopped, the final answer and whether it
    is the row's answer (exact match, after the tool results were fed back)."""
    out = []
    for row in rows:
        style = "python" if row["kind"].endswith("python") else "xml"
        first_user = next(m for m in row["messages"] if m["role"] == "user")
        mode = "think" if template_kwargs(row).get("enable_thinking") else "no_think"
        res = run_agent(generate, [first_user], registry, style=style, mode=mode, max_turns=max_turns)
        calls = [c for s in res.steps for c in s.calls]
        expected = json.loads(row["expected_call"]) if row.get("expected_call") else None
        first = next((c for c in calls if isinstance(c, ToolCall)), None)
        out.append({"kind": row["kind"], "mode": mode, "question": first_user["content"], "turns": len(res.steps),
                    "calls": len(calls), "parsed": sum(isinstance(c, ToolCall) for c in calls),
                    "malformed": sum(isinstance(c, CallError) for c in calls), "error_turns": res.errors,
                    "expected_call": bool(expected and first and first.name == expected["name"]
                                          and first.arguments == expected.get("arguments", {})),
                    "stopped": res.stopped,
                    "answer_correct": bool(row.get("answer")) and res.stopped == "answer"
                                      and answer_matches(row["answer"], res.answer),
                    "answer": res.answer[:80]})
    return out
