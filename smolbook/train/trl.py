"""The chat trainers of a run spec: ``trainer: sft`` (TRL ``SFTTrainer``) and ``trainer: dpo`` (TRL ``DPOTrainer``).

Thin wrappers, config-driven like TRL itself: the spec's budget, schedule, precision and seed become an
``SFTConfig`` / ``DPOConfig``; the data builder gives a ``datasets.Dataset`` in TRL's formats (conversations with
``chat_template_kwargs``; prompt / chosen / rejected pairs). What the recipe fixes is fixed here: SFT packs with
BFD and trains on assistant turns only (user turns and tool results masked); preference training uses the APO loss
(``apo_zero`` unless the spec's ``data.options.loss_type`` says otherwise, e.g. ``sigmoid`` for DPO). The chat model
is saved ending its turns with ``<|im_end|>`` (tokenizer eos and ``generation_config``), so plain transformers
generation stops where the template does.

The run folder is the same as a pretraining run's: ``metrics.jsonl`` (TRL's logs, one row per logged step),
``final/`` (Hugging Face folder + ``trainer_state.json``) and TRL's own ``checkpoint-N`` folders under ``trl/``
for resuming.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from transformers import PrinterCallback, TrainerCallback

from smolbook.chat.template import attach_template
from smolbook.errors import SmolbookError
from smolbook.train import checkpoint as ckpt_mod
from smolbook.train.config import TrainConfig
from smolbook.train.cpu_attention import cpu_training_attention
from smolbook.train.loop import METRICS_FILE, TrainResult, resolve_precision
from smolbook.train.spec import RunSpec

TRL_DIR = "trl"
CHAT_EOS = "<|im_end|>"
LOSS_TYPES = ("apo_zero", "apo_down", "sigmoid", "ipo")


def trl_checkpoints(run_dir: Path) -> list[Path]:
    """TRL's ``checkpoint-N`` folders of a run, oldest first."""
    root = run_dir / TRL_DIR
    if not root.is_dir():
        return []
    return sorted((p for p in root.glob("checkpoint-*") if p.is_dir()), key=lambda p: int(p.name.split("-")[-1]))


def chat_tokenizer(path: Path) -> Any:
    """The checkpoint's tokenizer as a chat model's: the book's template, and ``<|im_end|>`` as eos."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    attach_template(tok)
    if tok.convert_tokens_to_ids(CHAT_EOS) in (None, tok.unk_token_id):
        raise SmolbookError(f"the tokenizer at {path} has no {CHAT_EOS} token: chat training needs the book's tokenizer")
    tok.eos_token = CHAT_EOS
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _common_args(config: TrainConfig, rows: int, seq_len: int, output_dir: Path) -> dict[str, Any]:
    import torch

    bf16 = resolve_precision(config) == "bf16"
    return dict(output_dir=str(output_dir), max_steps=config.steps, per_device_train_batch_size=rows,
                learning_rate=config.learning_rate, lr_scheduler_type=config.schedule if config.schedule == "cosine"
                else "linear", warmup_steps=config.warmup_steps, weight_decay=config.weight_decay,
                adam_beta1=config.betas[0], adam_beta2=config.betas[1], adam_epsilon=config.eps,
                max_grad_norm=config.grad_clip, max_length=seq_len, bf16=bf16, use_cpu=not torch.cuda.is_available(),
                logging_steps=1, save_strategy="steps", save_steps=max(1, config.checkpoint_every or config.steps),
                save_total_limit=None if config.keep_last_checkpoints == 0 else 2, report_to=[], seed=config.seed,
                data_seed=config.seed, dataloader_num_workers=0, disable_tqdm=True, gradient_checkpointing=False)


def make_trainer(kind: str, model: Any, tokenizer: Any, dataset: Any, config: TrainConfig, rows: int, seq_len: int,
                 output_dir: Path, options: dict | None = None) -> Any:
    """TRL's trainer of ``kind`` (``sft`` or ``dpo``) as the book configures it: the recipe's fixed choices (BFD
    packing and assistant-only loss; the APO loss) and the run's budget, schedule, precision and seed. It prints
    nothing itself (no progress bar, no log lines): :func:`train_trl` adds the book's one bar."""
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    options = options or {}
    # The chat model ends its turns with <|im_end|>: say so in its configs before the trainer sees them, or
    # transformers' Trainer realigns them itself and warns on every run.
    for name in ("eos_token_id", "bos_token_id", "pad_token_id"):
        if getattr(tokenizer, name) is not None:
            setattr(model.config, name, getattr(tokenizer, name))
            setattr(model.generation_config, name, getattr(tokenizer, name))
    common = _common_args(config, rows, seq_len, output_dir)
    if kind == "sft":
        # BFD packing is padding-free: one row of whole conversations, position ids restarting at each, so
        # transformers keeps them apart (tests/data/test_sft_packing.py) and the CPU attention attends to each alone.
        args = SFTConfig(packing=True, packing_strategy="bfd", assistant_only_loss=True, **common)
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    elif kind == "dpo":
        loss = options.get("loss_type", "apo_zero")
        if loss not in LOSS_TYPES:
            raise SmolbookError(f"data.options.loss_type must be one of {', '.join(LOSS_TYPES)}, got {loss!r}")
        args = DPOConfig(loss_type=[loss], beta=float(options.get("beta", 0.1)), **common)
        trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    else:
        raise SmolbookError(f"trainer kind {kind!r}: TRL runs 'sft' or 'dpo'")
    trainer.remove_callback(PrinterCallback)  # with tqdm off, Trainer prints every log dict instead
    return trainer


def train_trl(spec: RunSpec, model: Any, source: Path, dataset: Any, config: TrainConfig, rows: int, seq_len: int,
              resume: bool) -> TrainResult:
    """Train ``model`` (loaded from checkpoint ``source``) on ``dataset`` with the spec's TRL trainer."""
    run_dir = spec.run_dir
    if not resume:
        for stale in (run_dir / TRL_DIR, run_dir / "final"):
            shutil.rmtree(stale, ignore_errors=True)
        (run_dir / METRICS_FILE).unlink(missing_ok=True)
    elif (run_dir / "final" / ckpt_mod.STATE_FILE).is_file():
        return TrainResult.from_dir(run_dir)
    tok = chat_tokenizer(source)
    trainer = make_trainer(spec.trainer, model, tok, dataset, config, rows, seq_len, run_dir / TRL_DIR,
                           spec.data.options)
    trainer.add_callback(_progress_callback(run_dir, config, spec.trainer))
    with cpu_training_attention(trainer.model):
        out = trainer.train(resume_from_checkpoint=bool(resume and trl_checkpoints(run_dir)) or None)
    history = trainer.state.log_history
    _write_metrics(run_dir, history)
    final = run_dir / "final"
    shutil.rmtree(final, ignore_errors=True)
    trainer.model.generation_config.eos_token_id = tok.eos_token_id
    trainer.model.generation_config.pad_token_id = tok.pad_token_id
    trainer.model.config.eos_token_id = tok.eos_token_id
    trainer.save_model(str(final))
    tok.save_pretrained(final)
    (final / ckpt_mod.ACCEL_DIR).mkdir(exist_ok=True)  # TRL keeps its own resumable state under trl/
    tokens = next((int(h["num_tokens"]) for h in reversed(history) if "num_tokens" in h), None)
    ckpt_mod.write_state(final, {"step": out.global_step, "tokens": tokens, "trainer": spec.trainer,
                                 "config": config.to_dict()})
    return TrainResult.from_dir(run_dir)


def _metrics_row(h: dict) -> dict | None:
    """One TRL log entry as a ``metrics.jsonl`` row (``kind: train``, ``step``, ``loss``, ``lr``, ``tokens`` ...);
    None for the closing summary (``train_runtime``, ...)."""
    if "loss" not in h or "step" not in h:
        return None
    row = {"kind": "train", "step": int(h["step"]), "loss": float(h["loss"]), "lr": float(h.get("learning_rate", 0))}
    if "num_tokens" in h:  # TRL counts the tokens it trained on (packed rows are not all full)
        row["tokens"] = int(h["num_tokens"])
    row.update({k: v for k, v in h.items() if k not in ("loss", "step", "learning_rate", "epoch") and
                isinstance(v, (int, float))})
    return row


def _write_metrics(run_dir: Path, history: list[dict]) -> None:
    """TRL's whole log history as the book's ``metrics.jsonl`` (rewritten at the end: a resumed run's included)."""
    rows = [r for r in map(_metrics_row, history) if r is not None]
    (run_dir / METRICS_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))


def _progress_callback(run_dir: Path, config: TrainConfig, kind: str) -> Any:
    """A ``TrainerCallback`` that appends each log row to ``metrics.jsonl`` as it comes (a sweep's bar counts them)
    and, with ``config.progress``, draws one tqdm bar: TRL's own bar and its notebook table of losses are off."""
    class Progress(TrainerCallback):
        bar = None

        def on_train_begin(self, args, state, control, **kwargs):
            if config.progress:
                self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=kind, mininterval=1.0,
                                dynamic_ncols=True)

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kwargs):
            row = _metrics_row({**(logs or {}), "step": state.global_step})
            if row is not None:
                with (run_dir / METRICS_FILE).open("a") as f:
                    f.write(json.dumps(row) + "\n")
                if self.bar is not None:
                    self.bar.set_postfix(loss=f"{row['loss']:.3f}", refresh=False)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()

    return Progress()
