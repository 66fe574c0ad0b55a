"""Generation throughput on this machine, side by side in one run: cached vs uncached decoding, GQA vs MHA at the
same size, and a model served by ``transformers serve`` vs the same model in process.

* GQA vs MHA: the scale's SmolLM3 shape (4 query heads per KV head) and its MHA twin (as many KV heads as query
  heads; everything else equal), freshly initialised, greedy ``generate`` of ``--new-tokens`` tokens after a
  ``--prompt-tokens`` prompt at batch 1 and ``--batch``, with the KV cache (and once without it, for the cache's
  own worth). GQA's cache is 4x smaller; at these sizes the attention over the cache is a small part of a step,
  so the ratio says how much of that saving shows in tokens/s on this machine.
* served vs in-process: one checkpoint (``--checkpoint``; default: a smoke pretraining run made in a temporary
  folder, about 5 s) answered greedily through the chat template by ``transformers serve`` over HTTP (the ``openai``
  client) and by ``model.generate`` in this process; tokens/s from the completion tokens of each.

Rounds are interleaved and the best round of each is reported: the machine is shared. Prints a table and the
ratios GQA/MHA, cached/uncached and served/in-process.

    python benchmarks/generate_throughput.py [--scale tiny] [--checkpoint DIR] [--rounds 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from smolbook.model import build_model, count_parameters, kv_cache_bytes_per_token, smollm3_config
from smolbook.scales import get_scale


@torch.no_grad()
def generate_tokens_per_s(model, batch: int, prompt_tokens: int, new_tokens: int, use_cache: bool = True) -> float:
    """Tokens/s of greedy generation of exactly ``new_tokens`` per row (EOS disabled) after random prompts."""
    ids = torch.randint(5, model.config.vocab_size, (batch, prompt_tokens), generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                         do_sample=False, use_cache=use_cache, eos_token_id=None, pad_token_id=0)
    seconds = time.perf_counter() - start
    assert out.shape[1] == prompt_tokens + new_tokens
    return batch * new_tokens / seconds


def smoke_checkpoint(folder: Path) -> Path:
    """A real book checkpoint (with its tokenizer and chat template): the smoke pretraining run."""
    from smolbook.chapter import find_checkpoint
    from smolbook.train import RunSpec, run

    run(RunSpec(chapter="07_pretraining", name="pretrain", scale="smoke", output_dir=str(folder), register_stages=True))
    return find_checkpoint(folder, "07_pretraining")


def served_vs_in_process(checkpoint: Path, new_tokens: int, rounds: int, threads: int) -> dict[str, float]:
    """Best tokens/s of the same greedy chat request answered in process and by ``transformers serve``."""
    from transformers import AutoModelForCausalLM

    from smolbook.data.tokenizer import load_tokenizer
    from smolbook.serve import serve

    model, tok = AutoModelForCausalLM.from_pretrained(checkpoint).eval(), load_tokenizer(checkpoint)
    messages = [{"role": "user", "content": "Tell me about the river that runs through the oldest city."}]
    best = {"in_process": 0.0, "served": 0.0, "in_process_tokens": 0, "served_tokens": 0}
    with serve(checkpoint, threads=threads, timeout=180) as server:
        server.chat(messages, mode="no_think", max_tokens=4)   # warm-up: the server loads lazily on first use
        for _ in range(rounds):
            # in process as the server does it: the chat template, greedy, the checkpoint's own generation config
            t = time.perf_counter()
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=False)
            ids = tok(text, return_tensors="pt", add_special_tokens=False)
            with torch.no_grad():
                out = model.generate(**ids, max_new_tokens=new_tokens, do_sample=False)
            n = out.shape[1] - ids["input_ids"].shape[1]
            best["in_process"] = max(best["in_process"], n / (time.perf_counter() - t))
            server.chat(messages, mode="no_think", max_tokens=new_tokens)
            req = server.requests[-1]
            best["served"] = max(best["served"], (req["completion_tokens"] or 0) / req["seconds"])
            best["in_process_tokens"], best["served_tokens"] = n, req["completion_tokens"]
    return best


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", default="tiny", help="the shape of the GQA/MHA pair (default tiny)")
    p.add_argument("--checkpoint", default=None, help="checkpoint to serve (default: a fresh smoke pretraining run)")
    p.add_argument("--prompt-tokens", type=int, default=128)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-serve", action="store_true", help="skip the served vs in-process comparison")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    s = get_scale(args.scale)
    gqa_cfg = smollm3_config(s)
    mha_cfg = smollm3_config(s, num_key_value_heads=gqa_cfg.num_attention_heads)
    models = {"GQA": build_model(gqa_cfg).eval(), "MHA": build_model(mha_cfg).eval()}
    results: dict = {"scale": s.name, "threads": torch.get_num_threads(), "prompt_tokens": args.prompt_tokens,
                     "new_tokens": args.new_tokens, "models": {}}
    for name, m in models.items():
        results["models"][name] = {"parameters": count_parameters(m.config), "kv_heads": m.config.num_key_value_heads,
                                   "kv_bytes_per_token_fp32": kv_cache_bytes_per_token(m.config, bytes_per_value=4)}
    cases = [(name, batch, cache) for name in models for batch in (1, args.batch) for cache in (True, False)
             if cache or batch == 1]
    best: dict[tuple, float] = {}
    for _ in range(args.rounds):   # interleaved rounds, best of each
        for name, batch, cache in cases:
            tps = generate_tokens_per_s(models[name], batch, args.prompt_tokens, args.new_tokens, use_cache=cache)
            best[(name, batch, cache)] = max(best.get((name, batch, cache), 0.0), tps)
    results["generate"] = [{"model": n, "batch": b, "cache": c, "tokens_per_s": round(v, 1)} for (n, b, c), v in best.items()]
    ratios = {f"GQA/MHA batch {b}": best[("GQA", b, True)] / best[("MHA", b, True)] for b in (1, args.batch)}
    ratios |= {f"cached/uncached {n} batch 1": best[(n, 1, True)] / best[(n, 1, False)] for n in models}
    if not args.no_serve:
        with tempfile.TemporaryDirectory(prefix="smolbook-bench-") as tmp:
            ckpt = Path(args.checkpoint) if args.checkpoint else smoke_checkpoint(Path(tmp))
            served = served_vs_in_process(ckpt, args.new_tokens, args.rounds, threads=torch.get_num_threads())
        results["served"] = {"checkpoint": str(args.checkpoint or "smoke pretraining (temporary)"),
                             **{k: round(v, 1) for k, v in served.items()}}
        ratios["served/in-process batch 1"] = served["served"] / served["in_process"]
    results["ratios"] = {k: round(v, 3) for k, v in ratios.items()}

    print(f"scale {s.name}: {results['models']['GQA']['parameters']:,d} (GQA) vs "
          f"{results['models']['MHA']['parameters']:,d} (MHA) parameters; {results['threads']} threads; "
          f"prompt {args.prompt_tokens}, {args.new_tokens} new tokens, best of {args.rounds} interleaved rounds")
    for r in results["generate"]:
        print(f"  {r['model']}  batch {r['batch']:>2}  {'cached  ' if r['cache'] else 'uncached'}  "
              f"{r['tokens_per_s']:>10,.1f} tokens/s")
    if "served" in results:
        print(f"  served vs in process (batch 1, chat template, greedy): {results['served']['served']:,.1f} vs "
              f"{results['served']['in_process']:,.1f} tokens/s ({results['served']['served_tokens']} vs "
              f"{results['served']['in_process_tokens']} new tokens; served time includes HTTP and JSON)")
    for k, v in results["ratios"].items():
        print(f"  ratio {k}: {v:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
