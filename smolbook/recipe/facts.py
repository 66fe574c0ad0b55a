"""The config-side facts of a loaded recipe: every quantity the ledger compares with the blog, computed from the
transcription (parameters, tokens per stage, mixture shares, schedules, ...), never typed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from smolbook.recipe.units import human_tokens, pct


@dataclass(frozen=True)
class ConfigFact:
    value: Any
    text: str
    config_file: str



def config_facts(recipe: Any) -> dict[str, ConfigFact]:
    """Every config-side quantity the ledger can compare, computed from the transcribed facts of ``recipe`` (a
    :class:`smolbook.recipe.schema.Recipe`; the loader in that module calls this to check that each blog fact names
    one of them, so this module does not import it back)."""
    r = recipe
    a, o, pre = r.architecture, r.optimizer, r.runs["pretraining"]
    sch = pre.schedule
    F: dict[str, ConfigFact] = {}

    def put(key: str, value: Any, text: str, config_file: str) -> None:
        F[key] = ConfigFact(value, text, config_file)

    n = a.parameter_count()
    put("parameters", n, f"{n:,} ({n / 1e9:.2f}B, computed from the architecture)", a.config_file)
    end = r.pretraining_stages[-1]
    lc_tokens = sum(run.tokens for name, run in r.runs.items() if name != "pretraining")
    put("pretraining.tokens", end.end_tokens,
        f"{human_tokens(end.end_tokens)} ({sch.train_steps:,} steps x {pre.tokens_per_step:,}); "
        f"{human_tokens(end.end_tokens + lc_tokens)} with both long-context stages", end.config_file)
    for s in r.stages:
        put(f"{s.name}.start_tokens", s.start_tokens,
            f"{human_tokens(s.start_tokens)} ({s.start_step - 1:,} steps x {s.run.tokens_per_step:,} before it)",
            s.config_file)
        put(f"{s.name}.end_tokens", s.end_tokens,
            f"{human_tokens(s.end_tokens)} ({s.end_step:,} steps x {s.run.tokens_per_step:,})", s.config_file)
        put(f"{s.name}.weight_sum", s.weight_sum, f"{s.weight_sum:.6g} over {len(s.datasets)} datasets", s.config_file)
        shares, cats = s.bucket_shares(), s.category_shares()
        for b, v in shares.items():
            put(f"{s.name}.share.{b}", v, pct(v, 2), s.config_file)
        put(f"{s.name}.share.multilingual", cats["multilingual-web"], pct(cats["multilingual-web"], 2), s.config_file)
        put(f"{s.name}.share.reasoning", cats["reasoning"],
            f"{pct(cats['reasoning'])} ({sum(d.category == 'reasoning' for d in s.datasets)} datasets)", s.config_file)
    for name, run in r.runs.items():
        rs = run.schedule
        put(f"{name}.rope_theta", run.rope_theta, f"{run.rope_theta:,.0f}", run.config_file)
        put(f"{name}.tokens", run.tokens,
            f"{human_tokens(run.tokens)} ({rs.train_steps:,} steps x {run.tokens_per_step:,})", run.config_file)
        put(f"{name}.seq_len", run.sequence_length, f"{run.sequence_length:,}", run.config_file)
        put(f"{name}.learning_rate", rs.learning_rate, f"{rs.learning_rate:g}", run.config_file)
        put(f"{name}.schedule", rs.lr_decay_style, rs.describe(), run.config_file)
        put(f"{name}.global_batch_tokens", run.tokens_per_step,
            f"{run.tokens_per_step:,} ({run.micro_batch_size} x dp {run.dp} x accum "
            f"{run.batch_accumulation_per_replica} x {run.sequence_length:,})", run.config_file)
        put(f"{name}.gpus", run.gpus, f"{run.gpus} (tp {run.tp} x pp {run.pp} x cp {run.context_parallel_size} x dp {run.dp})",
            run.config_file)
    # Languages of the multilingual web in the last pretraining stage vs each long-context stage.
    def langs(stage: Any) -> set[str]:
        return {d.subset for d in stage.datasets if d.category == "multilingual-web" and d.subset}
    for s in r.stages:
        if s.run.name != "pretraining":
            dropped, added = sorted(langs(end) - langs(s)), sorted(langs(s) - langs(end))
            put(f"{s.name}.language_change", (tuple(dropped), tuple(added)),
                f"vs the decay stage: dropped {', '.join(dropped) or 'none'}; added {', '.join(added) or 'none'}",
                s.config_file)
    for k in ("num_key_value_heads", "no_rope_layer", "use_doc_masking", "rope_theta", "init_std", "z_loss_enabled",
              "tokenizer"):
        v = getattr(a, k)
        text = f"{v:,.0f}" if isinstance(v, float) and v > 1 else str(v).lower() if isinstance(v, bool) else str(v)
        put(k, v, text, a.config_file)
    put("embedding_weight_decay", o.embedding_weight_decay,
        f"{str(o.embedding_weight_decay).lower()} (weight_decay_exclude_named_params: "
        f"{', '.join(o.weight_decay_exclude_named_params)})", o.config_file)
    for k in ("adam_beta1", "adam_beta2", "adam_eps", "weight_decay", "clip_grad"):
        put(k, getattr(o, k), str(getattr(o, k)), o.config_file)
    put("learning_rate", sch.learning_rate, f"{sch.learning_rate:g}", pre.config_file)
    put("lr_warmup_steps", sch.lr_warmup_steps, f"{sch.lr_warmup_steps:,}", pre.config_file)
    put("lr_decay_style", sch.lr_decay_style, sch.lr_decay_style, pre.config_file)
    put("min_decay_lr", sch.min_decay_lr, f"{sch.min_decay_lr:g}", pre.config_file)
    put("decay_fraction", sch.decay_fraction,
        f"{pct(sch.decay_fraction)} ({sch.lr_decay_steps:,} / {sch.train_steps:,} steps, "
        f"{human_tokens(sch.lr_decay_steps * pre.tokens_per_step)} tokens)", pre.config_file)
    put("global_batch_tokens", pre.tokens_per_step, F["pretraining.global_batch_tokens"].text, pre.config_file)
    put("sequence_length", pre.sequence_length, f"{pre.sequence_length:,}", pre.config_file)
    put("gpus", pre.gpus, F["pretraining.gpus"].text, pre.config_file)
    return F
