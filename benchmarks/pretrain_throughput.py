"""Pretraining throughput on this machine: smolbook's loop vs a plain transformers + torch loop.

Same model (the scale's preset), same packed batch, same optimiser, both in fp32 on CPU. Prints tokens/s, the
model-FLOPs utilisation (6 * N * tokens/s over the fp32 matmul peak measured in this same run), and the ratio
smolbook / plain. Also times eager vs sdpa attention and checks that both honour packed position_ids (a packed
document's logits equal its logits alone), then reports which one is faster.

    python benchmarks/pretrain_throughput.py --scale tiny --steps 20 [--json out.json]

Runs alternate (plain, smolbook, plain, smolbook, ...) and the best round of each is reported, because this
machine is shared and a single run is at the mercy of other processes.
"""
from __future__ import annotations

import sys
from pathlib import Path

# Running a script puts its folder first on sys.path, where benchmarks/tokenize.py would shadow the standard
# library's tokenize (which torch's import reaches through linecache). Drop that entry: we import nothing from it.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from smolbook.model import build_model, count_parameters, smollm3_config  # noqa: E402
from smolbook.scales import get_scale  # noqa: E402
from smolbook.train import TrainConfig, pretrain  # noqa: E402
from smolbook.train.optim import build_optimizer, build_scheduler  # noqa: E402


def matmul_peak_flops(n: int = 1024, reps: int = 10, rounds: int = 5) -> float:
    """Best fp32 matmul FLOP/s over a few rounds of ``reps`` n x n x n products."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = 0.0
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        best = max(best, 2 * n ** 3 * reps / (time.perf_counter() - t))
    return best


def packed_batch(vocab: int, rows: int, seq_len: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A packed batch: documents of random length, position_ids restarting at each."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (rows, seq_len), generator=g)
    pos = torch.empty_like(ids)
    for r in range(rows):
        t = 0
        while t < seq_len:
            n = min(int(torch.randint(16, seq_len // 2, (1,), generator=g)), seq_len - t)
            pos[r, t:t + n] = torch.arange(n)
            t += n
    return {"input_ids": ids, "position_ids": pos, "labels": ids.clone()}


class RepeatStream:
    """The same batch every step (throughput does not depend on the tokens)."""

    def __init__(self, batch: dict[str, torch.Tensor]):
        self.batch, self.index, self.stage = batch, 0, "stable"

    def __iter__(self):
        return self

    def __next__(self):
        self.index += 1
        return self.batch

    def state_dict(self) -> dict:
        return {"index": self.index}

    def load_state_dict(self, sd: dict) -> None:
        self.index = sd["index"]


def plain_loop(config, batch, steps: int, warmup: int, lr: float) -> float:
    """The textbook loop: forward with labels, backward, clip, AdamW step, LambdaLR step. Returns tokens/s."""
    model = build_model(config, seed=0)
    tc = TrainConfig(steps=steps + warmup, learning_rate=lr, warmup_steps=1, progress=False)
    opt, tokens = build_optimizer(model, tc), batch["input_ids"].numel()
    sched = build_scheduler(opt, tc)
    model.train()
    for i in range(steps + warmup):
        if i == warmup:
            t = time.perf_counter()
        loss = model(**batch, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    return tokens * steps / (time.perf_counter() - t)


def smolbook_loop(config, batch, steps: int, warmup: int, lr: float) -> float:
    """smolbook.train.pretrain on the same batch; tokens/s over the steps after warm-up (from its metrics)."""
    model = build_model(config, seed=0)
    tc = TrainConfig(steps=steps + warmup, learning_rate=lr, warmup_steps=1, progress=False)
    with tempfile.TemporaryDirectory() as d:
        result = pretrain(model, RepeatStream(batch), tc, Path(d))
    rows = result.rows("train")
    # Wall clock between the end of the warm-up steps and the end of the last step, as the loop logged it
    # (includes data, logging and the progress bar; excludes start-up and the final checkpoint).
    first, last = rows[warmup - 1], rows[-1]
    return (last["tokens"] - first["tokens"]) / (last["elapsed_s"] - first["elapsed_s"])


def packed_matches_alone(attn: str, vocab: int) -> bool:
    """A document packed after another gets the same logits as alone (no attention across documents)."""
    m = build_model(smollm3_config("smoke", vocab_size=vocab, attn_implementation=attn), seed=0).eval()
    a, b = torch.randint(0, vocab, (1, 11)), torch.randint(0, vocab, (1, 13))
    pos = torch.cat([torch.arange(11), torch.arange(13)])[None]
    with torch.no_grad():
        both = m(input_ids=torch.cat([a, b], 1), position_ids=pos, use_cache=False).logits[:, 11:]
        alone = m(input_ids=b, position_ids=torch.arange(13)[None], use_cache=False).logits
    return torch.allclose(both, alone, atol=1e-5)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", default="tiny")
    p.add_argument("--steps", type=int, default=15, help="timed steps per round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's choice). On a shared, oversubscribed machine 1 thread "
                        "avoids OpenMP threads waiting on each other")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    s = get_scale(args.scale)
    batch = packed_batch(s.model.vocab_size, s.micro_batch_size, s.seq_len)
    tokens = batch["input_ids"].numel()
    res: dict = {"scale": s.name, "batch": list(batch["input_ids"].shape), "threads": torch.get_num_threads()}

    # eager vs sdpa, with the plain loop (attention is the only difference)
    attn_tps = {}
    for attn in ("eager", "sdpa"):
        cfg = smollm3_config(s, attn_implementation=attn)
        attn_tps[attn] = max(plain_loop(cfg, batch, args.steps, args.warmup, s.learning_rate) for _ in range(args.rounds))
        res[f"packed_ok_{attn}"] = packed_matches_alone(attn, s.model.vocab_size)
    ok = [a for a in attn_tps if res[f"packed_ok_{a}"]]
    res["attention_tokens_per_s"] = attn_tps
    res["attention_choice"] = max(ok, key=attn_tps.get) if ok else None
    cfg = smollm3_config(s, attn_implementation=res["attention_choice"] or "sdpa")
    n_params = count_parameters(cfg)

    plain, ours = [], []
    peak = matmul_peak_flops()
    for _ in range(args.rounds):
        plain.append(plain_loop(cfg, batch, args.steps, args.warmup, s.learning_rate))
        ours.append(smolbook_loop(cfg, batch, args.steps, args.warmup, s.learning_rate))
        peak = max(peak, matmul_peak_flops())  # re-measured between rounds: the best the machine gave us
    res.update(params=n_params, tokens_per_step=tokens, matmul_peak_gflops=peak / 1e9,
               plain_tokens_per_s=max(plain), smolbook_tokens_per_s=max(ours),
               ratio=max(ours) / max(plain),
               plain_mfu=6 * n_params * max(plain) / peak, smolbook_mfu=6 * n_params * max(ours) / peak,
               rounds={"plain": plain, "smolbook": ours})
    print(f"{s.name}: {n_params:,d} params, batch {res['batch']}, {res['threads']} threads, "
          f"fp32 matmul peak {res['matmul_peak_gflops']:.1f} GFLOP/s")
    print(f"attention: eager {attn_tps['eager']:,.0f} tok/s, sdpa {attn_tps['sdpa']:,.0f} tok/s; packed ok: "
          f"eager={res['packed_ok_eager']} sdpa={res['packed_ok_sdpa']} -> {res['attention_choice']}")
    print(f"plain loop   : {res['plain_tokens_per_s']:,.0f} tok/s, MFU {100 * res['plain_mfu']:.1f}%")
    print(f"smolbook loop: {res['smolbook_tokens_per_s']:,.0f} tok/s, MFU {100 * res['smolbook_mfu']:.1f}%")
    print(f"ratio smolbook / plain: {res['ratio']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
    sys.exit(0)
