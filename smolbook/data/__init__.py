"""The book's data: an offline corpus with held-out evaluations (smoke/tiny), the recipe's hub
datasets streamed (small/full), the tokenizer, the stage mixtures and packed pretraining batches.

    from smolbook.data import prepare, PretrainStream, DOMAINS
    data = prepare("tiny", "runs/tiny")             # load-or-build under runs/tiny/data
    stream = PretrainStream(data, stages=["stable", "stable-2", "decay"])

Names are imported lazily (PEP 562), so ``smolbook --help`` does not pay for torch and datasets.
"""
from __future__ import annotations

from smolbook.lazy import lazy_exports

_EXPORTS = {
    "smolbook.data.build": ("prepare", "fingerprint", "heldout_specs"),
    "smolbook.data.products": ("PreparedData", "TokenDocs"),
    "smolbook.data.cli": ("register_cli",),
    "smolbook.data.corpus": ("DOMAINS", "EVAL_TASKS", "GENERATOR_VERSION", "generate_corpus"),
    "smolbook.data.mixture": ("PRETRAINING_STAGES", "Mixture", "PretrainStream", "default_boundaries",
                              "validation_batches"),
    "smolbook.data.packing": ("ATTN_IMPLEMENTATION", "block_causal_mask", "pack_documents", "positions_for",
                              "segment_ids", "time_attention"),
    "smolbook.data.cards": ("card_table",),
    "smolbook.data.sources": ("OFFLINE_STAND_IN", "SourceSpec", "dataset_texts", "iter_texts", "open_hub_dataset",
                              "stand_in"),
    "smolbook.data.tokenizer": ("SPECIAL_TOKENS", "TAG_TOKENS", "check_chat_tokens", "load_book_tokenizer",
                                "load_tokenizer", "train_bpe"),
    "smolbook.data.chat": ("KINDS", "ChatData", "ChatSizes", "build_chat_data", "chat_dataset", "chat_sizes",
                           "check_conversation", "describe_row", "prompt_messages", "render_row", "template_kwargs"),
    "smolbook.data.chat_tools": ("TOOL_SCHEMAS", "run_tool", "tool_descriptions"),
    "smolbook.data.preferences": ("PreferenceReport", "preference_pairs"),
    "smolbook.data.hub_chat": ("ChatSource", "chat_source", "chat_sources", "chat_text", "iter_chat_rows",
                               "open_chat_dataset", "released_source"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
