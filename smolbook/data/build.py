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
streamed by :class:`smolbook.data.PretrainStream` (``train``/``valid`` stay empty here).
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

from smolbook.data.corpus import DOMAINS, EVAL_TASKS, GENERATOR_VERSION, generate_corpus
from smolbook.data.mixture import TokenDocs
from smolbook.data.tokenizer import load_tokenizer, train_bpe
from smolbook.scales import Scale, get_scale

TOKENIZER_VERSION = 1
_PARTS = ("corpus", "evals", "tokenizer", "tokens")


@dataclass
class PreparedData:
    """The data products of one scale and seed."""

    scale: Scale
    seed: int
    root: Path
    tokenizer: Any
    tokenizer_dir: Path
    train: dict[str, Any] = field(default_factory=dict)   # domain -> datasets.Dataset
    valid: dict[str, Any] = field(default_factory=dict)   # domain -> datasets.Dataset (held-out docs)
    evals: dict[str, Any] = field(default_factory=dict)   # task -> datasets.Dataset
    tokens: dict[str, dict[str, TokenDocs]] = field(default_factory=dict)  # split -> domain -> TokenDocs
    manifest: dict = field(default_factory=dict)
    from_cache: bool = False

    def sizes(self) -> dict[str, dict[str, int]]:
        """Documents and tokens per domain of the training split (as recorded in the manifest)."""
        return self.manifest.get("sizes", {}).get("train", {})


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
    texts = [r["text"] for d in DOMAINS for r in corpus.train[d]]
    tok = train_bpe(texts, scale.model.vocab_size, root / "tokenizer", model_max_length=scale.long_context[1])
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
                               "max_tokens": int(lens.max()), "docs_over_seq_len": int((lens > scale.seq_len).sum())}
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
    """Hub scales: the recipe's tokenizer; evaluation prompts are still generated offline."""
    import datasets

    tok = load_tokenizer(scale.tokenizer)
    tok.save_pretrained(root / "tokenizer")  # a local copy: tokenizer_dir is a folder at every scale
    data = PreparedData(scale, seed, root, tok, root / "tokenizer")
    if scale.eval_examples_per_task > 0:
        corpus = generate_corpus(24, scale.eval_examples_per_task, seed)
        data.evals = {t: datasets.Dataset.from_list(corpus.evals[t]) for t in EVAL_TASKS}
    data.manifest = {"scale": scale.name, "seed": seed, "online": True, "tokenizer": scale.tokenizer}
    return data
