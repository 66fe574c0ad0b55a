"""Chat evaluation of several checkpoints on this machine: side by side in one-thread worker processes against one
after another in this process (all its threads), in one run.

``smolbook.evaluate.chat.chat_scores`` on the same checkpoints (the scale's model preset, saved from different
initialisations with the offline tokenizer and its chat template), the same held-out conversations and the same
greedy decoding, with ``workers=1`` and with the default (one worker per torch thread on a CPU). Rounds are
interleaved and the best round of each is reported (the machine is shared). Prints the speed-up.

    python benchmarks/chat_eval_workers.py --scale tiny [--checkpoints 4] [--per-kind 2] [--rounds 2]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from smolbook.data import prepare
from smolbook.data.chat import KINDS, build_chat_data
from smolbook.evaluate.chat import chat_scores
from smolbook.model import build_model, smollm3_config
from smolbook.parallel import worker_count
from smolbook.scales import get_scale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="tiny")
    ap.add_argument("--checkpoints", type=int, default=4)
    ap.add_argument("--per-kind", type=int, default=2)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    scale = get_scale(args.scale)
    with tempfile.TemporaryDirectory() as d:
        data = prepare(scale, d, progress=False)
        rows = build_chat_data(scale, seed=data.seed).heldout_set(KINDS, per_kind=args.per_kind)
        config = smollm3_config(scale)
        folders = {}
        for k in range(args.checkpoints):
            folder = Path(d) / f"ckpt{k}"
            build_model(config, seed=k).save_pretrained(folder)
            data.tokenizer.save_pretrained(folder)
            folders[f"init {k}"] = folder
        best = {"one process": float("inf"), "workers": float("inf")}
        for _ in range(args.rounds):
            for name, workers in (("one process", 1), ("workers", None)):
                t0 = time.perf_counter()
                chat_scores(folders, rows, max_new_tokens=args.max_new_tokens, workers=workers)
                best[name] = min(best[name], time.perf_counter() - t0)
    n = worker_count("cpu", args.checkpoints)
    print(f"{args.checkpoints} checkpoints x {len(rows)} held-out conversations, {args.max_new_tokens} new tokens, "
          f"torch threads {torch.get_num_threads()}")
    print(f"one process: {best['one process']:.1f} s   {n} workers: {best['workers']:.1f} s   "
          f"speed-up {best['one process'] / best['workers']:.2f}x")


if __name__ == "__main__":
    main()
