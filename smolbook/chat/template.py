"""smolbook's SmolLM3 chat template: the text itself, attaching it to a tokenizer, and rendering.

The template lives in ``smolbook/templates/chat_template.jinja``; it renders byte-identical text to the
released SmolLM3 template and adds ``{% generation %}`` markers (for TRL's assistant-only loss) and an
injectable ``current_date``. Rendering goes through ``tokenizer.apply_chat_template`` only, so what the
CLI prints is exactly what training tokenizes.
"""
from __future__ import annotations

import datetime as _dt
from importlib import resources
from typing import Any, Sequence

from smolbook.errors import SmolbookError

CHAT_TEMPLATE: str = (resources.files("smolbook") / "templates" / "chat_template.jinja").read_text(encoding="utf-8")
"""The chat template every tokenizer smolbook saves carries."""

# The turn markers must be single special tokens: <|im_end|> is the stop token the loss must train.
CHAT_SPECIAL_TOKENS: tuple[str, ...] = ("<|im_start|>", "<|im_end|>")
# Tags the model writes itself; kept whole so a parser and a loss mask see them as one token each.
CHAT_TAG_TOKENS: tuple[str, ...] = ("<think>", "</think>", "<tool_call>", "</tool_call>", "<code>", "</code>")
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
DATE_FORMAT = "%d %B %Y"  # what the released template asks strftime_now for: "03 November 2026"


def attach_template(tokenizer: Any) -> Any:
    """Give ``tokenizer`` smolbook's chat template (``tokenizer.chat_template``) and return it."""
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def template_tokenizer() -> Any:
    """A small in-process tokenizer carrying the chat template (no hub access).

    Byte-level BPE with no merges: every byte is one token, the chat markers are special tokens. It
    tokenizes any text losslessly, which is all rendering and loss-mask checks need; the book's trained
    tokenizer comes from ``smolbook.data``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    core = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens([*CHAT_SPECIAL_TOKENS, "<|endoftext|>"])
    core.add_tokens(list(CHAT_TAG_TOKENS))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    return attach_template(tokenizer)


def format_date(value: str | _dt.date) -> str:
    """Normalise a date to the template's "DD Month YYYY" (accepts that form, ISO "YYYY-MM-DD" or a date)."""
    if isinstance(value, _dt.date):
        return value.strftime(DATE_FORMAT)
    text = str(value).strip()
    for fmt in (DATE_FORMAT, "%Y-%m-%d"):
        try:
            return _dt.datetime.strptime(text, fmt).strftime(DATE_FORMAT)
        except ValueError:
            continue
    raise SmolbookError(f"date {value!r} is not a date: write it as '23 November 2026' or '2026-11-23'")


def check_messages(messages: Any, source: str = "messages") -> list[dict]:
    """Check that ``messages`` is a non-empty list of {role, content} the template renders as written.

    The template silently drops unknown roles and system messages after the first one; here they are
    errors, because a conversation that loses turns is never what the caller meant.
    """
    if not isinstance(messages, list) or not messages:
        raise SmolbookError(f"{source} must be a non-empty JSON list of {{\"role\", \"content\"}} objects")
    for i, message in enumerate(messages):
        where = f"{source}: message {i}"
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise SmolbookError(f"{where} must be an object with \"role\" and \"content\"")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise SmolbookError(f"{where} has role {role!r}; use one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise SmolbookError(f"{where} has {type(content).__name__} content; content must be a string")
        if role == "system" and i > 0:
            raise SmolbookError(f"{where} is a system message; only the first message may be the system prompt")
    return messages


def _check_tools(tools: Any, name: str) -> list | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise SmolbookError(f"{name} must be a JSON list of tool descriptions (objects or strings)")
    return tools


def render(
    messages: Sequence[dict],
    *,
    enable_thinking: bool | None = None,
    xml_tools: list | None = None,
    python_tools: list | None = None,
    tools: list | None = None,
    date: str | _dt.date | None = None,
    add_generation_prompt: bool = False,
    tokenizer: Any = None,
) -> str:
    """Render a conversation with smolbook's chat template through ``tokenizer.apply_chat_template``.

    ``enable_thinking=None`` leaves the keyword out (the template then defaults to /think);
    ``date=None`` lets the template read today's date. ``tokenizer`` defaults to :func:`template_tokenizer`.
    """
    messages = check_messages(list(messages))
    kwargs: dict[str, Any] = {}
    if enable_thinking is not None:
        kwargs["enable_thinking"] = bool(enable_thinking)
    for name, value in (("xml_tools", xml_tools), ("python_tools", python_tools)):
        if _check_tools(value, name) is not None:
            kwargs[name] = value
    if date is not None:
        kwargs["current_date"] = format_date(date)
    tokenizer = tokenizer if tokenizer is not None else template_tokenizer()
    return tokenizer.apply_chat_template(
        messages,
        tools=_check_tools(tools, "tools"),
        chat_template=CHAT_TEMPLATE,
        add_generation_prompt=add_generation_prompt,
        tokenize=False,
        **kwargs,
    )


def assistant_token_mask(messages: Sequence[dict], tokenizer: Any, **template_kwargs: Any) -> tuple[list[int], list[int]]:
    """Token ids of a rendered conversation and its assistant mask (1 = trained), the way TRL gets them.

    This is the call TRL's SFT tokenization makes with ``assistant_only_loss=True``
    (``apply_chat_template(..., return_assistant_tokens_mask=True)``); labels are then -100 where the mask is 0.
    """
    out = tokenizer.apply_chat_template(list(messages), chat_template=CHAT_TEMPLATE, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True, **template_kwargs)
    return list(out["input_ids"]), list(out["assistant_masks"])
