"""The hub tokenizer is the released SmolLM3 one: a Llama-3-style vocabulary whose reserved special slots are
renamed to the chat markers. A small stand-in built the same way (tokenizers BPE + renamed slots, saved with
save_pretrained) loads through load_book_tokenizer like the hub one; plain Llama-3.2 (slots not renamed) is refused."""
from __future__ import annotations

import json

import pytest

from smolbook.chat import CHAT_TEMPLATE, render
from smolbook.data.tokenizer import (BOS, CHAT_MARKERS, EOS, PAD, TAG_TOKENS, check_chat_tokens, load_book_tokenizer,
                                     load_tokenizer, train_bpe)
from smolbook.errors import SmolbookError

RESERVED = [f"<|reserved_special_token_{i}|>" for i in range(12)]
# Which reserved slot holds which marker in the stand-in (the released tokenizer also renames a run of slots).
RENAMED = dict(zip(RESERVED, ("<think>", "</think>", "<tool_call>", "</tool_call>", "<code>", "</code>",
                              "<|im_start|>", "<|im_end|>")))


def _llama3_style(out_dir, rename: bool):
    """Byte-level BPE + Llama-3's named specials and reserved slots; ``rename`` writes the markers into the
    slots (same ids), as the SmolLM3 release did, and ships the chat model's eos ``<|im_end|>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    core = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(alphabet)}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens([BOS, EOS, *RESERVED, PAD])
    if rename:
        spec = json.loads(core.to_str())
        for t in spec["added_tokens"]:
            t["content"] = RENAMED.get(t["content"], t["content"])
        core = Tokenizer.from_str(json.dumps(spec))
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token=BOS, eos_token="<|im_end|>" if rename else EOS,
                                  pad_token=PAD)
    tok.save_pretrained(out_dir)
    return {t.content: i for i, t in core.get_added_tokens_decoder().items()}


def test_renamed_reserved_slots_make_every_chat_marker_one_token(tmp_path):
    slots = _llama3_style(tmp_path, rename=True)
    tok = load_book_tokenizer(tmp_path)
    ids = check_chat_tokens(tok)
    assert set(ids) == {*CHAT_MARKERS, *TAG_TOKENS}
    assert all(ids[m] == slots[m] for m in ids)  # the markers sit in the reserved slots' ids
    assert tok.chat_template == CHAT_TEMPLATE
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (BOS, EOS, PAD)  # pretraining ends documents with eos
    text = render([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "<think>\nx\n</think>\nyo"}],
                  tokenizer=tok, date="2025-07-01")
    enc = tok.encode(text, add_special_tokens=False)
    for marker in ("<|im_start|>", "<|im_end|>", "<think>", "</think>"):  # every occurrence is its one token
        assert enc.count(ids[marker]) == text.count(marker) > 0, marker


def test_plain_llama3_vocabulary_is_refused_with_what_to_do(tmp_path):
    _llama3_style(tmp_path, rename=False)
    with pytest.raises(SmolbookError, match=r"splits the chat marker '<\|im_start\|>'.*HuggingFaceTB/SmolLM3-3B"):
        load_book_tokenizer(tmp_path)


def test_the_offline_tokenizer_keeps_the_markers_single_tokens(tmp_path):
    texts = [f"document {i}: the quick brown fox jumps over the lazy dog {i * 7}" for i in range(50)]
    train_bpe(texts, 400, tmp_path)
    tok = load_book_tokenizer(tmp_path)
    assert len(check_chat_tokens(tok)) == len(CHAT_MARKERS) + len(TAG_TOKENS)
    assert tok.chat_template == CHAT_TEMPLATE and tok.eos_token == EOS


def test_the_hub_scales_name_the_released_smollm3_tokenizer():
    from smolbook.scales import get_scale

    assert get_scale("small").tokenizer == get_scale("full").tokenizer == "HuggingFaceTB/SmolLM3-3B"


def test_an_unreachable_hub_tokenizer_names_the_offline_scales(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SmolbookError, match=r"SmolLM3-3B.*offline scales \(smoke, tiny, gpu\)"):
        load_book_tokenizer("HuggingFaceTB/SmolLM3-3B")


def test_a_teachers_tokenizer_keeps_its_own_chat_template(tmp_path):
    """load_tokenizer serves teachers too (Qwen3 renders its own template): only the book's is normalised."""
    from transformers import AutoTokenizer

    _llama3_style(tmp_path, rename=True)
    own = "{% for m in messages %}{{ m.content }}{% endfor %}"
    foreign = AutoTokenizer.from_pretrained(tmp_path)
    foreign.chat_template = own
    foreign.save_pretrained(tmp_path)
    assert load_tokenizer(tmp_path).chat_template == own
    assert load_book_tokenizer(tmp_path).chat_template == CHAT_TEMPLATE
