"""The SmolLM3 chat interface: smolbook's chat template, and reading what the model writes back.

* :data:`CHAT_TEMPLATE`, :func:`attach_template`, :func:`render` — the template (byte-identical to the
  released one, plus ``{% generation %}`` markers and an injectable date) and how it is used.
* :func:`parse_completion`, :func:`parse_tool_calls`, :func:`render_xml_call`, :func:`render_python_call`
  — reasoning vs answer, and tool calls in both call styles as one :class:`ToolCall` form.
* :func:`assistant_token_mask`, :func:`draw_renders`, :func:`draw_loss_mask` — the loss mask TRL uses,
  and the chapter's figures; ``smolbook.chat.conformance`` compares with the released template.
* :func:`register_cli` — ``smolbook chat render`` / ``smolbook chat parse``.
"""
from smolbook.chat.calls import (
    CallError,
    Completion,
    ParsedCall,
    ToolCall,
    parse_completion,
    parse_tool_calls,
    render_python_call,
    render_xml_call,
)
from smolbook.chat.cli import register_cli
from smolbook.chat.figures import draw_loss_mask, draw_renders
from smolbook.chat.template import (
    CHAT_SPECIAL_TOKENS,
    CHAT_TAG_TOKENS,
    CHAT_TEMPLATE,
    assistant_token_mask,
    attach_template,
    check_messages,
    format_date,
    render,
    template_tokenizer,
)

__all__ = [
    "CHAT_SPECIAL_TOKENS", "CHAT_TAG_TOKENS", "CHAT_TEMPLATE", "CallError", "Completion", "ParsedCall", "ToolCall",
    "assistant_token_mask", "attach_template", "check_messages", "draw_loss_mask", "draw_renders", "format_date",
    "parse_completion", "parse_tool_calls", "register_cli", "render", "render_python_call", "render_xml_call",
    "template_tokenizer",
]
