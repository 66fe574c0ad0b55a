"""At tiny, every training conversation of every kind fits whole in an SFT row (none is cut before its answer)."""
from __future__ import annotations

import pytest

from smolbook.data import prepare
from smolbook.data.chat import KINDS, build_chat_data, render_row
from smolbook.scales import get_scale

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny book's tokenizer (trained on the tiny corpus, as chapter 01 does) and its conversations."""
    data = prepare("tiny", tmp_path_factory.mktemp("tiny"), progress=False)
    return data.tokenizer, build_chat_data("tiny", seed=data.seed)


def test_no_training_conversation_is_cut_at_tiny(tiny):
    tok, chat = tiny
    seq_len = get_scale("tiny").budget("sft").seq_len
    longest = {}
    for kind in KINDS:
        lengths = [len(tok(render_row(row, tok), add_special_tokens=False)["input_ids"]) for row in chat.train[kind]]
        longest[kind] = max(lengths)
    assert longest["tools_xml"] > 1024  # the released template's tool block is long at vocab 1,024: rows must be too
    too_long = {k: n for k, n in longest.items() if n > seq_len}
    assert not too_long, f"conversations longer than the {seq_len}-token SFT rows: {too_long}"
