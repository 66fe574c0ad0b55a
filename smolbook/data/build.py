"""``prepare(scale, output_dir, seed)``: load-or-build the book's data products under ``output_dir/data``.

Offline scales (smoke, tiny) generate the corpus, train the tokenizer and pre-tokenize every
document once; the trainer then samples token ids from ``tokens/*.npz`` (never re-tokenizing).
Layout::

    data/corpus/{train,valid}/<domain>/   datasets (arrow), column "text" (+ kind, lang, id, ...)
    data/evals/<task>/                    datasets: prompt, answer (+ choices, label for cloze)
    data/tokenizer/                       AutoTokenizer folder
    data/tokens/{train,valid}_<domain>.npz  ids (each document + eos), offsets
    data/manifest.json                    written last: fingerprint, sizes, timings

A build is reused only if ``manifest.json`` exists, its fingerprint (scale sizes + seed + generator
version) matches and every listed file is there; anything else is rebuilt from scratch.
Online scales (small, full) load the recipe's tokenizer from the hub; their training documents are
streamed by :class:`smolbook.data.PretrainStream` (``train`` stays empty here) and ``valid`` holds held-out
documents streamed once per domain and cached (``heldout.json``, ``corpus/valid``, ``tokens/valid_*.npz``).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from smolbook.data.chat import KINDS, build_chat_data, render_row
from smolbook.data.corpus import DOMAINS, EVAL_TASKS, GENERATOR_VERSION, Corpus, generate_corpus
from smolbook.data.mixture import PRETRAINING_STAGES
from smolbook.data.products import PreparedData, TokenDocs
from smolbook.data.sources import HubUnreachable, SourceSpec, _hub_error, as_text, open_hub_dataset, stand_in
from smolbook.data.tokenizer import load_book_tokenizer, load_tokenizer, train_bpe
from smolbook.errors import SmolbookError
from smolbook.recipe import load_recipe
from smolbook.scales import Scale, get_scale

TOKENIZER_VERSION = 2  # 2: trained on the corpus and a sample of the rendered SFT conversations
# One in CHAT_SAMPLE_EVERY training conversations of each kind, as the chat template renders it, joins the corpus
# the BPE is trained on (tokenizer_texts).
CHAT_SAMPLE_EVERY = 10
_PARTS = ("corpus", "evals", "tokenizer", "tokens")


def fingerprint(scale: Scale, seed: int) -> str:
    """What the offline build depends on."""
    key = {"scale": scale.name, "docs": scale.corpus_docs_per_domain, "evals": scale.eval_examples_per_task,
           "vocab": scale.model.vocab_size, "seq_len": scale.seq_len, "seed": int(seed),
           "generator": GENERATOR_VERSION, "tokenizer": TOKENIZER_VERSION}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def prepare(scale: str | Scale, output_dir: str | Path, seed: int = 0, progress: bool = True) -> PreparedData:
    """Load-or-build the corpus, evaluations, tokenizer and token ids under ``output_dir/data``."""
    scale = get_scale(scale)
    root = Path(output_dir) / "data"
    if not scale.offline:
        return _prepare_online(scale, root, seed)
    try:
        return _load(scale, root, seed)
    except _Stale:
        pass
    return _build(scale, root, seed, progress)


class _Stale(Exception):
    """The cache is absent, from another fingerprint, or incomplete."""


def _load(scale: Scale, root: Path, seed: int) -> PreparedData:
    import datasets

    mpath = root / "manifest.json"
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError):
        raise _Stale from None
    if manifest.get("fingerprint") != fingerprint(scale, seed):
        raise _Stale
    try:
        tok = load_tokenizer(root / "tokenizer")
        data = PreparedData(scale, seed, root, tok, root / "tokenizer", manifest=manifest, from_cache=True)
        for split, target in (("train", data.train), ("valid", data.valid)):
            data.tokens[split] = {}
            for d in DOMAINS:
                target[d] = datasets.load_from_disk(str(root / "corpus" / split / d))
                data.tokens[split][d] = _load_tokens(root / "tokens" / f"{split}_{d}.npz")
                if len(data.tokens[split][d]) != len(target[d]):
                    raise _Stale
        for t in EVAL_TASKS:
            data.evals[t] = datasets.load_from_disk(str(root / "evals" / t))
    except _Stale:
        raise
    except Exception:  # a partial or corrupt build: rebuild rather than fail
        raise _Stale from None
    return data


def _load_tokens(path: Path) -> TokenDocs:
    with np.load(path) as z:
        return TokenDocs(z["ids"], z["offsets"])


def _tokenize(tok: Any, texts: list[str]) -> TokenDocs:
    eos = tok.eos_token_id
    enc = tok.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
    lens = np.fromiter((len(e.ids) + 1 for e in enc), dtype=np.int64, count=len(enc))
    offsets = np.concatenate([[0], np.cumsum(lens)])
    ids = np.empty(int(offsets[-1]), dtype=np.int32)
    for e, a in zip(enc, offsets[:-1]):
        ids[a:a + len(e.ids)] = e.ids
        ids[a + len(e.ids)] = eos
    return TokenDocs(ids, offsets)


def tokenizer_texts(scale: Scale, corpus: Corpus, seed: int) -> list[str]:
    """What the offline BPE is trained on: the pretraining corpus and a tenth of the SFT training conversations
    as the chat template renders them.

    The corpus alone never holds the template's English (the released system prompt, the tool blocks), so a BPE
    trained on it spells them almost byte by byte: at tiny's 1,024 entries a one-line question rendered to ~460
    tokens and a tool conversation to ~1,200, most of each SFT step spent on a system block that carries no loss.
    The released tokenizer was trained on a broad mix that covers such text; the offline one sees a sample of
    the text the book trains on. Measured at tiny's 1,024 entries (tests/data/test_sft_rows.py): renders 1.4x
    shorter (mean 476 tokens against 655, tool conversations ~870 against ~1,200) for 5.5% more corpus tokens."""
    texts = [r["text"] for d in DOMAINS for r in corpus.train[d]]
    chat = build_chat_data(scale, seed=seed, corpus=corpus)
    for kind in KINDS:
        rows = chat.train[kind]
        texts += [render_row(rows[i]) for i in range(0, len(rows), CHAT_SAMPLE_EVERY)]
    return texts


def _build(scale: Scale, root: Path, seed: int, progress: bool) -> PreparedData:
    import datasets

    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # our own bar below; datasets' per-save bars would flood the notebook
    try:
        return _build_quietly(scale, root, seed, progress)
    finally:
        if bars_were_on:
            datasets.enable_progress_bars()


def _build_quietly(scale: Scale, root: Path, seed: int, progress: bool) -> PreparedData:
    import datasets
    from tqdm.auto import tqdm

    for part in (*_PARTS, "manifest.json"):
        p = root / part
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    root.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=4, desc=f"data ({scale.name})", disable=not progress)

    t0 = time.perf_counter()
    corpus = generate_corpus(scale.corpus_docs_per_domain, scale.eval_examples_per_task, seed)
    t_gen = time.perf_counter() - t0
    bar.update()

    t1 = time.perf_counter()
    tok = train_bpe(tokenizer_texts(scale, corpus, seed), scale.model.vocab_size, root / "tokenizer",
                    model_max_length=scale.long_context[1])
    t_tok = time.perf_counter() - t1
    bar.update()

    t2 = time.perf_counter()
    data = PreparedData(scale, seed, root, tok, root / "tokenizer")
    sizes: dict[str, dict[str, dict[str, int]]] = {}
    (root / "tokens").mkdir()
    for split, rows_by_domain, target in (("train", corpus.train, data.train), ("valid", corpus.valid, data.valid)):
        data.tokens[split], sizes[split] = {}, {}
        for d in DOMAINS:
            rows = rows_by_domain[d]
            td = _tokenize(tok, [r["text"] for r in rows])
            np.savez(root / "tokens" / f"{split}_{d}.npz", ids=td.ids, offsets=td.offsets)
            data.tokens[split][d] = td
            ds = datasets.Dataset.from_list(rows)
            ds.save_to_disk(str(root / "corpus" / split / d))
            target[d] = datasets.load_from_disk(str(root / "corpus" / split / d))
            lens = td.lengths
            sizes[split][d] = {"docs": len(rows), "tokens": td.n_tokens, "median_tokens": int(np.median(lens)),
                               "max_tokens": int(lens.max()), "docs_over_seq_len": int((lens > scale.seq_len).sum()),
                               # documents a long-context stage can learn from: longer than each of its lengths
                               "docs_over": {str(n): int((lens > n).sum()) for n in scale.long_context}}
    bar.update()
    for t in EVAL_TASKS:
        datasets.Dataset.from_list(corpus.evals[t]).save_to_disk(str(root / "evals" / t))
        data.evals[t] = datasets.load_from_disk(str(root / "evals" / t))
    t_write = time.perf_counter() - t2
    bar.update()
    bar.close()

    data.manifest = {
        "fingerprint": fingerprint(scale, seed), "scale": scale.name, "seed": seed,
        "generator_version": GENERATOR_VERSION, "vocab_size": len(tok),
        "sizes": sizes, "evals": {t: len(corpus.evals[t]) for t in EVAL_TASKS},
        "seconds": {"generate": round(t_gen, 3), "tokenizer": round(t_tok, 3), "tokenize_and_write": round(t_write, 3),
                    "total": round(time.perf_counter() - t0, 3)},
        "world": {"people": len(corpus.world.people), "heldout_people": len(corpus.world.heldout_people),
                  "cities": len(corpus.world.cities), "organisations": len(corpus.world.orgs)},
    }
    tmp = root / "manifest.json.tmp"
    tmp.write_text(json.dumps(data.manifest, indent=2))
    tmp.replace(root / "manifest.json")  # last, and atomic: its presence means the build is complete
    return data


def _prepare_online(scale: Scale, root: Path, seed: int) -> PreparedData:
    """Hub scales: the recipe's tokenizer, held-out documents streamed from the hub (cached under ``root``:
    validation loss and the long-context probe read them), evaluation prompts still generated offline."""
    import datasets

    tok = load_book_tokenizer(scale.tokenizer)  # the released SmolLM3 tokenizer, chat markers checked
    tok.save_pretrained(root / "tokenizer")  # a local copy: tokenizer_dir is a folder at every scale
    data = PreparedData(scale, seed, root, tok, root / "tokenizer")
    if scale.eval_examples_per_task > 0:
        corpus = generate_corpus(24, scale.eval_examples_per_task, seed)
        data.evals = {t: datasets.Dataset.from_list(corpus.evals[t]) for t in EVAL_TASKS}
    data.valid, data.tokens["valid"], heldout = _online_heldout(scale, root, tok)
    data.manifest = {"scale": scale.name, "seed": seed, "online": True, "tokenizer": scale.tokenizer,
                     "heldout": heldout, "sizes": {"valid": {d: {"docs": len(td), "tokens": td.n_tokens}
                                                             for d, td in data.tokens["valid"].items()}}}
    return data


# Held-out documents per domain at the hub scales: enough to fill the 32 packed rows heldout_evaluator scores
# and a long-context haystack, few enough to stream in a minute. A domain tries its top few datasets.
ONLINE_VALID_DOCS = 128
HELDOUT_CANDIDATES = 3


def heldout_specs() -> dict[str, list[Any]]:
    """domain -> the recipe datasets its held-out documents may come from, the ones the pretraining stages
    weigh most first (the validation loss then measures what training mostly reads). The first that can be
    streamed as text is used; the next ones stand by for datasets whose hub rows hold no text (the Stack v2
    and Stack-Edu rows hold Software Heritage blob ids)."""
    recipe, best = load_recipe(), {}
    for stage in PRETRAINING_STAGES:
        st = recipe.stage(stage)
        for e in st.datasets:
            if e.hub_id:
                best[e.name] = max(best.get(e.name, (0.0, None))[0], e.weight / st.weight_sum), SourceSpec.from_entry(e)
    ranked = sorted(best.values(), key=lambda x: -x[0])
    return {d: [spec for _, spec in ranked if stand_in(spec.category) == d][:HELDOUT_CANDIDATES] for d in DOMAINS}


def _heldout_stream(spec: Any) -> tuple[Any, str]:
    """The documents of ``spec`` that training does not read first: the dataset's last shard.

    The training stream (smolbook.data.sources.HubTokenSource) reads a dataset's shards in order from the
    first, so it reaches the last one only after a whole epoch of the dataset, which the small scale never
    completes on these large datasets (and the full scale only on the few it repeats). A one-file dataset has
    no such shard: its held-out documents would be the first ones trained on, so that is an error."""
    ds = open_hub_dataset(spec)
    n = ds.num_shards
    if n < 2:
        raise SmolbookError(f"dataset '{spec.name}' ({spec.hub_id}) is a single file: it has no shard the training "
                            f"stream leaves unread, so it cannot give held-out documents")
    return ds.shard(num_shards=n, index=n - 1), f"{n - 1} of {n}"


def _heldout_texts(candidates: list[Any], tok: Any) -> tuple[list[str], dict]:
    """The held-out texts of one domain from its first usable candidate, and what was read (or why none was).
    An unreachable hub stops here: another dataset would not help."""
    reasons = []
    for spec in candidates:
        try:
            ds, shard = _heldout_stream(spec)
            try:
                texts = [as_text(row[spec.text_field], tok) for row in ds.take(ONLINE_VALID_DOCS)]
            except Exception as e:  # the connection drops mid-stream
                raise _hub_error(spec, e) from None
        except HubUnreachable:
            raise
        except SmolbookError as e:  # no text column, a single file, no rows: the next candidate
            reasons.append(str(e))
            continue
        return texts, {"dataset": spec.name, "hub_id": spec.hub_id, "subset": spec.subset, "shard": shard,
                       "docs": len(texts), "passed_over": reasons}
    return [], {"dataset": None, "passed_over": reasons}


def _online_heldout(scale: Scale, root: Path, tok: Any) -> tuple[dict, dict, dict]:
    """(domain -> Dataset of held-out texts, domain -> TokenDocs, what was read): loaded from ``root`` when an
    earlier run streamed the same datasets with the same tokenizer, streamed and cached otherwise. A domain
    none of whose datasets can be streamed as text is left out, with a warning and the reasons in the manifest."""
    import warnings

    import datasets

    candidates = heldout_specs()
    key = {"tokenizer": scale.tokenizer, "docs": ONLINE_VALID_DOCS, "version": 1,
           "datasets": {d: [[s.hub_id, s.subset, s.text_field] for s in c] for d, c in candidates.items()}}
    mpath = root / "heldout.json"
    try:
        cached = json.loads(mpath.read_text())
        if cached["key"] == key:
            have = [d for d in candidates if cached["read"][d]["dataset"]]
            valid = {d: datasets.load_from_disk(str(root / "corpus" / "valid" / d)) for d in have}
            return valid, {d: _load_tokens(root / "tokens" / f"valid_{d}.npz") for d in have}, cached["read"]
    except (OSError, ValueError, KeyError):
        pass  # absent or partial: stream again
    valid, tokens, read = {}, {}, {}
    (root / "tokens").mkdir(parents=True, exist_ok=True)
    for d, cands in candidates.items():
        texts, read[d] = _heldout_texts(cands, tok)
        if not texts:
            warnings.warn(f"no held-out documents for domain '{d}' at scale {scale.name}: its validation loss is "
                          f"left out. " + " | ".join(read[d]["passed_over"]), stacklevel=3)
            continue
        tokens[d] = _tokenize(tok, texts)
        read[d]["tokens"] = tokens[d].n_tokens
        np.savez(root / "tokens" / f"valid_{d}.npz", ids=tokens[d].ids, offsets=tokens[d].offsets)
        datasets.Dataset.from_dict({"text": texts}).save_to_disk(str(root / "corpus" / "valid" / d))
        valid[d] = datasets.load_from_disk(str(root / "corpus" / "valid" / d))
    tmp = root / "heldout.json.tmp"
    tmp.write_text(json.dumps({"key": key, "read": read}, indent=2))
    tmp.replace(mpath)  # last: its presence means every file above is complete
    return valid, tokens, read
