"""SmolLM3 models for every scale, built on transformers' ``SmolLM3Config`` / ``SmolLM3ForCausalLM``.

There is no model code of our own here: this module only chooses the numbers (a preset per scale plus the
released ``smollm3-3b`` architecture) and exposes the switches the ablations need (GQA/MHA/MQA, NoPE interval,
tied embeddings, RoPE theta, YaRN). Two transformers details matter and are handled here:

* ``no_rope_layers[i] == 1`` means layer ``i`` *uses* RoPE; ``0`` marks a NoPE layer. With an interval of 4
  transformers builds ``[1, 1, 1, 0, ...]``: layers 3, 7, 11, ... are NoPE (checked in tests/model/test_model.py).
* transformers 5.x keeps ``rope_theta`` and ``rope_scaling`` inside ``config.rope_parameters``; a top-level
  ``rope_theta`` is no longer the place to look, and SmolLM3Config's default theta is 2M, not the 50k the
  pretraining stages use, so the theta is always passed explicitly.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from transformers import SmolLM3Config, SmolLM3ForCausalLM

from smolbook.errors import SmolbookError
from smolbook.scales import SCALE_NAMES, ModelShape, Scale, get_scale

# The released SmolLM3-3B, read from the recipe data (stage1_8T.yaml model_config; RoPE theta 50k during the 4k
# pretraining stages, raised to 2M then 5M by the long-context stages; the Hugging Face release ships the final 5M).
SMOLLM3_3B = get_scale("full").model
SMOLLM3_3B_SPECIAL_TOKENS = {"bos_token_id": 128000, "eos_token_id": 128001, "pad_token_id": 128004}
SMOLLM3_3B_CONTEXT = get_scale("full").seq_len


def _presets() -> dict[str, tuple[ModelShape, int]]:
    out = {name: (get_scale(name).model, get_scale(name).seq_len) for name in SCALE_NAMES}
    out["smollm3-3b"] = (SMOLLM3_3B, SMOLLM3_3B_CONTEXT)
    return out


# preset name -> (shape, pretraining context length)
PRESETS: dict[str, tuple[ModelShape, int]] = _presets()


def _resolve(preset_or_scale: str | Scale) -> tuple[str, ModelShape, int]:
    if isinstance(preset_or_scale, Scale):
        return preset_or_scale.name, preset_or_scale.model, preset_or_scale.seq_len
    if preset_or_scale not in PRESETS:
        raise SmolbookError(f"unknown model preset '{preset_or_scale}': choose one of {', '.join(PRESETS)}")
    shape, ctx = PRESETS[preset_or_scale]
    return preset_or_scale, shape, ctx


def no_rope_layers_for(num_layers: int, interval: int) -> list[int]:
    """transformers' per-layer RoPE switch: 1 = RoPE, 0 = NoPE (every ``interval``-th layer); interval 0 = RoPE everywhere."""
    if interval < 0:
        raise SmolbookError(f"no_rope_layer_interval must be >= 0 (0 = RoPE in every layer), got {interval}")
    if interval == 0:
        return [1] * num_layers
    return [int((i + 1) % interval != 0) for i in range(num_layers)]


def smollm3_config(
    preset_or_scale: str | Scale,
    *,
    num_key_value_heads: int | None = None,
    intermediate_size: int | None = None,
    no_rope_layer_interval: int | None = None,
    tie_word_embeddings: bool | None = None,
    rope_theta: float | None = None,
    yarn_factor: float | None = None,
    vocab_size: int | None = None,
    max_position_embeddings: int | None = None,
    tokenizer: Any = None,
    attn_implementation: str = "sdpa",
) -> SmolLM3Config:
    """A ``SmolLM3Config`` for a preset (``smoke``/``tiny``/``small``/``full``/``smollm3-3b``) or a :class:`Scale`.

    Overrides (``None`` keeps the preset's value): ``num_key_value_heads`` (= heads for MHA, 1 for MQA);
    ``intermediate_size`` (the MLP width: an ablation matches two arms' parameters with it, smolbook.ablations.match_parameters);
    ``no_rope_layer_interval`` (NoPE every k-th layer; ``0`` = RoPE in every layer); ``tie_word_embeddings``;
    ``rope_theta``; ``yarn_factor`` (YaRN scaling over the context ``max_position_embeddings``, which is then
    multiplied by the factor); ``vocab_size``; ``tokenizer`` (takes vocab size and bos/eos/pad ids from it).
    """
    name, shape, ctx = _resolve(preset_or_scale)
    heads = shape.num_attention_heads
    kv = shape.num_key_value_heads if num_key_value_heads is None else int(num_key_value_heads)
    if kv < 1 or heads % kv:
        raise SmolbookError(f"num_key_value_heads={kv} must divide num_attention_heads={heads} (MHA: {heads}, MQA: 1)")
    interval = shape.no_rope_layer_interval if no_rope_layer_interval is None else int(no_rope_layer_interval)
    theta = float(shape.rope_theta if rope_theta is None else rope_theta)
    ctx = int(max_position_embeddings or ctx)
    rope = rope_parameters(theta, yarn_factor, ctx)
    if yarn_factor is not None:
        ctx = int(ctx * yarn_factor)
    special = dict(SMOLLM3_3B_SPECIAL_TOKENS) if shape.vocab_size == SMOLLM3_3B.vocab_size else \
        {"bos_token_id": None, "eos_token_id": None, "pad_token_id": None}
    vocab = shape.vocab_size if vocab_size is None else int(vocab_size)
    if tokenizer is not None:
        vocab = len(tokenizer) if vocab_size is None else vocab
        special = {k: getattr(tokenizer, k, None) for k in special}
    for k, v in special.items():
        if v is not None and v >= vocab:
            special[k] = None  # an id outside the vocabulary would break nn.Embedding(padding_idx=...)
    return SmolLM3Config(
        vocab_size=vocab,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size if intermediate_size is None else int(intermediate_size),
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        max_position_embeddings=ctx,
        rms_norm_eps=1e-6,
        initializer_range=0.02,  # init_method std 0.02 in the nanotron configs
        rope_parameters=rope,
        no_rope_layers=no_rope_layers_for(shape.num_hidden_layers, interval),
        no_rope_layer_interval=interval,
        tie_word_embeddings=True if tie_word_embeddings is None else bool(tie_word_embeddings),
        attn_implementation=attn_implementation,
        **special,
    )


def build_model(config: SmolLM3Config, seed: int = 0, device: str | torch.device | None = None) -> SmolLM3ForCausalLM:
    """A freshly initialised ``SmolLM3ForCausalLM`` (same seed -> same weights). ``device="meta"`` allocates nothing."""
    torch.manual_seed(seed)
    if device is not None and str(device) == "meta":
        with torch.device("meta"):
            return SmolLM3ForCausalLM(config)
    model = SmolLM3ForCausalLM(config)
    return model.to(device) if device is not None else model


def rope_parameters(theta: float, yarn_factor: float | None = None,
                    original_max_position_embeddings: int | None = None) -> dict[str, Any]:
    """transformers' ``rope_parameters`` for a RoPE theta, optionally with YaRN scaling over an original context."""
    if yarn_factor is None:
        return {"rope_type": "default", "rope_theta": float(theta)}
    if yarn_factor <= 1:
        raise SmolbookError(f"yarn_factor must be > 1 (the recipe uses 2), got {yarn_factor}")
    if not original_max_position_embeddings:
        raise SmolbookError("YaRN needs original_max_position_embeddings: the context length the model was trained at")
    return {"rope_type": "yarn", "rope_theta": float(theta), "factor": float(yarn_factor),
            "original_max_position_embeddings": int(original_max_position_embeddings)}


def load_with_rope(path: str | Path, rope_theta: float | None = None, yarn_factor: float | None = None,
                   original_max_position_embeddings: int | None = None, max_position_embeddings: int | None = None,
                   **from_pretrained: Any) -> SmolLM3ForCausalLM:
    """Reload a checkpoint with other rotary settings: a new RoPE ``theta`` and/or YaRN ``yarn_factor``.

    transformers computes the rotary ``inv_freq`` when the model is built (a non-persistent buffer, never read
    from the weights), so editing ``model.config`` after loading changes nothing: the new settings have to be in
    the config the model is built from. ``None`` keeps the checkpoint's value. With YaRN the context becomes
    ``original_max_position_embeddings`` (default: the checkpoint's ``max_position_embeddings``) x the factor;
    ``max_position_embeddings`` sets it for a theta-only change (the new training length). NoPE layers stay NoPE
    (``no_rope_layers`` is kept). ``save_pretrained`` of the result keeps the new settings, so plain
    ``AutoModelForCausalLM.from_pretrained`` reloads it as it is.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    path = Path(path)
    if not (path / "config.json").is_file():
        raise SmolbookError(f"no checkpoint at {path} (expected {path / 'config.json'}): run the chapter that makes it first")
    config = AutoConfig.from_pretrained(path)
    old = dict(config.rope_parameters or {})
    theta = float(old.get("rope_theta", 10000.0) if rope_theta is None else rope_theta)
    if yarn_factor is None:
        rope = dict(old, rope_theta=theta) if old.get("rope_type", "default") != "default" else rope_parameters(theta)
        if max_position_embeddings:
            config.max_position_embeddings = int(max_position_embeddings)
    else:
        base = int(original_max_position_embeddings or old.get("original_max_position_embeddings")
                   or config.max_position_embeddings)
        rope = rope_parameters(theta, yarn_factor, base)
        config.max_position_embeddings = int(base * yarn_factor)
    config.rope_parameters = rope
    return AutoModelForCausalLM.from_pretrained(path, config=config, **from_pretrained)


def _group(name: str) -> str:
    if "embed_tokens" in name:
        return "embeddings"
    if name.startswith("lm_head"):
        return "lm_head"
    if ".self_attn." in name:
        return "attention"
    if ".mlp." in name:
        return "mlp"
    if "norm" in name:
        return "norms"
    return "other"


def count_parameters(model_or_config: torch.nn.Module | SmolLM3Config, breakdown: bool = False) -> int | dict[str, int]:
    """Parameter count (tied weights once). A config is built on the meta device, so the 3B counts instantly.

    With ``breakdown=True``: ``{"embeddings", "attention", "mlp", "norms", "lm_head" (0 when tied), "total"}``.
    """
    model = build_model(model_or_config, device="meta") if isinstance(model_or_config, SmolLM3Config) else model_or_config
    groups = {"embeddings": 0, "attention": 0, "mlp": 0, "norms": 0, "lm_head": 0}
    for name, p in model.named_parameters():  # named_parameters() yields a tied tensor once
        g = _group(name)
        groups[g] = groups.get(g, 0) + p.numel()
    groups["total"] = sum(groups.values())
    return groups if breakdown else groups["total"]


def kv_cache_bytes_per_token(config: SmolLM3Config, bytes_per_value: int = 2, num_key_value_heads: int | None = None) -> int:
    """KV-cache bytes one token costs: K and V, in every layer (NoPE layers cache too), per KV head (bf16 = 2 bytes)."""
    kv = config.num_key_value_heads if num_key_value_heads is None else num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return 2 * config.num_hidden_layers * kv * head_dim * bytes_per_value


def describe(preset_or_scale: str | Scale, **overrides: Any) -> dict[str, Any]:
    """The architecture as data: shape, per-layer RoPE pattern, parameters and KV-cache bytes (bf16, GQA vs MHA)."""
    name = preset_or_scale.name if isinstance(preset_or_scale, Scale) else preset_or_scale
    c = smollm3_config(preset_or_scale, **overrides)
    head_dim = c.hidden_size // c.num_attention_heads
    return {
        "preset": name,
        "hidden_size": c.hidden_size,
        "num_hidden_layers": c.num_hidden_layers,
        "num_attention_heads": c.num_attention_heads,
        "num_key_value_heads": c.num_key_value_heads,
        "head_dim": head_dim,
        "intermediate_size": c.intermediate_size,
        "vocab_size": c.vocab_size,
        "tie_word_embeddings": c.tie_word_embeddings,
        "rms_norm_eps": c.rms_norm_eps,
        "max_position_embeddings": c.max_position_embeddings,
        "rope_parameters": dict(c.rope_parameters),
        "no_rope_layers": list(c.no_rope_layers),
        "nope_layer_indices": [i for i, r in enumerate(c.no_rope_layers) if r == 0],
        "parameters": count_parameters(c, breakdown=True),
        "kv_cache_bytes_per_token_bf16": kv_cache_bytes_per_token(c, 2),
        "kv_cache_bytes_per_token_bf16_mha": kv_cache_bytes_per_token(c, 2, num_key_value_heads=c.num_attention_heads),
    }


def measured_kv_cache_bytes_per_token(config: SmolLM3Config, tokens: int = 64) -> int:
    """KV-cache bytes per token *measured* on transformers' DynamicCache (bf16), not computed from a formula.

    The cache of one decoder layer does not depend on the others, so a one-layer copy of the attention shape
    (small vocabulary) is run for ``tokens`` tokens and its cache tensors are weighed; times the layer count.
    This keeps the measurement cheap even for the 3B shape.
    """
    one = SmolLM3Config(**{**config.to_dict(), "num_hidden_layers": 1, "no_rope_layers": [1], "layer_types": None,
                           "vocab_size": 64, "bos_token_id": None, "eos_token_id": None, "pad_token_id": None})
    model = build_model(one, seed=0).to(torch.bfloat16).eval()
    with torch.no_grad():
        cache = model(input_ids=torch.zeros(1, tokens, dtype=torch.long), use_cache=True).cache
    layer_bytes = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    return layer_bytes * config.num_hidden_layers // tokens


def plot_layer_pattern(configs: dict[str, SmolLM3Config]):
    """One row per model: a cell per decoder layer, RoPE or NoPE, read from ``config.no_rope_layers``."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    width = max(c.num_hidden_layers for c in configs.values())
    fig, ax = plt.subplots(figsize=(min(14, 1 + width * 0.35), 0.7 + 0.55 * len(configs)))
    grid = torch.full((len(configs), width), float("nan"))
    for r, c in enumerate(configs.values()):
        grid[r, :c.num_hidden_layers] = torch.tensor(c.no_rope_layers, dtype=torch.float)
    ax.imshow(grid.numpy(), cmap=ListedColormap(["#d95f02", "#1b9e77"]), vmin=0, vmax=1, aspect="auto")
    for r, c in enumerate(configs.values()):
        for i, use in enumerate(c.no_rope_layers):
            ax.text(i, r, "R" if use else "N", ha="center", va="center", fontsize=7, color="white")
    ax.set_yticks(range(len(configs)), list(configs))
    ax.set_xticks(range(0, width, max(1, width // 12)))
    ax.set_xlabel("decoder layer (R = RoPE, N = NoPE)")
    ax.set_title("Rotary position embedding per layer (transformers' no_rope_layers: 1 = RoPE, 0 = NoPE)")
    return fig


def plot_kv_cache(config: SmolLM3Config, contexts: list[int], bytes_per_value: int = 2):
    """KV-cache memory (GiB, one sequence, bf16) against context length for MHA, the config's GQA and MQA."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    heads = config.num_attention_heads
    for kv, style in ((heads, "--"), (config.num_key_value_heads, "-"), (1, ":")):
        label = "MHA" if kv == heads else ("MQA" if kv == 1 else "GQA")
        per_tok = kv_cache_bytes_per_token(config, bytes_per_value, num_key_value_heads=kv)
        ax.plot(contexts, [per_tok * n / 2**30 for n in contexts], style, marker="o",
                label=f"{label}: {kv} KV heads ({per_tok / 1024:.0f} KiB/token)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("KV cache, one sequence (GiB, bf16)")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


# -- command line ------------------------------------------------------------------------------------------------
def _cmd_params(args: argparse.Namespace) -> int:
    counts = count_parameters(smollm3_config(args.preset), breakdown=True)
    if args.json:
        print(json.dumps(counts if args.breakdown else {"total": counts["total"]}))
    elif args.breakdown:
        for k, v in counts.items():
            print(f"{k:<11} {v:>14,d}  {100 * v / counts['total']:5.1f}%")
    else:
        print(counts["total"])
    return 0


def _cmd_describe(args: argparse.Namespace) -> int:
    d = describe(args.preset)
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    pattern = "".join("R" if r else "N" for r in d["no_rope_layers"])
    print(f"{d['preset']}: {d['num_hidden_layers']} layers, hidden {d['hidden_size']}, {d['num_attention_heads']} heads / "
          f"{d['num_key_value_heads']} KV heads (head dim {d['head_dim']}), MLP {d['intermediate_size']}, vocab {d['vocab_size']}, "
          f"tied embeddings: {d['tie_word_embeddings']}")
    print(f"RoPE {d['rope_parameters']}; per-layer pattern (R=RoPE, N=NoPE): {pattern}")
    print(f"parameters: {d['parameters']['total']:,d}; KV cache per token (bf16): {d['kv_cache_bytes_per_token_bf16']:,d} B "
          f"(MHA: {d['kv_cache_bytes_per_token_bf16_mha']:,d} B)")
    return 0


def register_cli(subparsers: Any) -> None:
    """``smolbook model params|describe --preset NAME``."""
    p = subparsers.add_parser("model", help="SmolLM3 model presets: parameter counts and architecture")
    sub = p.add_subparsers(dest="model_command", required=True)
    for cmd, fn, helptext in (("params", _cmd_params, "parameter count (instant: built on the meta device)"),
                              ("describe", _cmd_describe, "architecture, RoPE/NoPE layer pattern, KV-cache bytes")):
        q = sub.add_parser(cmd, help=helptext)
        q.add_argument("--preset", default="smollm3-3b", help=f"one of {', '.join(PRESETS)} (default smollm3-3b)")
        q.add_argument("--json", action="store_true", help="print JSON")
        if cmd == "params":
            q.add_argument("--breakdown", action="store_true", help="split embeddings / attention / MLP / norms")
        q.set_defaults(func=fn)


__all__ = ["PRESETS", "SMOLLM3_3B", "build_model", "count_parameters", "describe", "kv_cache_bytes_per_token", "load_with_rope",
           "rope_parameters",
           "measured_kv_cache_bytes_per_token", "no_rope_layers_for", "plot_kv_cache", "plot_layer_pattern",
           "smollm3_config"]
