"""``smolbook recipe show | mixture | ledger | post-training``: the recipe as data on the command line."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from smolbook.recipe.ledger import ledger
from smolbook.recipe.post_training import load_post_training
from smolbook.recipe.schema import HUB_ID_SOURCES, Recipe, Stage, load_recipe
from smolbook.recipe.units import human_tokens, pct

# ----------------------------------------------------------------------------- CLI
def mixture_rows(stage: Stage) -> list[dict]:
    """The rows ``smolbook recipe mixture --json`` prints for one stage."""
    return [{"name": d.name, "weight": d.weight, "hub_id": d.hub_id, "subset": d.subset, "category": d.category,
             "hub_id_source": d.hub_id_source, "text_field": d.text_field} for d in stage.datasets]


def _table(rows: list[list[str]], header: list[str], right: set[int] = frozenset()) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt_row = lambda row: "  ".join(str(x).rjust(w) if i in right else str(x).ljust(w)  # noqa: E731
                                    for i, (x, w) in enumerate(zip(row, widths))).rstrip()
    return "\n".join([fmt_row(header), fmt_row(["-" * w for w in widths])] + [fmt_row(r) for r in rows])


def format_summary(r: Recipe) -> str:
    """The readable summary ``smolbook recipe show`` prints."""
    a, o = r.architecture, r.optimizer
    out = ["SmolLM3 recipe (transcribed from the released nanotron configs)", ""]
    out += ["Architecture  (" + a.config_file + ")",
            f"  {a.num_hidden_layers} layers, hidden {a.hidden_size}, MLP {a.intermediate_size} ({a.hidden_act}), "
            f"vocab {a.vocab_size:,}, tied embeddings: {str(a.tie_word_embeddings).lower()}",
            f"  attention: {a.num_attention_heads} heads, {a.num_key_value_heads} KV heads (GQA), "
            f"NoPE every {a.no_rope_layer}th layer, RoPE theta {a.rope_theta:,.0f}, max positions {a.max_position_embeddings:,}",
            f"  RMSNorm eps {a.rms_norm_eps:g}, init std {a.init_std}, intra-document masking: "
            f"{str(a.use_doc_masking).lower()}, {a.dtype}, tokenizer {a.tokenizer}",
            f"  parameters: {a.parameter_count():,}", ""]
    out += ["Optimizer  (" + o.config_file + ")",
            f"  {o.name} beta1 {o.adam_beta1} beta2 {o.adam_beta2} eps {o.adam_eps:g}, weight decay {o.weight_decay} "
            f"(not on {', '.join(o.weight_decay_exclude_named_params)}), grad clip {o.clip_grad}", ""]
    out += ["Runs"]
    for name, run in r.runs.items():
        out += [f"  {name:<12} {run.config_file}",
                f"  {'':<12} seq {run.sequence_length:,}, RoPE theta {run.rope_theta:,.0f}, "
                f"{run.tokens_per_step:,} tokens/step, {run.gpus} GPUs, {human_tokens(run.tokens)} tokens",
                f"  {'':<12} {run.schedule.describe()}"]
    out += ["", "Stages  (shares normalised by each stage's weight sum; 'other' = general reasoning data)"]
    rows = []
    for s in r.stages:
        b, c = s.bucket_shares(), s.category_shares()
        rows.append([s.name, s.config_file, f"{s.start_step:,}-{s.end_step:,}",
                     f"{human_tokens(s.start_tokens)}-{human_tokens(s.end_tokens)}", human_tokens(s.tokens),
                     str(len(s.datasets)), f"{s.weight_sum:.5g}", pct(b["web"]), pct(c["multilingual-web"]),
                     pct(b["code"]), pct(b["math"]), pct(b["other"])])
    out.append(_table(rows, ["stage", "config", "steps", "tokens", "length", "sets", "w-sum", "web", "(multil.)",
                             "code", "math", "other"], right={4, 5, 6, 7, 8, 9, 10, 11}))
    ds = r.all_datasets()
    by_src = {k: sum(d.hub_id_source == k for d in ds.values()) for k in HUB_ID_SOURCES}
    out += ["", f"Datasets: {len(ds)} distinct names over {len(r.stages)} stages; hub ids: "
            + ", ".join(f"{v} {k}" for k, v in by_src.items()),
            "Mixture of a stage: smolbook recipe mixture --stage NAME [--json];  blog vs configs: smolbook recipe ledger"]
    return "\n".join(out)


def _cmd_show(args: argparse.Namespace) -> int:
    print(format_summary(load_recipe()))
    return 0


def _cmd_mixture(args: argparse.Namespace) -> int:
    stage = load_recipe().stage(args.stage)
    rows = mixture_rows(stage)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    probs = stage.probabilities()
    table = [[d["name"], f"{d['weight']:g}", f"{100 * probs[d['name']]:.2f}%", d["category"],
              d["hub_id"] or "(unknown)", d["subset"] or "", d["hub_id_source"]] for d in rows]
    print(f"Stage '{stage.name}' ({stage.config_file}, '{stage.config_name}'): {len(rows)} datasets, "
          f"weights sum to {stage.weight_sum:.6g}; 'p' is the weight normalised by that sum")
    print(_table(table, ["name", "weight", "p", "category", "hub_id", "subset", "source"], right={1, 2}))
    return 0


def _cmd_ledger(args: argparse.Namespace) -> int:
    rows = ledger()
    if args.json:
        print(json.dumps([asdict(x) for x in rows], indent=1))
        return 0
    mark = {True: "agrees", False: "DIFFERS", None: "-"}
    cut = lambda text, n: text if len(text) <= n else text[:n - 1] + "~"  # noqa: E731
    print(_table([[x.kind, cut(x.topic, 44), cut(x.blog, 10), cut(x.config, 60), mark[x.agrees]] for x in rows],
                 ["kind", "topic", "blog", "config", "verdict"]))
    print("(full rows with the blog's wording, tolerances and config files: smolbook recipe ledger --json)")
    return 0


def _cmd_post_training(args: argparse.Namespace) -> int:
    pt = load_post_training()
    if args.json:
        print(json.dumps(pt.to_json(), indent=1))
        return 0
    for name, sec in pt.sections.items():
        print(f"{name}")
        for key, f in sec.facts.items():
            value = "(not stated)" if f.value is None else f.value
            print(f"  {key:<26} {value!s:<48} {f.source}" + (f"  [{f.note}]" if f.note else ""))
        for d in sec.datasets:
            print(f"  dataset  {d.name}: {d.hub_id}{' / ' + d.subset if d.subset else ''} ({d.role})")
    print("(as JSON: smolbook recipe post-training --json)")
    return 0


def register_cli(subparsers: Any) -> None:
    """``smolbook recipe show | mixture --stage S [--json] | ledger [--json] | post-training [--json]``."""
    p = subparsers.add_parser("recipe", help="the SmolLM3 recipe as data (transcribed from the released configs)")
    sub = p.add_subparsers(dest="recipe_command", required=True)
    show = sub.add_parser("show", help="a readable summary: architecture, optimizer, schedules, stages")
    show.set_defaults(func=_cmd_show)
    mix = sub.add_parser("mixture", help="the datasets and weights of one stage")
    mix.add_argument("--stage", required=True, help="stable, stable-2, decay, lc-32k or lc-64k")
    mix.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    mix.set_defaults(func=_cmd_mixture)
    led = sub.add_parser("ledger", help="where the SmolLM3 blog and the released configs agree or differ")
    led.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    led.set_defaults(func=_cmd_ledger)
    post = sub.add_parser("post-training", help="mid-training, SFT, APO, merging and inference settings, with sources")
    post.add_argument("--json", action="store_true", help="print one JSON object (mid_training, sft, apo, merge, inference)")
    post.set_defaults(func=_cmd_post_training)
