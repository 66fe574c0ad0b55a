"""SFT throughput on this machine: TRL's SFT as the book runs it beside the book's pretraining loop, in one run.

Three loops on the same model (the scale's preset, from the same initialisation), the same conversations (the
offline SFT mixture, rendered by the chat template) and the same rows (the scale's SFT row length and rows per
step):

* pretraining loop: ``smolbook.train.pretrain`` on the conversations packed into full rows with position ids
  restarting at each (mid-training's packing, :class:`smolbook.midtraining.ConversationStream`);
* TRL SFT: ``SFTTrainer`` as :func:`smolbook.train.trl.make_trainer` configures it (BFD packing, padding-free,
  assistant-only loss, the run's precision) under the book's CPU attention
  (:func:`smolbook.train.cpu_attention.cpu_training_attention`: fp32 kernel in bf16 steps, each packed conversation
  attended alone);
* TRL SFT, plain sdpa: the same trainer without the book's CPU attention (what transformers does alone: the
  block-diagonal mask of the whole padding-free row).

Tokens/s counts the tokens each loop trains on (TRL's ``num_tokens``; the pretraining loop's rows are full).
Rounds are interleaved and the best round of each is reported (the machine is shared). Prints the ratios TRL SFT /
pretraining loop (the book's bar: >= 0.7) and book attention / plain sdpa.

    python benchmarks/sft_throughput.py --scale tiny [--steps 8] [--rounds 2] [--data-dir runs/tiny]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from smolbook.data import prepare
from smolbook.data.chat import build_chat_data
from smolbook.midtraining import ConversationStream, tokenize_conversations
from smolbook.model import build_model, smollm3_config
from smolbook.scales import get_scale
from smolbook.train import TrainConfig, pretrain
from smolbook.train.cpu_attention import cpu_training_attention
from smolbook.train.trl import chat_tokenizer, make_trainer


def pretrain_loop(config, conversations, rows: int, seq_len: int, steps: int, warmup: int, lr: float, pad: int) -> float:
    """smolbook.train.pretrain on the conversations packed into full rows; tokens/s after the warm-up steps."""
    stream = ConversationStream(conversations, seq_len, rows, steps + warmup, epochs=1, pad_id=pad)
    tc = TrainConfig(steps=steps + warmup, learning_rate=lr, warmup_steps=1, progress=False, precision="auto",
                     eval_every=0, checkpoint_every=0)
    with tempfile.TemporaryDirectory() as d:
        result = pretrain(build_model(config, seed=0), stream, tc, Path(d))
    log = result.rows("train")
    first, last = log[warmup - 1], log[-1]
    return (last["tokens"] - first["tokens"]) / (last["elapsed_s"] - first["elapsed_s"])


class _Clock:
    """Wall clock and TRL's token count at the end of every training step (a ``TrainerCallback``)."""

    def __init__(self):
        from transformers import TrainerCallback

        marks = self.marks = []

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                marks.append(time.perf_counter())

        self.callback = Callback()


def trl_loop(config, tokenizer, dataset, rows: int, seq_len: int, steps: int, warmup: int, lr: float,
             book_attention: bool) -> float:
    """TRL's SFTTrainer as the book makes it; tokens/s over the steps after the warm-up ones."""
    tc = TrainConfig(steps=steps + warmup, learning_rate=lr, warmup_steps=1, progress=False, precision="auto",
                     checkpoint_every=steps + warmup + 1)
    with tempfile.TemporaryDirectory() as d:
        trainer = make_trainer("sft", build_model(config, seed=0), tokenizer, dataset, tc, rows, seq_len, Path(d))
        trainer.args.save_strategy = "no"
        clock = _Clock()
        trainer.add_callback(clock.callback)
        with cpu_training_attention(trainer.model) if book_attention else nullcontext():
            trainer.train()
    history = [h for h in trainer.state.log_history if "num_tokens" in h]
    tokens = history[-1]["num_tokens"] - history[warmup - 1]["num_tokens"]
    return tokens / (clock.marks[-1] - clock.marks[warmup - 1])


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="tiny")
    p.add_argument("--steps", type=int, default=8, help="timed steps per round")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--data-dir", type=Path, default=None, help="a run folder whose data/ (tokenizer) to reuse")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    s = get_scale(args.scale)
    b = s.budget("sft")
    rows, seq_len = b.rows_per_step, b.seq_len
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare(s, args.data_dir or tmp, progress=False)
        source = Path(tmp) / "source"
        config = smollm3_config(s, tokenizer=data.tokenizer, max_position_embeddings=seq_len)
        build_model(config, seed=0).save_pretrained(source)
        data.tokenizer.save_pretrained(source)
        tok = chat_tokenizer(source)
    need = (args.steps + args.warmup) * rows * seq_len * 2
    mixture = build_chat_data(s, seed=data.seed).mixture()
    conversations = tokenize_conversations(mixture, tok, need)
    dataset = mixture.select(range(len(conversations)))
    loops = {
        "pretraining loop": lambda: pretrain_loop(config, conversations, rows, seq_len, args.steps, args.warmup,
                                                  s.learning_rate, tok.pad_token_id or 0),
        "TRL SFT (book)": lambda: trl_loop(config, tok, dataset, rows, seq_len, args.steps, args.warmup,
                                           s.learning_rate, book_attention=True),
        "TRL SFT (plain sdpa)": lambda: trl_loop(config, tok, dataset, rows, seq_len, args.steps, args.warmup,
                                                 s.learning_rate, book_attention=False),
    }
    rounds: dict[str, list[float]] = {k: [] for k in loops}
    for _ in range(args.rounds):
        for name, fn in loops.items():
            rounds[name].append(fn())
    best = {k: max(v) for k, v in rounds.items()}
    res = {"scale": s.name, "rows": rows, "seq_len": seq_len, "threads": torch.get_num_threads(),
           "tokens_per_s": best, "rounds": rounds,
           "ratio_trl_vs_pretraining_loop": best["TRL SFT (book)"] / best["pretraining loop"],
           "ratio_book_vs_plain_attention": best["TRL SFT (book)"] / best["TRL SFT (plain sdpa)"]}
    print(f"{s.name}: {rows} rows x {seq_len} tokens per step, {res['threads']} threads; best of {args.rounds} "
          f"interleaved rounds of {args.steps} steps:")
    for k, v in best.items():
        print(f"  {k:<22s}: {v:>8,.0f} tokens/s")
    print(f"ratio TRL SFT (book) / pretraining loop: {res['ratio_trl_vs_pretraining_loop']:.3f}  (bar >= 0.7)")
    print(f"ratio TRL SFT book attention / plain sdpa: {res['ratio_book_vs_plain_attention']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
