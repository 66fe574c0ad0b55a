"""Pretraining on accelerate: ``pretrain(model, stream, TrainConfig(...), output_dir)`` and its command line.

* :mod:`smolbook.train.config`     TrainConfig (the recipe's optimiser and schedule defaults)
* :mod:`smolbook.train.optim`      AdamW groups (token embedding without weight decay) and the WSD/cosine scheduler
* :mod:`smolbook.train.loop`       the training loop (DDP/FSDP via accelerate), metrics.jsonl, signals
* :mod:`smolbook.train.checkpoint` HF-format checkpoints plus trainer state; ``final_checkpoint(output_dir)``
* :mod:`smolbook.train.launch`     ``smolbook train pretrain`` / ``python -m smolbook.train``; in-process,
                                   accelerate-launched or SLURM runs depending on the scale's launcher
"""
from smolbook.train.checkpoint import final_checkpoint, latest_checkpoint
from smolbook.train.config import TrainConfig
from smolbook.train.launch import register_cli, run_pretraining
from smolbook.train.loop import TrainResult, pretrain

__all__ = ["TrainConfig", "TrainResult", "final_checkpoint", "latest_checkpoint", "pretrain", "register_cli",
           "run_pretraining"]
