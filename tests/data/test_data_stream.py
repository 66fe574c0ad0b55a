"""Mixture sampler, PretrainStream (shares, stage switch, exact resume), packing with a real
SmolLM3 (intra-document masking), and the hub loader on a local dataset."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from smolbook.data import PretrainStream, SourceSpec, TokenDocs, pack_documents, positions_for
from smolbook.data.mixture import default_boundaries
from smolbook.data.packing import ATTN_IMPLEMENTATION, block_causal_mask
from smolbook.data.sources import HubTokenSource, as_text, open_hub_dataset
from smolbook.errors import SmolbookError
from smolbook.recipe import CATEGORIES, load_recipe
from smolbook.scales import get_scale

EOS = 1
ID_RANGE = 100  # category i owns token ids [2 + 100 i, 2 + 100 (i + 1)): rows reveal where they came from


def _fake_data(scale="tiny", n_docs=300, seed=0):
    """A prepared-data stand-in whose domains use disjoint token ids, with long-tailed lengths."""
    rng = np.random.default_rng(seed)
    tokens = {}
    for i, cat in enumerate(CATEGORIES):
        lens = np.clip(rng.lognormal(np.log(60), 1.0, n_docs).astype(int), 2, 2000)
        docs = [np.append(rng.integers(2 + ID_RANGE * i, 2 + ID_RANGE * (i + 1), n - 1), EOS) for n in lens]
        offsets = np.concatenate([[0], np.cumsum(lens)])
        tokens[cat] = TokenDocs(np.concatenate(docs).astype(np.int32), offsets)
    return SimpleNamespace(scale=get_scale(scale), tokens={"train": tokens})


def _category_of(ids: torch.Tensor) -> np.ndarray:
    ids = ids.numpy()
    return np.where(ids == EOS, -1, (ids - 2) // ID_RANGE)


def test_token_shares_match_the_stage_mixture_within_one_point():
    data = _fake_data()
    stage = load_recipe().stage("decay")
    stream = PretrainStream(data, stages=["decay"], token_budget=262_144, seq_len=128, batch_size=16)
    counts = np.zeros(len(CATEGORIES))
    for batch in stream:
        cat = _category_of(batch["input_ids"])
        counts += np.bincount(cat[cat >= 0], minlength=len(CATEGORIES))
    assert stream.tokens_seen >= 200_000
    shares = counts / counts.sum()
    target = stage.category_shares()
    for i, c in enumerate(CATEGORIES):
        assert abs(shares[i] - target.get(c, 0.0)) <= 0.01, (c, shares[i], target.get(c))
    assert stream.weight_sums()["decay"] == pytest.approx(stage.weight_sum)


def test_stage_switches_at_the_token_boundary():
    data = _fake_data()
    budget, T, B = 111_000, 64, 8
    stream = PretrainStream(data, token_budget=budget, seq_len=T, batch_size=B)
    bounds = default_boundaries(["stable", "stable-2", "decay"], budget, T * B)
    steps = budget // (T * B)
    # the configs' shares of whole steps: stable-2 from step 3,450,001 and decay from 4,198,001 of 4,720,000
    assert bounds == stream.boundaries and bounds["stable"] == (0, round(steps * 3_450_000 / 4_720_000) * T * B)
    assert bounds["decay"][0] == round(steps * 4_198_000 / 4_720_000) * T * B
    reasoning = CATEGORIES.index("reasoning")  # weight 0 before the decay stage
    first_reasoning_token, seen_stages = None, []
    for batch in stream:
        seen_stages.append(stream.stage)
        rows = _category_of(batch["input_ids"])
        for r in range(B):
            start = stream.tokens_seen - (B - r) * T
            if (rows[r] == reasoning).any() and first_reasoning_token is None:
                first_reasoning_token = start
    assert seen_stages[0] == "stable" and seen_stages[-1] == "decay"
    assert first_reasoning_token is not None and first_reasoning_token >= bounds["decay"][0]
    assert first_reasoning_token < bounds["decay"][1]
    for s, (a, b) in bounds.items():
        served = sum(stream.tokens_by(s).values())
        assert abs(served - (min(b, stream.tokens_seen) - a)) <= T


def test_resume_yields_exactly_the_batches_the_original_would_have():
    data = _fake_data()
    kw = dict(token_budget=60_000, seq_len=64, batch_size=4, seed=3)
    ref = list(PretrainStream(data, **kw))
    for k in (1, 50, 170):  # 170 is past the first stage boundary
        s = PretrainStream(data, **kw)
        for _ in range(k):
            next(s)
        state = json.loads(json.dumps(s.state_dict()))  # survives a checkpoint file
        resumed = PretrainStream(data, **kw)
        resumed.load_state_dict(state)
        rest = list(resumed)
        assert len(rest) == len(ref) - k
        for a, b in zip(rest, ref[k:]):
            assert all(torch.equal(a[key], b[key]) for key in ("input_ids", "position_ids", "labels"))
    other = PretrainStream(data, **{**kw, "seed": 4})
    with pytest.raises(SmolbookError, match="does not match"):
        other.load_state_dict(state)
    assert not torch.equal(next(iter(PretrainStream(data, **{**kw, "seed": 4})))["input_ids"], ref[0]["input_ids"])


def test_positions_restart_at_every_document_only_with_doc_masking():
    data = _fake_data()
    on = next(PretrainStream(data, stages=["stable"], token_budget=4096, seq_len=256, batch_size=4))
    off = next(PretrainStream(data, stages=["stable"], token_budget=4096, seq_len=256, batch_size=4, doc_masking=False))
    assert torch.equal(on["input_ids"], off["input_ids"]) and torch.equal(on["labels"], on["input_ids"])
    ids, pos = on["input_ids"], on["position_ids"]
    after_eos = torch.zeros_like(ids, dtype=torch.bool)
    after_eos[:, 1:] = ids[:, :-1] == EOS
    after_eos[:, 0] = True
    assert torch.equal(pos == 0, after_eos)
    assert (pos == 0).sum() > ids.shape[0]  # rows really hold several documents
    assert torch.equal(off["position_ids"], torch.arange(256).expand(4, -1))


def test_block_causal_mask_is_block_diagonal():
    pos = torch.from_numpy(positions_for([0, 3, 5], 8))
    m = block_causal_mask(pos)
    assert m[4, 3] and not m[4, 2] and not m[5, 4] and m[7, 5] and not m[2, 3]


def _tiny_smollm3(impl: str, vocab: int):
    from transformers import SmolLM3Config, SmolLM3ForCausalLM

    torch.manual_seed(0)
    cfg = SmolLM3Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
                        intermediate_size=64, vocab_size=vocab, attn_implementation=impl,
                        pad_token_id=2, bos_token_id=0, eos_token_id=1)
    return SmolLM3ForCausalLM(cfg).eval().float()


@pytest.mark.parametrize("impl", ["sdpa", "eager"])
def test_packed_document_logits_equal_its_logits_alone_with_masking(impl):
    vocab = get_scale("tiny").model.vocab_size
    model = _tiny_smollm3(impl, vocab)
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randint(3, vocab, (n,), generator=g).tolist() for n in (23, 31, 10))
    with torch.no_grad():
        alone = model(input_ids=torch.tensor([b]), use_cache=False).logits[0]
        diffs = {}
        for masking in (True, False):
            batch = pack_documents([a, b, c], seq_len=64, doc_masking=masking)
            logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
            diffs[masking] = (logits[0, 23:54] - alone).abs().max().item()
    assert diffs[True] <= 1e-5
    assert diffs[False] > 1e-3  # without reset positions the document attends to its predecessor


def test_the_library_uses_an_attention_that_honours_packing():
    assert ATTN_IMPLEMENTATION in ("sdpa", "eager")


def test_pack_documents_pads_the_last_row_with_ignored_labels():
    batch = pack_documents([[5, 6, 1], [7, 1]], seq_len=4)
    assert batch["input_ids"].tolist() == [[5, 6, 1, 7], [1, 0, 0, 0]]
    assert batch["labels"][1].tolist() == [1, -100, -100, -100]
    assert batch["position_ids"].tolist()[0] == [0, 1, 2, 0]


# -- the hub code path, on a local dataset folder ---------------------------------------------------
@pytest.fixture()
def local_hub(tmp_path):
    import datasets

    rows = [{"body": f"document number {i} " + "word " * (i % 7), "n": i} for i in range(40)]
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "train.parquet"))
    return tmp_path


@pytest.fixture(scope="module")
def byte_tokenizer():
    from smolbook.chat import template_tokenizer

    return template_tokenizer()


def test_hub_loader_streams_a_local_dataset_and_resumes_exactly(local_hub, byte_tokenizer):
    spec = SourceSpec("local", 1.0, "web", hub_id=str(local_hub), text_field="body")
    first = next(iter(open_hub_dataset(spec)))
    assert first["body"].startswith("document number 0")
    src = HubTokenSource(spec, byte_tokenizer, byte_tokenizer.eos_token_id)
    src.take(37)
    state = json.loads(json.dumps(src.state_dict()))
    expected = [src.take(50) for _ in range(30)]  # runs past the end: a second epoch
    again = HubTokenSource(spec, byte_tokenizer, byte_tokenizer.eos_token_id)
    again.load_state_dict(state)
    for ids, starts in expected:
        got_ids, got_starts = again.take(50)
        assert np.array_equal(got_ids, ids) and got_starts == starts


def test_pretrain_stream_reads_hub_sources_at_online_scales(local_hub, byte_tokenizer):
    data = SimpleNamespace(scale=get_scale("small"), tokenizer=byte_tokenizer)
    mix = {"stable": [SourceSpec("local", 1.0, "web", hub_id=str(local_hub), text_field="body")]}
    stream = PretrainStream(data, stages=["stable"], token_budget=4 * 64 * 6, seq_len=64, batch_size=4, mixtures=mix)
    batches = list(stream)
    assert len(batches) == 6
    text = byte_tokenizer.decode(batches[0]["input_ids"][0])
    assert text.startswith("document number 0")


def test_missing_text_column_is_a_clear_error(local_hub):
    with pytest.raises(SmolbookError, match="no column 'text'.*body"):
        open_hub_dataset(SourceSpec("local", 1.0, "web", hub_id=str(local_hub)))


def test_unreachable_hub_names_the_dataset_and_the_offline_scales(monkeypatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    entry = load_recipe().stage("stable").datasets[0]
    with pytest.raises(SmolbookError) as err:
        open_hub_dataset(SourceSpec.from_entry(entry))
    msg = str(err.value)
    assert entry.name in msg and entry.hub_id in msg and "tiny" in msg and "smoke" in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_conversations_become_text(byte_tokenizer):
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert "<|im_start|>user" in as_text(msgs, byte_tokenizer)
    assert as_text(msgs) == "hi\nhello" and as_text("plain") == "plain"


def test_online_prepare_without_the_hub_is_a_clear_error(monkeypatch, tmp_path):
    import datasets
    import huggingface_hub.constants

    from smolbook.data import prepare

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SmolbookError, match=r"HuggingFaceTB/SmolLM3-3B.*offline scales \(smoke, tiny, gpu\)"):
        prepare("small", tmp_path)


def test_every_recipe_dataset_has_a_loader_at_both_kinds_of_scale(local_hub):
    from smolbook.data import dataset_texts

    entries = load_recipe().all_datasets().values()
    offline = SimpleNamespace(scale=get_scale("tiny"), train={c: {"text": [f"{c} doc"]} for c in CATEGORIES})
    for e in entries:
        assert next(dataset_texts(e, offline)) == f"{e.category} doc"
    online = SimpleNamespace(scale=get_scale("small"))
    spec = SourceSpec("local", 1.0, "web", hub_id=str(local_hub), text_field="body")
    assert next(dataset_texts(spec, online)).startswith("document number 0")


def test_upsampling_long_documents_draws_them_factor_times_and_resumes_exactly():
    from smolbook.data.mixture import OfflineTokenSource

    docs = _fake_data(n_docs=200).tokens["train"]["web"]
    long = set(np.flatnonzero(docs.lengths >= 200).tolist())
    assert 0 < len(long) < len(docs)
    plain, up = OfflineTokenSource(docs, 0, "web"), OfflineTokenSource(docs, 0, "web", upsample_long=(200, 3))
    assert len(plain._order) == len(docs) and len(up._order) == len(docs) + 2 * len(long)
    drawn = np.bincount(up._order, minlength=len(docs))
    assert all(drawn[i] == (3 if i in long else 1) for i in range(len(docs)))
    data = _fake_data()
    kw = dict(stages=["lc-32k"], token_budget=64 * 512, seq_len=512, batch_size=4, upsample_long=(256, 4))
    a = PretrainStream(data, **kw)
    first = [next(a) for _ in range(3)]
    b = PretrainStream(data, **kw)
    for _ in range(2):
        next(b)
    c = PretrainStream(data, **kw)
    c.load_state_dict(b.state_dict())
    assert torch.equal(next(c)["input_ids"], first[2]["input_ids"])
    with pytest.raises(SmolbookError, match="does not match"):
        PretrainStream(data, **{**kw, "upsample_long": None}).load_state_dict(b.state_dict())
