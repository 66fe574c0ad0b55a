"""The recipe transcription against the released nanotron configs, its validation, the ledger and
the ``smolbook recipe`` commands. Only these tests read ../shared (the library never does)."""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from smolbook import cli
from smolbook.errors import SmolbookError
from smolbook.recipe import (CATEGORIES, RECIPE_FILE, format_summary, ledger, load_recipe, load_recipe_file)

REF = Path(__file__).resolve().parents[3] / "shared" / "reference" / "smollm3-nanotron-configs"
# Each stage and every config file that carries a copy of it (file, index in data_stages).
STAGE_SOURCES = {
    "stable": [("stage1_8T.yaml", 0), ("stage2_8T_9T.yaml", 0), ("stage3_9T_11T.yaml", 0)],
    "stable-2": [("stage2_8T_9T.yaml", 1), ("stage3_9T_11T.yaml", 1)],
    "decay": [("stage3_9T_11T.yaml", 2)],
    "lc-32k": [("long_context_4k_to_32k.yaml", 0)],
    "lc-64k": [("long_context_32k_to_64.yaml", 0)],
}
RUN_FILES = {"pretraining": ["stage1_8T.yaml", "stage2_8T_9T.yaml", "stage3_9T_11T.yaml"],
             "lc-32k": ["long_context_4k_to_32k.yaml"], "lc-64k": ["long_context_32k_to_64.yaml"]}
needs_ref = pytest.mark.skipif(not REF.is_dir(), reason=f"reference configs not found at {REF}")


def ref(name: str) -> dict:
    return yaml.safe_load((REF / name).read_text())


def ref_stage(name: str, index: int) -> tuple[list[str], list[float], dict]:
    st = ref(name)["data_stages"][index]
    d = st["data"]["dataset"]
    names = [p.rstrip("/").split("/")[-1] for p in d["dataset_read_path"]]
    return names, d["dataset_weights"], st


# ----------------------------------------------------------------------------- transcription
@needs_ref
@pytest.mark.parametrize("stage", list(STAGE_SOURCES))
def test_every_stage_matches_every_config_copy(stage):
    s = load_recipe().stage(stage)
    for fname, index in STAGE_SOURCES[stage]:
        names, weights, raw = ref_stage(fname, index)
        assert [d.name for d in s.datasets] == names, fname
        assert [d.weight for d in s.datasets] == weights, fname   # exactly as released
        assert s.config_name == raw["name"] and s.start_step == raw["start_training_step"], fname
    assert s.config_file == STAGE_SOURCES[stage][0][0]   # the file that introduces the stage


@needs_ref
def test_weight_sums_are_kept_as_released():
    r = load_recipe()
    for stage, sources in STAGE_SOURCES.items():
        _, weights, _ = ref_stage(*sources[0])
        assert r.stage(stage).weight_sum == pytest.approx(math.fsum(weights), abs=1e-12)
    # The decay stage's released weights do not sum to 1: kept, and normalised when sampling.
    decay = r.stage("decay")
    assert len(decay.datasets) == 56
    assert decay.weight_sum == pytest.approx(1.00565, abs=1e-9)
    assert sum(decay.probabilities().values()) == pytest.approx(1.0)
    assert r.stage("stable").weight_sum == pytest.approx(1.0)


@needs_ref
@pytest.mark.parametrize("run", list(RUN_FILES))
def test_architecture_optimizer_schedule_batch_match(run):
    r = load_recipe()
    a, o, rr = r.architecture, r.optimizer, r.runs[run]
    for fname in RUN_FILES[run]:
        c = ref(fname)
        m = c["model"]["model_config"]
        for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size",
                  "vocab_size", "tie_word_embeddings", "no_rope_layer", "rms_norm_eps", "hidden_act", "attention_bias"):
            assert getattr(a, k) == m[k], (fname, k)
        assert a.use_doc_masking == m["_use_doc_masking"] and a.z_loss_enabled == m["z_loss_enabled"]
        assert a.init_std == c["model"]["init_method"]["std"] and a.dtype == c["model"]["dtype"]
        assert rr.rope_theta == m["rope_theta"] and rr.sequence_length == c["tokens"]["sequence_length"]
        if run == "pretraining":
            assert a.rope_theta == m["rope_theta"] and a.max_position_embeddings == m["max_position_embeddings"]
            assert a.tokenizer == c["tokenizer"]["tokenizer_name_or_path"]
        else:
            assert m["max_position_embeddings"] == rr.sequence_length
        opt = c["optimizer"]
        f = opt["optimizer_factory"]
        assert (o.name, o.adam_beta1, o.adam_beta2, o.adam_eps) == (f["name"], f["adam_beta1"], f["adam_beta2"],
                                                                  f["adam_eps"])
        assert o.weight_decay == opt["weight_decay"] and o.clip_grad == opt["clip_grad"]
        assert list(o.weight_decay_exclude_named_params) == opt["weight_decay_exclude_named_params"]
        lrs = opt["learning_rate_scheduler"]
        sch = rr.schedule
        assert (sch.learning_rate, sch.lr_warmup_steps, sch.lr_warmup_style, sch.lr_decay_starting_step,
                sch.lr_decay_steps, sch.lr_decay_style, sch.min_decay_lr) == (
            lrs["learning_rate"], lrs["lr_warmup_steps"], lrs["lr_warmup_style"], lrs["lr_decay_starting_step"],
            lrs["lr_decay_steps"], lrs["lr_decay_style"], lrs["min_decay_lr"])
        t, p = c["tokens"], c["parallelism"]
        assert sch.train_steps == t["train_steps"]
        assert (rr.micro_batch_size, rr.batch_accumulation_per_replica) == (t["micro_batch_size"],
                                                                           t["batch_accumulation_per_replica"])
        assert (rr.dp, rr.tp, rr.pp, rr.context_parallel_size) == (p["dp"], p["tp"], p["pp"], p["context_parallel_size"])
        assert rr.load_optimizer == c["checkpoints"]["load_optimizer"]


@needs_ref
def test_hub_ids_named_in_config_comments_are_recorded():
    """stage1_8T.yaml names each dataset's hub page in a comment: the transcription records it, except
    the fw2-fra comment, which links hun_Latn (kept as a quirk, French recorded)."""
    stage = load_recipe().stage("stable")
    seen = 0
    for line in (REF / "stage1_8T.yaml").read_text().splitlines():
        m = re.match(r"\s*- /scratch\S*/([^/\s]+)\s*#\s*https://huggingface.co/datasets/([^/\s]+/[^/\s]+)(?:/viewer/(\S+))?",
                     line)
        if not m:
            continue
        seen += 1
        d = stage.dataset(m.group(1))
        assert d.hub_id == m.group(2) and d.hub_id_source == "config-comment", d.name
        if d.name == "fw2-fra":
            assert (m.group(3), d.subset, d.config_comment_subset) == ("hun_Latn", "fra_Latn", "hun_Latn")
        elif m.group(3):
            assert d.subset == m.group(3), d.name
    assert seen == 41 == len(stage.datasets)


def test_every_dataset_has_hub_metadata_and_a_category():
    r = load_recipe()
    ds = r.all_datasets()
    assert len(ds) == len({d.name for s in r.stages for d in s.datasets})
    for d in ds.values():
        assert d.category in CATEGORIES
        assert d.hub_id_source in ("config-comment", "inferred", "unknown")
        assert (d.hub_id is None) == (d.hub_id_source == "unknown")
        assert d.text_field
    assert ds["finemath-4plus"].hub_id == "HuggingFaceTB/finemath" and ds["finemath-4plus"].hub_id_source == "inferred"
    assert ds["stack-edu-real-shuffled-Python"].hub_id == "HuggingFaceTB/stack-edu"
    assert ds["openmathreasoning-4k"].category == "reasoning" and ds["openmathreasoning-4k"].counts_as == "math"


def test_stage_facts_and_shares():
    r = load_recipe()
    assert r.stage_names == ["stable", "stable-2", "decay", "lc-32k", "lc-64k"]
    for s in r.stages:
        assert sum(s.category_shares().values()) == pytest.approx(1.0)
        assert sum(s.bucket_shares().values()) == pytest.approx(1.0)
    stable, decay, lc = r.stage("stable"), r.stage("decay"), r.stage("lc-32k")
    assert r.runs["pretraining"].tokens_per_step == 3 * 192 * 4096 == 2_359_296
    assert stable.start_tokens == 0 and stable.end_tokens == 3_450_000 * 2_359_296
    assert decay.end_tokens == 4_720_000 * 2_359_296 and decay.learning_rate == 2e-4
    assert lc.seq_len == 32768 and lc.rope_theta == 2e6 and lc.learning_rate == 2e-5
    assert r.stage("lc-64k").rope_theta == 5e6
    assert r.architecture.parameter_count() == 3_075_098_624


def test_unknown_stage_lists_the_valid_names():
    with pytest.raises(SmolbookError, match=r"unknown stage 'nope': choose one of stable, stable-2, decay, lc-32k, lc-64k"):
        load_recipe().stage("nope")


# ----------------------------------------------------------------------------- validation
def _broken(tmp_path, edit) -> Path:
    text = RECIPE_FILE.read_text()
    new = edit(text)
    assert new != text, "the edit did not apply"
    p = tmp_path / "recipe.yaml"
    p.write_text(new)
    return p


@pytest.mark.parametrize("edit, match", [
    (lambda t: t.replace("- [fineweb-edu, 0.333]", "- [fineweb-edu, heavy]", 1), r"fineweb-edu.*weight must be a number"),
    (lambda t: t.replace("- [dclm, 0.37]", "- [dclm-typo, 0.37]", 1), r"'dclm-typo' is not in the datasets catalog"),
    (lambda t: t.replace("category: web, text_field: text, hub_id_source: config-comment}",
                         "category: webby, text_field: text, hub_id_source: config-comment}", 1), r"category 'webby'"),
    (lambda t: t.replace("  num_key_value_heads: 4\n", "", 1), r"architecture: missing field num_key_value_heads"),
    (lambda t: t.replace("  hidden_size: 2048\n", "  hidden_size: wide\n", 1),
     r"architecture: hidden_size: should be a valid integer.*\(got 'wide'\)"),
    (lambda t: t.replace("  hidden_size: 2048\n", "  hidden_size: 2048\n  hidden_sise: 3\n", 1),
     r"architecture: unknown field hidden_sise"),
    (lambda t: t.replace("config: lc-32k.rope_theta}", "config: lc-32k.rope_thetaa}", 1), r"unknown config fact"),
    (lambda t: t.replace("run: lc-64k,", "run: lc-128k,", 1), r"run 'lc-128k' is not one of"),
    (lambda t: t.replace("stated: 11.2T,", "stated: eleven,", 1), r"stated value 'eleven' is not a number"),
    (lambda t: t + "\n  oops: [", r"cannot read it as YAML"),
])
def test_malformed_recipe_files_fail_clearly(tmp_path, edit, match):
    with pytest.raises(SmolbookError, match=match):
        load_recipe_file(_broken(tmp_path, edit))


# ----------------------------------------------------------------------------- ledger
def _row(rows, topic):
    hits = [r for r in rows if r.topic == topic]
    assert len(hits) == 1, topic
    return hits[0]


def test_ledger_finds_the_known_disagreements():
    rows = ledger()
    theta = _row(rows, "4k->32k RoPE theta")
    assert (theta.blog, theta.config, theta.config_file, theta.agrees) == ("1.5M", "2,000,000",
                                                                            "long_context_4k_to_32k.yaml", False)
    assert _row(rows, "32k->64k RoPE theta").agrees is True
    assert _row(rows, "Decay share of training").agrees is False          # 11.1% of the steps, not 10%
    assert _row(rows, "GQA key/value heads").agrees is True
    assert _row(rows, "Weights of 'decay' sum to 1").agrees is False
    assert _row(rows, "Hub link of fw2-fra").kind == "config-internal"
    assert _row(rows, "Long-context schedule (4k->32k)").kind == "config-only"
    assert "cosine" in _row(rows, "Long-context schedule (4k->32k)").config
    assert _row(rows, "Training time").agrees is None
    for r in rows:
        assert r.topic and r.config and r.config_file and r.kind
        assert (r.agrees is None) == (r.kind in ("blog-only", "config-only"))


def test_ledger_rows_are_computed_not_typed(tmp_path):
    """Change what the blog says (or what the config holds) and the verdict follows."""
    r = load_recipe_file(_broken(tmp_path, lambda t: t.replace("stated: 1.5M,", "stated: 2M,", 1)))
    assert _row(ledger(r), "4k->32k RoPE theta").agrees is True
    r = load_recipe_file(_broken(tmp_path, lambda t: t.replace("    rope_theta: 5000000.0", "    rope_theta: 8000000.0", 1)))
    assert _row(ledger(r), "32k->64k RoPE theta").agrees is False
    r = load_recipe_file(_broken(tmp_path, lambda t: t.replace("- [dclm, 0.3]", "- [dclm, 0.29435]", 1)))
    assert _row(ledger(r), "Weights of 'decay' sum to 1").agrees is True


# ----------------------------------------------------------------------------- CLI
def _smolbook() -> str:
    exe = Path(sys.executable).with_name("smolbook")
    found = str(exe) if exe.exists() else shutil.which("smolbook")
    assert found, "the smolbook console script is not installed (pip install -e .)"
    return found


@needs_ref
@pytest.mark.slow
def test_cli_mixture_json_lists_the_decay_stage():
    out = subprocess.run([_smolbook(), "recipe", "mixture", "--stage", "decay", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    names, weights, _ = ref_stage("stage3_9T_11T.yaml", 2)
    assert len(rows) == 56
    assert [x["name"] for x in rows] == names and [x["weight"] for x in rows] == weights
    assert all({"name", "weight", "hub_id", "category"} <= set(x) for x in rows)
    assert rows[names.index("fw2-fra")]["hub_id"] == "epfml/FineWeb2-HQ"


def test_cli_unknown_stage_is_one_line_exit_2(capsys):
    assert cli.main(["recipe", "mixture", "--stage", "stage9"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown stage 'stage9'" in err and "lc-64k" in err


def test_cli_show_mixture_and_ledger_tables(capsys):
    assert cli.main(["recipe", "show"]) == 0
    out = capsys.readouterr().out
    for section in ("Architecture", "Optimizer", "Runs", "Stages", "Datasets:"):
        assert section in out
    assert "3,075,098,624" in out and "decay" in out
    assert cli.main(["recipe", "mixture", "--stage", "lc-64k"]) == 0
    out = capsys.readouterr().out
    assert "code_sft_tulu_nemotron_180k" in out and "57 datasets" in out
    assert cli.main(["recipe", "ledger", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(r["topic"] == "4k->32k RoPE theta" and r["agrees"] is False for r in rows)
    assert format_summary(load_recipe()).count("\n") < 60   # fits a terminal page or two


def test_post_training_recipe_prints_the_published_numbers():
    import subprocess
    import sys
    from pathlib import Path

    smolbook = str(Path(sys.executable).with_name("smolbook"))
    r = subprocess.run([smolbook, "recipe", "post-training", "--json"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    pt = json.loads(r.stdout)
    assert list(pt) == ["mid_training", "sft", "apo", "merge", "inference"]
    mid, sft, apo, merge, inf = (pt[k] for k in pt)
    assert (mid["tokens_per_epoch"], mid["epochs"], mid["tokens"]) == (35e9, 4, 140e9)
    assert (mid["format"], mid["packing"]) == ("chatml", "wrapped")
    hub = {d["hub_id"] for d in mid["datasets"]}
    assert {"open-thoughts/OpenThoughts3-1.2M", "nvidia/Llama-Nemotron-Post-Training-Dataset"} <= hub
    assert (sft["tokens"], sft["non_reasoning_tokens"], sft["reasoning_tokens"], sft["epochs"]) == (1.8e9, 1e9, 0.8e9, 4)
    assert sft["non_reasoning_tokens"] + sft["reasoning_tokens"] == sft["tokens"]
    assert (sft["packing"], sft["loss"], sft["teacher"]) == ("bfd", "assistant_only", "Qwen/Qwen3-32B")
    assert apo["no_think_pairs"] == "allenai/llama-3.1-tulu-3-8b-preference-mixture"
    assert (apo["think_chosen"], apo["think_rejected"]) == ("Qwen/Qwen3-32B", "Qwen/Qwen3-0.6B")
    assert apo["max_tokens"] == 24000 and apo["loss_variant"] is None and apo["default_loss_type"] == "apo_zero"
    assert (merge["soup_weight"], merge["mid_training_weight"], merge["method"]) == (0.9, 0.1, "linear")
    assert (inf["temperature"], inf["top_p"], inf["yarn_factor"]) == (0.6, 0.95, 2.0)
    assert inf["original_max_position_embeddings"] * inf["yarn_factor"] == inf["max_position_embeddings"] == 131072
    for section in pt.values():
        assert all({"name", "hub_id", "role"} <= set(d) for d in section["datasets"])
        assert all(section["sources"].values())  # every fact names its source


def test_post_training_file_errors_name_the_entry(tmp_path):
    import yaml

    from smolbook.recipe import RecipeError
    from smolbook.recipe.post_training import POST_TRAINING_FILE, load_post_training_file

    raw = yaml.safe_load(POST_TRAINING_FILE.read_text())
    raw["sft"]["facts"]["epochs"].pop("source")
    bad = tmp_path / "post.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(RecipeError, match="sft.facts.epochs: missing field source"):
        load_post_training_file(bad)
    raw = yaml.safe_load(POST_TRAINING_FILE.read_text())
    raw["apo"]["facts"]["max_tokens"] = {"value": None, "stated": "?", "source": "blog"}
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(RecipeError, match="needs a note"):
        load_post_training_file(bad)
