"""Dual-mode SFT as chapter 11 runs it: the mixture's adjustments, the teacher's traces for a domain that lacks
them, the run specs, and what the chapter shows of packing (BFD fill, the loss mask of one packed row).

The recipe's SFT set had no reasoning traces for some domains; Qwen3-32B wrote them in think mode from the prompts
of the non-reasoning data. Here one domain (``lacking``) loses its think-mode rows, and :func:`teacher_rows` has
the teacher answer the prompts of its no_think rows in think mode, keeping only correct answers; the SFT arms train
with or without them (``conversations`` builder options ``without_traces`` and ``extra_rows``).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from smolbook.errors import SmolbookError

MULTI_STEP_KINDS = ("math", "code", "facts", "multiturn")  # problems whose answer needs more than one step


def teacher_rows(chat: Any, kind: str, teacher: Any, limit: int | None = None) -> tuple[list[dict], dict]:
    """The teacher's think-mode traces for the prompts of ``kind``'s no_think training rows, kept when correct:
    (rows, report with generated / kept / dropped counts, seconds and tokens/s where the teacher counts tokens)."""
    from smolbook.teacher import filter_correct

    prompts = [dict(r) for r in chat.train[kind] if r["mode"] == "no_think"][:limit]
    if not prompts:
        raise SmolbookError(f"no no_think prompts of kind {kind!r} for the teacher to answer")
    t0 = time.perf_counter()
    completions = teacher.generate(prompts, "think")
    seconds = time.perf_counter() - t0
    kept, report = filter_correct(prompts, completions, "think")
    stats = getattr(teacher, "stats", None) or {}
    report |= {"teacher": teacher.name, "generated": len(prompts), "seconds": round(seconds, 3),
               "tokens_per_s": stats.get("tokens_per_s")}
    return kept, report


def save_rows(rows: Sequence[dict], path: str | Path) -> Path:
    """Conversations as JSONL (the ``extra_rows`` option of the ``conversations`` builder reads them back)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def load_rows(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise SmolbookError(f"extra_rows: no file {path}; write it with smolbook.sft.save_rows first")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def adjust_mixture(rows: Any, options: dict, seed: int) -> Any:
    """The offline mixture with ``options.without_traces`` kinds' think rows dropped and ``options.extra_rows``
    (a JSONL file of conversations, e.g. the teacher's traces) added, shuffled again."""
    import datasets

    drop = set(options.get("without_traces", ()))
    extra = options.get("extra_rows")
    if not drop and not extra:
        return rows
    keep = [i for i, (k, m) in enumerate(zip(rows["kind"], rows["mode"])) if not (k in drop and m == "think")]
    out = rows.select(keep)
    if extra:
        columns = out.column_names
        added = [{c: r.get(c) for c in columns} for r in load_rows(extra)]
        out = datasets.concatenate_datasets([out, datasets.Dataset.from_list(added, features=out.features)])
    return out.shuffle(seed=seed)


def epoch_subset(rows: Any, tokens: int, n_tokens: Callable[[dict], int], min_rows: int = 1) -> Any:
    """The first rows of ``rows`` holding ``tokens`` tokens (and at least ``min_rows``): one epoch of the scale's
    budget (TRL then repeats it for the recipe's epochs within the run's steps)."""
    total, n = 0, 0
    for row in rows:
        if total >= tokens and n >= min_rows:
            break
        total += n_tokens(row)
        n += 1
    return rows.select(range(n))


def sft_spec(chapter: str, name: str, source: str, scale: str, output_dir: Any, seed: int,
             options: dict | None = None, steps: int | None = None, checkpoint_every: int | None = None,
             final: bool = True) -> Any:
    """The run spec of one SFT run (TRL ``SFTTrainer``: BFD packing, assistant-only loss) from ``source``;
    ``checkpoint_every`` keeps a checkpoint every so many steps (a learning curve evaluates them); ``final=False``
    for a control arm or another seed, so that ``start_from`` the chapter returns its own model."""
    from smolbook.train.spec import BudgetSpec, DataSpec, ModelSpec, RunSpec

    return RunSpec(chapter=chapter, name=name, scale=scale, output_dir=str(output_dir), phase="sft", trainer="sft",
                   seed=seed, model=ModelSpec(checkpoint=source), data=DataSpec(options=dict(options or {})),
                   budget=BudgetSpec(steps=steps), checkpoint_every=checkpoint_every,
                   keep_checkpoints=checkpoint_every is not None, final=final)


def packing_fill(conversations: Any, tokenizer: Any, seq_len: int) -> dict[str, Any]:
    """How full the rows are when ``conversations`` are packed with TRL's BFD (``trl.data_utils.pack_dataset``) and
    when each is padded to its own row: tokens, rows and the share of row positions holding a token."""
    import pyarrow as pa
    from trl.data_utils import _pack_bfd  # the function TRL's pack_dataset(strategy="bfd") maps over the dataset

    from smolbook.data.chat import render_row

    ids = [tokenizer(render_row(r, tokenizer), add_special_tokens=False, verbose=False)["input_ids"][:seq_len]
           for r in conversations]
    tokens = sum(map(len, ids))
    packed = _pack_bfd(pa.table({"input_ids": ids}), seq_len)
    lengths = [len(x) for x in packed.column("input_ids").to_pylist()]
    return {"conversations": len(ids), "tokens": tokens, "seq_len": seq_len,
            "bfd_rows": len(lengths), "bfd_fill": tokens / (len(lengths) * seq_len),
            "padded_rows": len(ids), "padded_fill": tokens / (len(ids) * seq_len),
            "bfd_row_tokens": lengths}


def loss_mask(row: dict, tokenizer: Any) -> tuple[list[str], list[int], list[str]]:
    """One conversation as the SFT trainer sees it: its tokens, the assistant mask (1: in the loss) that TRL's
    ``assistant_only_loss`` reads from the template's generation blocks, and each token's role."""
    from smolbook.data.chat import template_kwargs

    kwargs = template_kwargs(row)
    tokenizer.model_max_length = max(tokenizer.model_max_length, 1 << 30)  # long rows only warn; this just reads them
    enc = tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True, **kwargs)
    ids = enc["input_ids"]
    pieces = [tokenizer.decode([t]) for t in ids]
    # The template writes tool results as user turns: the k-th user/assistant header is the k-th non-system message.
    turns = iter(m["role"] for m in row["messages"] if m["role"] != "system")
    roles, role, header = [], "system", None
    for p in pieces:
        if p == "<|im_start|>":
            header = ""
        elif header is not None:
            header += p
            if "\n" in header:
                name = header.split("\n")[0].strip()
                role = next(turns, name) if name in ("user", "assistant") else name
                header = None
        roles.append(role)
    return pieces, list(enc["assistant_masks"]), roles


def generate_in_both_modes(checkpoint: str | Path, row: dict, max_new_tokens: int = 128) -> dict[str, str]:
    """One held-out prompt answered in each mode by the checkpoint loaded with plain transformers
    (``AutoModelForCausalLM``/``AutoTokenizer``, its own chat template, greedy, stopping at its eos ``<|im_end|>``)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from smolbook.data.chat import prompt_messages, template_kwargs

    tok = AutoTokenizer.from_pretrained(str(checkpoint))
    model = AutoModelForCausalLM.from_pretrained(str(checkpoint)).eval()
    out = {}
    for mode in ("think", "no_think"):
        text = tok.apply_chat_template(prompt_messages(row), tokenize=False, add_generation_prompt=True,
                                       **template_kwargs(row, mode))
        ids = tok(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            gen = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        out[mode] = tok.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=False)
    return out
