"""Model-FLOPs utilisation of the SmolLM3-3B preset on one GPU: the number to hold against the recipe's ~26%.

The recipe's production run: 11.2T tokens on 384 H100s in about 24 days, i.e. ~14.1k tokens/s per GPU, which at
6 x 3.08B FLOPs per token is ~260 TFLOP/s per GPU: about 26% of an H100's 989 TFLOP/s dense bf16 peak. This
script measures what the book's own training step reaches on one GPU, on synthetic packed batches:

* the 3B preset (``smollm3-3b``), sdpa attention, fp32 master weights with bf16 autocast (what
  ``smolbook.train.pretrain`` does on CUDA), AdamW from ``smolbook.train.optim``;
* activation checkpointing on (as the ``full`` scale's FSDP config) or off (``--no-checkpointing``);
* with document masking (packed rows, position_ids restarting at each document: transformers then builds a
  packed-sequence mask) and without (one document per row: plain causal attention, where sdpa can use its
  flash kernel).

MFU = achieved model FLOP/s / the GPU's dense bf16 peak (989 TFLOP/s for H100/H200 SXM, or ``--peak-tflops``).
Model FLOPs per token = 6 N (N: parameters, tied embedding once) + the causal attention's 6 L s d (L layers, s
the row length, d the hidden size); recomputation under activation checkpointing is *not* counted (that is
MFU, not hardware utilisation). Both are printed, and the result as JSON with ``--json``.

    python benchmarks/gpu_mfu.py                                  # one GPU: both masking modes, with checkpointing
    python benchmarks/gpu_mfu.py --preset smoke --device cpu --steps 2 --warmup 1 --seq-len 128   # code path on CPU
"""
from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from smolbook.model import build_model, count_parameters, smollm3_config
from smolbook.train import TrainConfig
from smolbook.train.optim import build_optimizer

H100_BF16_DENSE_TFLOPS = 989.4
RECIPE = {"tokens": 11.2e12, "gpus": 384, "days": 24}


def recipe_mfu(params: float, peak_tflops: float = H100_BF16_DENSE_TFLOPS) -> float:
    """The production run's MFU from its published totals (6 N per token; ~26% for the 3B on H100s)."""
    per_gpu = RECIPE["tokens"] / (RECIPE["gpus"] * RECIPE["days"] * 86400)
    return 6 * params * per_gpu / (peak_tflops * 1e12)


def batch(vocab: int, rows: int, seq_len: int, doc_masking: bool, device: str, seed: int = 0) -> dict:
    """Synthetic rows: packed documents (position_ids restart, 64..seq/2 tokens each) or one document per row."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (rows, seq_len), generator=g)
    pos = torch.arange(seq_len).repeat(rows, 1)
    if doc_masking:
        for r in range(rows):
            t = 0
            while t < seq_len:
                n = min(int(torch.randint(64, max(65, seq_len // 2), (1,), generator=g)), seq_len - t)
                pos[r, t:t + n] = torch.arange(n)
                t += n
    return {k: v.to(device) for k, v in {"input_ids": ids, "position_ids": pos, "labels": ids.clone()}.items()}


def flops_per_token(config, params: int, seq_len: int) -> float:
    """6 N plus causal attention (QK^T and AV, forward and backward: 6 L s d per token on average)."""
    return 6 * params + 6 * config.num_hidden_layers * seq_len * config.hidden_size


def measure(preset: str, device: str, rows: int, seq_len: int, doc_masking: bool, checkpointing: bool,
            steps: int, warmup: int) -> dict:
    """Tokens/s of forward + backward + AdamW on one device, timed over ``steps`` after ``warmup`` steps."""
    config = smollm3_config(preset, attn_implementation="sdpa")
    model = build_model(config, 0).to(device)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    opt = build_optimizer(model, TrainConfig(steps=steps + warmup, learning_rate=2e-4, warmup_steps=0))
    b = batch(config.vocab_size, rows, seq_len, doc_masking, device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else nullcontext()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            sync()
            t0 = time.perf_counter()
        with autocast:
            loss = model(**b, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    sync()
    dt = time.perf_counter() - t0
    params = count_parameters(config)
    tok_s = steps * rows * seq_len / dt
    out = {"preset": preset, "rows": rows, "seq_len": seq_len, "doc_masking": doc_masking,
           "activation_checkpointing": checkpointing, "tokens_per_s": tok_s, "params": params,
           "model_tflops": tok_s * flops_per_token(config, params, seq_len) / 1e12,
           "model_tflops_6n": tok_s * 6 * params / 1e12, "final_loss": float(loss.detach())}
    if device.startswith("cuda"):
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
    del model, opt
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="smollm3-3b", help="model preset (default the released 3B)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--rows", type=int, default=2, help="rows per step on the GPU (default 2: the book's 576/288)")
    p.add_argument("--seq-len", type=int, default=4096)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--no-checkpointing", action="store_true", help="without activation checkpointing")
    p.add_argument("--masking", choices=("both", "on", "off"), default="both", help="document masking")
    p.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE_TFLOPS,
                   help="the device's dense bf16 peak (default: H100/H200 SXM)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("no CUDA device here: run it on a GPU machine, or use --device cpu --preset smoke to check the code")
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        print(f"device: {torch.cuda.get_device_name()}")
    results = []
    for masking in {"both": (True, False), "on": (True,), "off": (False,)}[args.masking]:
        r = measure(args.preset, args.device, args.rows, args.seq_len, masking, not args.no_checkpointing,
                    args.steps, args.warmup)
        r["mfu"] = r["model_tflops"] / args.peak_tflops
        r["mfu_6n"] = r["model_tflops_6n"] / args.peak_tflops
        r["recipe_mfu_6n"] = recipe_mfu(count_parameters(smollm3_config("smollm3-3b")), args.peak_tflops)
        results.append(r)
        print(f"{args.preset} doc_masking={'on ' if masking else 'off'} checkpointing={'on' if r['activation_checkpointing'] else 'off'}: "
              f"{r['tokens_per_s']:,.0f} tokens/s, {r['model_tflops']:.1f} TFLOP/s, MFU {100 * r['mfu']:.1f}% "
              f"(6N only {100 * r['mfu_6n']:.1f}%; recipe's production run {100 * r['recipe_mfu_6n']:.1f}%)"
              + (f", peak memory {r['peak_memory_gib']:.1f} GiB" if "peak_memory_gib" in r else ""), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
