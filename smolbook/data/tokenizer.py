"""The book's tokenizer: a byte-level BPE trained on the offline corpus (smoke/tiny), or the released
SmolLM3 tokenizer from the hub (small/full: ``HuggingFaceTB/SmolLM3-3B``, Llama-3.2's vocabulary with
reserved special slots renamed to the chat markers). At every scale the chat markers are single tokens
(:func:`check_chat_tokens`) and the tokenizer carries the book's chat template.

Special tokens (choice documented here, used everywhere):

* ``<|begin_of_text|>`` bos and ``<|end_of_text|>`` eos, the Llama-3 names the recipe's configs use
  (bos_token_id 128000 / eos_token_id 128001 in stage1_8T.yaml). Pretraining appends eos after every
  document; nothing is prepended (no post-processor), as in SmolLM3's tokenizer.
* ``<|finetune_right_pad_id|>`` pad (Llama-3.2's pad token name).
* ``<|im_start|>`` ``<|im_end|>``: the ChatML turn markers. SmolLM3's *chat* models stop on
  ``<|im_end|>``; the base tokenizer keeps ``<|end_of_text|>`` as eos and the SFT chapter switches
  eos to ``<|im_end|>``.
* ``<think> </think> <tool_call> </tool_call> <code> </code>``: single tokens the model writes
  itself. They are added tokens that are *not* special (decoding keeps them), as the chat module expects.

The trained tokenizer has exactly ``scale.model.vocab_size`` entries including all of the above.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from smolbook.chat import attach_template
from smolbook.chat.template import CHAT_SPECIAL_TOKENS, CHAT_TAG_TOKENS
from smolbook.data.sources import offline_scales
from smolbook.errors import SmolbookError

BOS, EOS, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>"
SMOLLM3_TOKENIZER = "HuggingFaceTB/SmolLM3-3B"  # the released tokenizer the hub scales use (scales.yaml)
# The chat markers and tags are the chat template's: one list, kept in smolbook.chat.
CHAT_MARKERS = CHAT_SPECIAL_TOKENS
TAG_TOKENS = CHAT_TAG_TOKENS
SPECIAL_TOKENS = (BOS, EOS, PAD, *CHAT_MARKERS)
ALL_RESERVED = (*SPECIAL_TOKENS, *TAG_TOKENS)
# Llama-3's pre-tokenization split (letters, 1–3 digit numbers, punctuation runs, whitespace): the
# trained BPE then behaves like the recipe's tokenizer at a tiny vocabulary.
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def train_bpe(texts: Iterable[str], vocab_size: int, out_dir: str | Path, model_max_length: int = 4096):
    """Train a byte-level BPE with ``vocab_size`` entries on ``texts``; save and return it.

    Returns a ``transformers.PreTrainedTokenizerFast`` carrying the chat template; ``out_dir`` then
    loads with ``AutoTokenizer.from_pretrained``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 256 + len(ALL_RESERVED) + 1:
        raise SmolbookError(f"vocab_size {vocab_size} is too small for a byte-level BPE: it needs at least "
                            f"{256 + len(ALL_RESERVED) + 1} (256 bytes + {len(ALL_RESERVED)} special tokens + merges)")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    # Reserving every marker as a trainer special token gives them the first ids and keeps the
    # total vocabulary at exactly vocab_size.
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(ALL_RESERVED),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   extra_special_tokens=list(CHAT_MARKERS), model_max_length=model_max_length)
    # The tags were reserved as special by the trainer; re-register them as ordinary added tokens
    # (same ids) so decoding keeps them, as SmolLM3's tokenizer does.
    from tokenizers import AddedToken
    fast.backend_tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    attach_template(fast)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(out_dir)
    return fast


def load_tokenizer(path_or_id: str | Path):
    """Load any tokenizer folder or hub id with ``AutoTokenizer`` (a teacher's too: its own chat template is
    kept, the book's attached only where it has none); a clear SmolbookError when it cannot.
    The book's own tokenizer goes through :func:`load_book_tokenizer`."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path_or_id))
    except Exception as e:  # hub/network/gated errors come in many types; the user needs one message
        local = Path(str(path_or_id)).exists()
        where = "the folder" if local else "the Hugging Face hub"
        raise SmolbookError(
            f"cannot load tokenizer '{path_or_id}' from {where} ({type(e).__name__}: {str(e).splitlines()[0][:200]}). "
            + ("" if local else f"small/full scales load the released SmolLM3 tokenizer ({SMOLLM3_TOKENIZER}) from "
                                f"the hub; the offline scales ({', '.join(offline_scales())}) train their own tokenizer.")
        ) from None
    if not getattr(tok, "chat_template", None):
        attach_template(tok)
    return tok


def load_book_tokenizer(path_or_id: str | Path):
    """The book's tokenizer at a hub scale (or any scale): :func:`load_tokenizer`, then made the book's.

    bos/eos/pad get the names above where the vocabulary has them (the released chat tokenizer ships eos
    ``<|im_end|>``; pretraining ends documents with ``<|end_of_text|>``, id 128001 in the recipe's configs),
    the book's chat template replaces the shipped one (same bytes plus generation markers), and every chat
    marker is checked to be one token (:func:`check_chat_tokens`)."""
    tok = load_tokenizer(path_or_id)
    _book_roles(tok)
    attach_template(tok)
    check_chat_tokens(tok, str(path_or_id))
    return tok


def _book_roles(tok) -> None:
    """bos/eos/pad by the book's names when the vocabulary holds them (it does at every scale)."""
    vocab = tok.get_vocab()
    for role, name in (("bos_token", BOS), ("eos_token", EOS), ("pad_token", PAD)):
        if name in vocab and getattr(tok, role) != name:
            setattr(tok, role, name)


def check_chat_tokens(tok, name: str = "tokenizer") -> dict[str, int]:
    """marker -> id for every chat marker and tag; a SmolbookError when one is not a single token.

    The loss mask, the stop token and the tool-call parser all read these as one token each; a vocabulary
    without them (plain Llama-3.2, whose slots are still ``<|reserved_special_token_N|>``) would split them."""
    ids = {}
    for marker in (*CHAT_MARKERS, *TAG_TOKENS):
        enc = tok.encode(marker, add_special_tokens=False)
        if len(enc) != 1:
            raise SmolbookError(
                f"tokenizer '{name}' splits the chat marker {marker!r} into {len(enc)} tokens; every chat marker "
                f"({', '.join((*CHAT_MARKERS, *TAG_TOKENS))}) must be one token. Point `tokenizer:` in "
                f"smolbook/scales.yaml at {SMOLLM3_TOKENIZER} (Llama-3.2's vocabulary with the reserved slots renamed "
                f"to these markers), not at plain Llama-3.2.")
        ids[marker] = enc[0]
    return ids
