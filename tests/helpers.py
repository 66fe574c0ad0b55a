"""What several test folders share: a toy packed-batch stream, tokenizer, model and trainer config for the trainer
tests (and the subprocesses they start), and the run spec of the chat-trainer tests.

``ToyStream`` implements the PretrainStream interface the trainer relies on: dict batches of input_ids /
position_ids / labels with position_ids restarting at each document, ``stage``, ``tokens_seen`` and exact resume
through ``state_dict`` / ``load_state_dict``. Documents are arithmetic progressions mod the vocabulary, so a
smoke-sized model's loss falls within a few dozen steps.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import torch

STAGES = ("stable", "stable-2", "decay")


class ToyStream:
    def __init__(self, vocab_size: int = 64, seq_len: int = 32, batch_size: int = 4, seed: int = 0,
                 stage_steps: tuple[int, int] = (8, 10)):
        self.vocab_size, self.seq_len, self.batch_size, self.seed = vocab_size, seq_len, batch_size, seed
        self.stage_steps = stage_steps
        self.index, self.tokens_seen, self.stage = 0, 0, STAGES[0]

    def __iter__(self) -> "ToyStream":
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.index)
        ids = torch.empty(self.batch_size, self.seq_len, dtype=torch.long)
        pos = torch.empty_like(ids)
        for r in range(self.batch_size):
            t = 0
            while t < self.seq_len:
                n = min(int(torch.randint(4, self.seq_len // 2 + 1, (1,), generator=g)), self.seq_len - t)
                start = int(torch.randint(0, self.vocab_size, (1,), generator=g))
                stride = int(torch.randint(1, 3, (1,), generator=g))
                ids[r, t:t + n] = (start + stride * torch.arange(n)) % self.vocab_size
                pos[r, t:t + n] = torch.arange(n)
                t += n
        self.stage = STAGES[sum(self.index >= s for s in self.stage_steps)]
        self.index += 1
        self.tokens_seen += ids.numel()
        return {"input_ids": ids, "position_ids": pos, "labels": ids.clone()}

    def state_dict(self) -> dict:
        return {"index": self.index, "tokens_seen": self.tokens_seen, "stage": self.stage}

    def load_state_dict(self, sd: dict) -> None:
        self.index, self.tokens_seen, self.stage = sd["index"], sd["tokens_seen"], sd["stage"]


def toy_tokenizer(vocab_size: int = 64):
    """A word-level fast tokenizer over tokens t0..t{V-1} (so checkpoints carry a real, loadable tokenizer)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(vocab_size - 1)}
    vocab["<unk>"] = vocab_size - 1
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")


def toy_model(seed: int = 0, vocab_size: int = 64, **overrides):
    from smolbook.model import build_model, smollm3_config

    return build_model(smollm3_config("smoke", vocab_size=vocab_size, attn_implementation="sdpa", **overrides), seed)


def toy_config(steps: int = 12, **kw):
    from smolbook.train import TrainConfig

    # fp32: the toy tests compare trajectories exactly (resume, accumulation, 1 vs 2 processes); bf16 autocast,
    # the default on CPUs with native bf16, rounds differently per batch shape (its own test: test_train_loop.py)
    base = dict(steps=steps, learning_rate=3e-3, warmup_steps=2, progress=False, precision="fp32")
    base.update(kw)
    return TrainConfig(**base)


def chat_spec(out, trainer="sft", **kw):
    """A 3-step TRL run spec (``sft`` or ``dpo``) from chapter 07's smoke checkpoint in ``out``."""
    from smolbook.train import BudgetSpec, ModelSpec, RunSpec

    base = dict(chapter="11_sft" if trainer == "sft" else "12_apo", name=trainer, scale="smoke", output_dir=str(out),
                phase="sft" if trainer == "sft" else "preference", trainer=trainer,
                model=ModelSpec(checkpoint="chapter:07_pretraining"), budget=BudgetSpec(steps=3, rows_per_step=2),
                checkpoint_every=2)
    base.update(kw)
    return RunSpec(**base)


TESTS = Path(__file__).resolve().parent  # tests/, where this file is
SIGNAL_STEPS = 12

# A training subprocess slow enough that a signal lands mid-run (the signal and preemption tests).
SLOW_TRAIN_SCRIPT = textwrap.dedent(f"""
    import sys, time
    sys.path.insert(0, {str(TESTS)!r})
    from helpers import ToyStream, toy_config, toy_model
    from smolbook.train import pretrain

    class SlowStream(ToyStream):  # slow enough that the signal lands mid-run
        def __next__(self):
            time.sleep(0.3)
            return super().__next__()

    result = pretrain(toy_model(seed=0), SlowStream(seed=2), toy_config({SIGNAL_STEPS}), sys.argv[1])
    sys.exit(130 if result.interrupted else 0)
""")


def train_rows(path: Path) -> list[dict]:
    """The training rows of a run's metrics.jsonl (none yet when it is not there)."""
    if not path.is_file():
        return []
    return [r for r in (json.loads(x) for x in path.read_text().splitlines() if x.strip()) if r["kind"] == "train"]
