"""``smolbook chat render`` / ``smolbook chat parse``: the rendered text, and one-line errors with exit code 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import smolbook.cli
from smolbook.chat import render

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>"},
            {"role": "tool", "content": "21 degrees"}]
XML_TOOLS = [{"name": "get_weather", "parameters": {"city": "string"}}]
PY_TOOLS = ["def search(query: str) -> list: ..."]


@pytest.fixture
def cli(capsys):
    """Run ``smolbook`` in-process (the CLI imports only the module of the command being run)."""
    assert smolbook.cli.COMMANDS["chat"][0] == "smolbook.chat"

    def run(*argv: str) -> tuple[int, str, str]:
        code = smolbook.cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def write(path: Path, data) -> str:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def test_render_prints_the_template_text(cli, tmp_path):
    messages = write(tmp_path / "m.json", MESSAGES)
    xml = write(tmp_path / "xml.json", XML_TOOLS)
    py = write(tmp_path / "py.json", PY_TOOLS)
    code, out, err = cli("chat", "render", "--messages", messages, "--no-think", "--xml-tools", xml,
                         "--python-tools", py, "--date", "23 November 2026", "--generation-prompt")
    assert (code, err) == (0, "")
    assert out == render(MESSAGES, enable_thinking=False, xml_tools=XML_TOOLS, python_tools=PY_TOOLS,
                         date="23 November 2026", add_generation_prompt=True)
    assert "Today Date: 23 November 2026\nReasoning Mode: /no_think" in out
    assert out.endswith("<|im_start|>assistant\n<think>\n\n</think>\n")


def test_render_defaults_think_mode_and_no_generation_prompt(cli, tmp_path):
    code, out, _ = cli("chat", "render", "--messages", write(tmp_path / "m.json", MESSAGES[1:2]), "--date", "2026-11-03")
    assert code == 0
    assert "Today Date: 03 November 2026\nReasoning Mode: /think" in out
    assert out.endswith("<|im_start|>user\nWeather in Paris?<|im_end|>\n")


@pytest.mark.parametrize("setup, says", [
    (lambda d: ["--messages", str(d / "missing.json")], "does not exist"),
    (lambda d: ["--messages", write(d / "m.json", "[{\"role\": \"user\",")], "not valid JSON"),
    (lambda d: ["--messages", write(d / "m.json", {"role": "user", "content": "hi"})], "non-empty JSON list"),
    (lambda d: ["--messages", write(d / "m.json", [])], "non-empty JSON list"),
    (lambda d: ["--messages", write(d / "m.json", [{"role": "user"}])], "\"role\" and \"content\""),
    (lambda d: ["--messages", write(d / "m.json", ["hi"])], "\"role\" and \"content\""),
    (lambda d: ["--messages", write(d / "m.json", [{"role": "bot", "content": "x"}])], "role 'bot'"),
    (lambda d: ["--messages", write(d / "m.json", [{"role": "user", "content": 3}])], "content must be a string"),
    (lambda d: ["--messages", write(d / "m.json", [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}])],
     "only the first message"),
    (lambda d: ["--messages", write(d / "m.json", MESSAGES), "--xml-tools", write(d / "t.json", "{nope")],
     "--xml-tools file"),
    (lambda d: ["--messages", write(d / "m.json", MESSAGES), "--python-tools", write(d / "t.json", {"a": 1})],
     "--python-tools file"),
    (lambda d: ["--messages", write(d / "m.json", MESSAGES), "--python-tools", str(d / "none.json")], "does not exist"),
    (lambda d: ["--messages", write(d / "m.json", MESSAGES), "--date", "tomorrow"], "not a date"),
    (lambda d: ["--messages", str(d / "m.json") if (d / "m.json").write_bytes(b"\xff\xfe[") else ""], "not UTF-8"),
])
def test_bad_input_is_a_one_line_error_with_exit_code_2(cli, tmp_path, setup, says):
    code, out, err = cli("chat", "render", *setup(tmp_path))
    assert code == 2 and out == ""
    assert err.startswith("smolbook: error: ") and err.count("\n") == 1, err
    assert says in err


def test_parse_prints_reasoning_answer_and_calls(cli, tmp_path):
    completion = write(tmp_path / "c.txt", "<think>\nneed weather\n</think>\n<code>get_weather(city='Paris')</code>"
                                           "<tool_call>{bad}</tool_call><|im_end|>")
    code, out, _ = cli("chat", "parse", completion)
    assert code == 0
    parsed = json.loads(out)
    assert parsed["reasoning"] == "need weather"
    assert parsed["tool_calls"][0] == {"kind": "ToolCall", "name": "get_weather", "arguments": {"city": "Paris"}}
    assert parsed["tool_calls"][1]["kind"] == "CallError" and "bad JSON" in parsed["tool_calls"][1]["message"]


def test_parse_missing_file_is_an_error(cli, tmp_path):
    code, _, err = cli("chat", "parse", str(tmp_path / "nope.txt"))
    assert code == 2 and "does not exist" in err
