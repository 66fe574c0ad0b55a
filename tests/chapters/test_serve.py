"""Serving: ``transformers serve`` started and stopped by :func:`smolbook.serve.serve`, asked through the ``openai``
client in both modes and with tools; the prompt the server built is the chat template's for that mode and those
tools (its token count), and no process is left behind."""
from __future__ import annotations

import socket

import pytest

from smolbook.chapter import find_checkpoint
from smolbook.errors import SmolbookError
from smolbook.serve import free_port, process_gone, serve

TOOL = {"name": "birthplace", "description": "Where a person was born.",
        "parameters": {"type": "object", "properties": {"person": {"type": "string"}}, "required": ["person"]}}
QUESTION = [{"role": "user", "content": "Where was Ada Darsa born?"}]


@pytest.fixture(scope="module")
def sft_checkpoint(pretrained_run):
    from helpers import chat_spec
    from smolbook.train import run

    run(chat_spec(pretrained_run))
    return find_checkpoint(pretrained_run, "11_sft")


def _prompt_tokens(tok, **kwargs) -> int:
    text = tok.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False, **kwargs)
    return len(tok(text, add_special_tokens=False)["input_ids"])


def test_served_model_answers_both_modes_and_tools_then_leaves_no_process(sft_checkpoint, tmp_path):
    from smolbook.data.tokenizer import load_tokenizer

    tok = load_tokenizer(sft_checkpoint)
    log = tmp_path / "server.log"
    with serve(sft_checkpoint, log=log, threads=1, timeout=120) as server:
        pid, port = server.process.pid, server.port
        think = server.chat(QUESTION, mode="think", max_tokens=8)
        no_think = server.chat(QUESTION, mode="no_think", max_tokens=8)
        openai_tools = server.chat(QUESTION, mode="no_think", tools=[TOOL], max_tokens=8)
        xml = server.chat(QUESTION, mode="no_think", xml_tools=[str(TOOL)], max_tokens=8)
        python = server.chat(QUESTION, mode="no_think", python_tools=[str(TOOL)], max_tokens=8)
        assert all(isinstance(t, str) for t in (think, no_think, openai_tools, xml, python))
        sent = [r["prompt_tokens"] for r in server.requests]
    # the server rendered each request with the chat template and the keywords the request carried
    assert sent == [_prompt_tokens(tok, enable_thinking=True), _prompt_tokens(tok, enable_thinking=False),
                    _prompt_tokens(tok, enable_thinking=False, tools=[{"type": "function", "function": TOOL}]),
                    _prompt_tokens(tok, enable_thinking=False, xml_tools=[str(TOOL)]),
                    _prompt_tokens(tok, enable_thinking=False, python_tools=[str(TOOL)])]
    assert len(set(sent)) == 5   # the five prompts differ: the keywords reached the template
    assert all(r["completion_tokens"] and r["completion_tokens"] <= 8 for r in server.requests)
    assert process_gone(pid)
    with pytest.raises(ConnectionRefusedError):   # nothing listens on the port any more
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert "POST /v1/chat/completions" in log.read_text()


def test_serve_says_what_went_wrong(tmp_path):
    with pytest.raises(SmolbookError, match="no checkpoint at"):
        with serve(tmp_path):
            pass
    # a folder that looks like a checkpoint but is not one: the server exits, the error quotes its log
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SmolbookError, match="transformers serve exited|did not answer"):
        with serve(tmp_path, log=tmp_path / "bad.log", threads=1, timeout=60):
            pass
    assert free_port() > 0


def test_compare_answers_ignores_think_blocks_and_outer_whitespace():
    from smolbook.serve import compare_answers

    got = compare_answers({"think": "<think>\na\n</think>\nParis ", "no_think": "Rome"},
                          {"think": "<think>\nb\n</think>\nParis", "no_think": "Lora"})
    assert [(r["mode"], r["same"]) for r in got] == [("think", True), ("no_think", False)]
    assert got[1]["served answer"] == "Rome" and got[1]["in-process answer"] == "Lora"
