"""prepare() at a hub scale streams held-out documents per domain (cached under the output folder), so the
validation loss works at `small`. The hub ids point at local two-shard parquet folders (the only substitution);
the tokenizer is a local folder, loaded by the same load_tokenizer."""
from __future__ import annotations

import dataclasses
import shutil

import pytest

from smolbook.data import build
from smolbook.data.corpus import DOMAINS
from smolbook.data.sources import HubTokenSource, SourceSpec
from smolbook.errors import SmolbookError
from smolbook.scales import get_scale


def _two_shards(folder, domain: str) -> str:
    """A local dataset with the hub's file naming: two parquet shards of one train split."""
    import datasets

    folder.mkdir(parents=True)
    for k in range(2):
        rows = [{"text": f"{domain} shard {k} document {i}: " + "words and more words " * (5 + i % 4)} for i in range(40)]
        datasets.Dataset.from_list(rows).to_parquet(str(folder / f"train-0000{k}-of-00002.parquet"))
    return str(folder)


@pytest.fixture()
def online(tmp_path, monkeypatch):
    from smolbook.data.tokenizer import train_bpe

    hub = {d: _two_shards(tmp_path / "hub" / d, d) for d in DOMAINS}
    specs = {d: [dataclasses.replace(c[0], hub_id=hub[d], subset=None, text_field="text")]
             for d, c in build.heldout_specs().items()}
    monkeypatch.setattr(build, "heldout_specs", lambda: specs)  # hub id -> local folder
    train_bpe([f"{d} shard document words and more" for d in DOMAINS] * 20, 400, tmp_path / "tok")
    scale = dataclasses.replace(get_scale("small"), tokenizer=str(tmp_path / "tok"), eval_examples_per_task=0)
    return scale, specs, tmp_path


def test_recipe_gives_heldout_candidates_for_every_domain():
    specs = build.heldout_specs()
    assert set(specs) == set(DOMAINS)
    assert all(1 <= len(c) <= build.HELDOUT_CANDIDATES and all(s.hub_id for s in c) for c in specs.values())
    assert specs["web"][0].name == "dclm"  # the web dataset the stages weigh most


def test_small_gets_heldout_documents_from_a_shard_training_reads_last(online):
    scale, specs, tmp = online
    data = build.prepare(scale, tmp / "run")
    assert set(data.valid) == set(data.tokens["valid"]) == set(DOMAINS)
    for d in DOMAINS:
        texts = data.valid[d]["text"]
        assert len(texts) == len(data.tokens["valid"][d]) == 40  # the last shard holds 40 < ONLINE_VALID_DOCS
        assert all(t.startswith(f"{d} shard 1 ") for t in texts)
        assert data.manifest["heldout"][d]["shard"] == "1 of 2"
    # the training stream starts on the other shard
    src = HubTokenSource(specs["web"][0], data.tokenizer, data.tokenizer.eos_token_id)
    ids, _ = src.take(8)
    assert data.tokenizer.decode(ids).startswith("web shard 0 document 0")


def test_validation_loss_runs_at_small(online):
    from smolbook.evaluate import heldout_evaluator
    from smolbook.model import build_model, smollm3_config

    scale, _, tmp = online
    data = build.prepare(scale, tmp / "run")
    model = build_model(smollm3_config("smoke", vocab_size=len(data.tokenizer)))
    small_rows = dataclasses.replace(scale, seq_len=64, micro_batch_size=4)
    metrics = heldout_evaluator(data, small_rows, max_examples=0, max_valid_rows=4)(model)
    assert set(metrics) == {"valid_loss", *(f"valid_loss/{d}" for d in DOMAINS)}
    assert metrics["valid_loss"] > 0


def test_a_rerun_reads_the_cache_without_the_hub(online):
    scale, specs, tmp = online
    first = build.prepare(scale, tmp / "run")
    shutil.rmtree(tmp / "hub")  # the hub is gone: the held-out documents must come from the cache
    again = build.prepare(scale, tmp / "run")
    for d in DOMAINS:
        assert again.valid[d]["text"] == first.valid[d]["text"]
        assert (again.tokens["valid"][d].ids == first.tokens["valid"][d].ids).all()


def test_a_single_file_dataset_cannot_give_heldout_documents(tmp_path):
    import datasets

    datasets.Dataset.from_list([{"text": "one"}]).to_parquet(str(tmp_path / "train.parquet"))
    with pytest.raises(SmolbookError, match="single file.*no shard the training stream leaves unread"):
        build._heldout_stream(SourceSpec("one-file", 1.0, "web", hub_id=str(tmp_path)))


def test_a_dataset_without_text_passes_to_the_next_candidate_and_a_domain_without_any_is_said(online, monkeypatch):
    import datasets

    scale, specs, tmp = online
    blobs = tmp / "blobs"
    blobs.mkdir()
    for k in range(2):  # hub rows holding blob ids, as Stack-Edu's do
        datasets.Dataset.from_list([{"blob_id": f"b{k}{i}"} for i in range(4)]).to_parquet(
            str(blobs / f"train-0000{k}-of-00002.parquet"))
    no_text = dataclasses.replace(specs["code"][0], name="blob-ids", hub_id=str(blobs))
    specs["code"] = [no_text, *specs["code"]]
    specs["reasoning"] = [dataclasses.replace(no_text, category="reasoning")]
    with pytest.warns(UserWarning, match="no held-out documents for domain 'reasoning'.*no column 'text'"):
        data = build.prepare(scale, tmp / "run")
    assert data.manifest["heldout"]["code"]["dataset"] != "blob-ids"
    assert "no column 'text'" in data.manifest["heldout"]["code"]["passed_over"][0]
    assert "reasoning" not in data.valid and data.manifest["heldout"]["reasoning"]["dataset"] is None
    again = build.prepare(scale, tmp / "run")  # the cache remembers the missing domain
    assert set(again.valid) == set(DOMAINS) - {"reasoning"}


def test_an_unreachable_hub_stops_prepare_with_the_offline_scales(online, monkeypatch):
    import datasets
    import huggingface_hub.constants

    from smolbook.data.sources import SourceSpec

    scale, specs, tmp = online
    specs["web"] = [SourceSpec("dclm", 1.0, "web", hub_id="mlfoundations/dclm-baseline-1.0"), *specs["web"]]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SmolbookError, match=r"dclm.*offline scale \(smoke, tiny, gpu\)"):
        build.prepare(scale, tmp / "run")
