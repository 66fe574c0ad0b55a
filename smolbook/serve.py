"""A book checkpoint served as users serve SmolLM3: ``transformers serve`` with an OpenAI-compatible API.

    from smolbook.serve import serve
    with serve("runs/tiny/13_merging/soup/final", log="runs/tiny/15_inference/server.log") as server:
        reply = server.chat([{"role": "user", "content": "Where was Ada Darsa born?"}], mode="no_think")

:func:`serve` starts ``transformers serve CHECKPOINT --device cpu --host 127.0.0.1 --port N`` on a free port,
waits for ``/health`` (with a timeout; the server's log, kept in a file, is quoted when it fails), hands back a
:class:`Server` whose :meth:`Server.chat` asks through the ``openai`` client (``chat_template_kwargs`` carries
``enable_thinking`` and ``python_tools``; ``tools`` are the template's XML tools), and stops the server's whole
process group on the way out, leaving no process behind. Needs the ``serving`` extra (fastapi, uvicorn, openai).
At ``full`` the released model is served with vLLM or SGLang instead: :func:`released_serving_commands`.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from smolbook.chat import parse_completion
from smolbook.data.conversations import MODES
from smolbook.errors import SmolbookError
from smolbook.evaluate.lighteval_full import model_card



def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _transformers_cli() -> str:
    """The ``transformers`` command of this Python's environment."""
    here = Path(sys.executable).with_name("transformers")
    found = str(here) if here.is_file() else shutil.which("transformers")
    if not found:
        raise SmolbookError("the `transformers` command is not installed next to this Python; reinstall transformers")
    return found


def _check_serving_extra() -> None:
    import importlib.util

    missing = [m for m in ("fastapi", "uvicorn", "openai") if importlib.util.find_spec(m) is None]
    if missing:
        raise SmolbookError(f"serving needs {', '.join(missing)}: pip install -e '.[serving]'")


@dataclass
class Server:
    """A running ``transformers serve``: where it listens, its process and its log."""

    checkpoint: str
    port: int
    process: subprocess.Popen
    log_path: Path
    started_s: float = 0.0
    requests: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def client(self) -> Any:
        """An ``openai.OpenAI`` client for this server (no key needed)."""
        from openai import OpenAI

        return OpenAI(base_url=f"{self.url}/v1", api_key="not-needed", timeout=300.0, max_retries=0)

    def chat(self, messages: Sequence[dict], mode: str | None = None, tools: Sequence[dict] | None = None,
             xml_tools: Sequence[Any] | None = None, python_tools: Sequence[Any] | None = None, max_tokens: int = 64,
             **kwargs: Any) -> str:
        """One chat completion through the ``openai`` client; returns the assistant's text as the model wrote it
        (the think block, when the server split it off as ``reasoning_content``, put back in front; tool calls the
        server parsed put back as ``<tool_call>`` JSON), so that :mod:`smolbook.chat` parses it like any completion.

        ``mode`` sets ``enable_thinking``; ``tools`` is the OpenAI request field (the server hands it to the template,
        which lists them as XML tools, in OpenAI's ``{"type": "function", ...}`` form); ``xml_tools`` and
        ``python_tools`` go through ``chat_template_kwargs`` as the book's training conversations write them; other
        keywords (``temperature``, ``top_p``...) go to the request."""
        template_kwargs: dict[str, Any] = {}
        if mode is not None:
            if mode not in MODES:
                raise SmolbookError(f"mode {mode!r} is not one of {', '.join(MODES)}")
            template_kwargs["enable_thinking"] = mode == "think"
        if xml_tools:
            template_kwargs["xml_tools"] = list(xml_tools)
        if python_tools:
            template_kwargs["python_tools"] = list(python_tools)
        extra_body = {"chat_template_kwargs": template_kwargs} if template_kwargs else None
        request = dict(model=self.checkpoint, messages=list(messages), max_tokens=max_tokens, **kwargs)
        if tools:
            request["tools"] = [t if t.get("type") == "function" else {"type": "function", "function": t} for t in tools]
        start = time.perf_counter()
        response = self.client().chat.completions.create(**request, extra_body=extra_body)
        message = response.choices[0].message
        text = message.content or ""
        reasoning = getattr(message, "reasoning_content", None) or (message.model_extra or {}).get("reasoning_content")
        if reasoning:
            text = f"<think>\n{reasoning.strip()}\n</think>\n{text}"
        for call in message.tool_calls or []:
            args = call.function.arguments
            args = json.loads(args) if isinstance(args, str) and args.strip().startswith("{") else args
            text += "\n<tool_call>\n" + json.dumps({"name": call.function.name, "arguments": args}) + "\n</tool_call>"
        usage = response.usage
        self.requests.append({"mode": mode, "tools": bool(tools or xml_tools or python_tools), "seconds": time.perf_counter() - start,
                              "prompt_tokens": getattr(usage, "prompt_tokens", None),
                              "completion_tokens": getattr(usage, "completion_tokens", None),
                              "finish_reason": response.choices[0].finish_reason})
        return text

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _wait_healthy(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise SmolbookError(f"transformers serve exited with code {server.process.returncode} before answering; "
                                f"its log ({server.log_path}) ends:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise SmolbookError(f"transformers serve did not answer /health within {timeout:.0f} s; its log "
                        f"({server.log_path}) ends:\n{server.log_tail()}")


def _stop(server: Server, grace: float = 10.0) -> None:
    """Stop the server's process group (the server and anything it started): SIGTERM, then SIGKILL."""
    proc = server.process
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace)
    # children of the group that outlived the leader
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def serve(checkpoint: str | os.PathLike, log: str | os.PathLike | None = None, port: int | None = None,
          device: str = "cpu", timeout: float = 120.0, threads: int | None = None) -> Iterator[Server]:
    """Serve ``checkpoint`` with ``transformers serve`` on 127.0.0.1 for the ``with`` block.

    ``port``: a free one by default; ``log``: where the server's output is kept (default: next to nothing, a file
    in the system's temporary folder); ``timeout``: seconds to wait for ``/health``; ``threads``: the server's
    ``OMP_NUM_THREADS`` (default: this process's)."""
    _check_serving_extra()
    ckpt = Path(checkpoint).resolve()
    if not (ckpt / "config.json").is_file():
        raise SmolbookError(f"no checkpoint at {ckpt} to serve (expected {ckpt / 'config.json'})")
    port = port or free_port()
    log_path = Path(log) if log else Path(os.environ.get("TMPDIR", "/tmp")) / f"smolbook-serve-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_NO_ADVISORY_WARNINGS="1")
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [_transformers_cli(), "serve", str(ckpt), "--device", device, "--host", "127.0.0.1", "--port", str(port)]
    start = time.perf_counter()
    with open(log_path, "w") as log_file:
        log_file.write("$ " + " ".join(cmd) + "\n")
        log_file.flush()
        # its own session: the whole process group is stopped on the way out
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
    server = Server(str(ckpt), port, proc, log_path)
    try:
        _wait_healthy(server, timeout)
        server.started_s = time.perf_counter() - start
        yield server
    finally:
        _stop(server)


def process_gone(pid: int) -> bool:
    """Whether no process with ``pid`` (or in its process group) is left."""
    try:
        os.killpg(pid, 0)
        return False
    except ProcessLookupError:
        return True
    except PermissionError:
        return False


def compare_answers(served: Mapping[str, str], local: Mapping[str, str]) -> list[dict[str, Any]]:
    """Per mode, the served completion's answer beside the in-process one (think blocks removed, whitespace at the
    ends ignored): with greedy decoding on both sides they must be the same text, or serving changed the model."""
    rows = []
    for mode, text in served.items():
        a, b = parse_completion(text).answer, parse_completion(local[mode]).answer
        rows.append({"mode": mode, "served answer": a[:60], "in-process answer": b[:60],
                     "same": a.strip() == b.strip()})
    return rows


def released_serving_commands() -> dict[str, str]:
    """How the model card serves the released model: vLLM and SGLang commands (``model_card.yaml``)."""
    card = model_card()["serving"]
    return {"vllm": card["vllm"], "sglang": card["sglang"]}
