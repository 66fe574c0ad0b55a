"""Training: one run spec, one entry point, every scale.

* :mod:`smolbook.train.spec`       ``RunSpec``: where the model comes from, the data, budget, schedule, resume (YAML)
* :mod:`smolbook.train.run`        ``run(spec)``: resolve it, train it with the scale's launcher, register checkpoints;
                                   ``resolve_config(spec)``: the ``TrainConfig`` it trains with, without training;
                                   ``build_data(spec)``: the data stream it trains on (what a chapter shows of it)
* :mod:`smolbook.train.sweep`      ``sweep({(arm, seed): spec})``: arms x seeds, side by side in worker processes on CPU
* :mod:`smolbook.train.config`     ``TrainConfig`` (the recipe's optimiser and schedule defaults)
* :mod:`smolbook.train.optim`      AdamW groups (token embedding without weight decay) and the WSD/cosine scheduler
* :mod:`smolbook.train.loop`       the training loop (DDP/FSDP via accelerate), metrics.jsonl, signals
* :mod:`smolbook.train.checkpoint` HF-format checkpoints plus trainer state
* :mod:`smolbook.train.trl`        TRL's SFT and DPO trainers on the book's specs; ``chat_tokenizer`` (what they read)
* :mod:`smolbook.train.launch`     ``smolbook train run SPEC.yaml`` / ``python -m smolbook.train run SPEC.yaml``
"""
from smolbook.train.checkpoint import latest_checkpoint
from smolbook.train.config import TrainConfig
from smolbook.train.launch import register_cli
from smolbook.train.loop import TrainResult, pretrain
from smolbook.train.run import build_data, resolve_config, run
from smolbook.train.spec import BudgetSpec, DataSpec, ModelSpec, RunSpec, ScheduleSpec
from smolbook.train.sweep import SweepRun, sweep
from smolbook.train.trl import chat_tokenizer

__all__ = ["BudgetSpec", "DataSpec", "ModelSpec", "RunSpec", "ScheduleSpec", "TrainConfig", "TrainResult",
           "SweepRun", "build_data", "chat_tokenizer", "latest_checkpoint", "pretrain", "register_cli", "resolve_config", "run", "sweep"]
