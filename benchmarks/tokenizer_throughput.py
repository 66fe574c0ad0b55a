"""Tokenization throughput: ``datasets.map`` single-process vs ``num_proc=2``, side by side in one run.

    python benchmarks/tokenizer_throughput.py --scale tiny --output-dir runs/tiny

Uses the book's own corpus and tokenizer (``smolbook.data.prepare``, built if absent). Prints
tokens/s for each setting and the ratio (num_proc=2 over single process). The tokenizer's Rust
parallelism is switched off (TOKENIZERS_PARALLELISM=false) so the two settings compare process
parallelism only.
"""
from __future__ import annotations

import sys
from pathlib import Path

# This file is named like the standard library's ``tokenize`` module, which pandas/linecache import:
# when run as a script its folder must not shadow the real one.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="tiny")
    parser.add_argument("--output-dir", default=None, help="run folder holding data/ (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per setting; the best is reported")
    args = parser.parse_args(argv)

    import datasets

    from smolbook.data import DOMAINS, prepare

    datasets.disable_progress_bars()
    datasets.disable_caching()  # every map really tokenizes
    out = args.output_dir or tempfile.mkdtemp(prefix="smolbook-bench-")
    data = prepare(args.scale, out, progress=False)
    corpus = datasets.concatenate_datasets([data.train[d].select_columns(["text"]) for d in DOMAINS])
    tok = data.tokenizer

    def encode(batch):
        return {"input_ids": tok(batch["text"], add_special_tokens=False)["input_ids"]}

    results = {}
    for num_proc in (None, 2):
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            mapped = corpus.map(encode, batched=True, batch_size=256, num_proc=num_proc, remove_columns=["text"])
            best = min(best, time.perf_counter() - t0)
        n_tokens = sum(len(x) for x in mapped["input_ids"])
        results[num_proc or 1] = n_tokens / best
        print(f"num_proc={num_proc or 1}: {n_tokens} tokens in {best:.2f}s -> {n_tokens / best:,.0f} tokens/s")
    print(f"ratio num_proc=2 / single process: {results[2] / results[1]:.2f}x  "
          f"({len(corpus)} documents, {os.cpu_count()} CPUs visible)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
