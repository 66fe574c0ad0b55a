"""At tiny, every training conversation of every kind fits whole in an SFT row (none is cut before its answer)."""
from __future__ import annotations

import pytest

from smolbook.data import prepare
from smolbook.data.build import DOMAINS, generate_corpus
from smolbook.data.tokenizer import train_bpe
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
    too_long = {k: n for k, n in longest.items() if n > seq_len}
    assert not too_long, f"conversations longer than the {seq_len}-token SFT rows: {too_long}"


def test_the_tokenizer_has_seen_the_chat_template(tiny, tmp_path):
    """Trained on the corpus alone, the BPE spells the released system prompt almost byte by byte (a one-line
    question rendered to ~460 tokens at vocab 1,024); the book's tokenizer also sees a sample of the rendered
    conversations, so the same conversations are much shorter while the corpus is not longer."""
    tok, chat = tiny
    s = get_scale("tiny")
    corpus = generate_corpus(s.corpus_docs_per_domain, s.eval_examples_per_task, chat.seed)
    texts = [r["text"] for d in DOMAINS for r in corpus.train[d]]
    corpus_only = train_bpe(texts, s.model.vocab_size, tmp_path / "corpus_only")
    rows = [chat.train[k][i] for k in KINDS for i in range(0, 100, 10)]

    def tokens(t, strings):
        return sum(len(e.ids) for e in t.backend_tokenizer.encode_batch(strings, add_special_tokens=False))

    renders = [render_row(r) for r in rows]
    assert tokens(corpus_only, renders) > 1.25 * tokens(tok, renders)
    assert tokens(tok, texts[::20]) <= 1.08 * tokens(corpus_only, texts[::20])
