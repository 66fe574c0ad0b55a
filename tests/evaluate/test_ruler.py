"""The long-context probe: deterministic generation at exact lengths, and scoring that can tell a model
that knows the answer from one that does not (a memorising model, an induction oracle, a random model)."""
from __future__ import annotations

import random

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, SmolLM3Config, SmolLM3ForCausalLM

from smolbook.errors import SmolbookError
from smolbook.evaluate import ruler

WORDS = ("river stone garden window market yellow silver orange planet castle bridge forest winter summer "
         "number letter simple quiet bright little morning evening island coffee paper music").split()


def _texts(n: int = 60, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 40))) + f". It was {rng.randint(0, 999)}."
            for _ in range(n)]


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_texts(200, seed=1) + ["The magic number for VAR Variables equal to are 0123456789"], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, and far faster on a machine shared with other jobs."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def haystack(tokenizer) -> ruler.Haystack:
    return ruler.Haystack(tokenizer, _texts())


def _tiny_model(vocab: int, seed: int = 0) -> SmolLM3ForCausalLM:
    torch.manual_seed(seed)
    cfg = SmolLM3Config(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, no_rope_layer_interval=2,
                        no_rope_layers=[1, 0], bos_token_id=None, eos_token_id=0, pad_token_id=0,
                        attn_implementation="sdpa")
    return SmolLM3ForCausalLM(cfg)


def _contains(seq, sub) -> bool:
    seq, sub = list(seq), list(sub)
    return any(seq[i:i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


@pytest.mark.parametrize("task", ruler.TASKS)
def test_samples_have_exact_length_and_hide_their_answer(haystack, task):
    for length in (128, 256):
        samples = ruler.make_samples(haystack, task, length, n=5, seed=3)
        assert len(samples) == 5
        for s in samples:
            assert len(s.prompt_ids) == length and s.task == task and s.length == length
            assert len(s.answer_ids) >= 1
            assert haystack.tokenizer.decode(list(s.answer_ids)) == s.answer
            starts = list(s.needle_starts)
            assert starts == sorted(starts) and all(0 <= x < length for x in starts)
            if task == "variable_tracking":  # every variable name is in the prompt
                for name in s.answer.split():
                    assert _contains(s.prompt_ids, haystack.encode(f" {name}"))
            else:  # every value sits verbatim in the prompt
                for v in s.answer.replace(",", " ").split():
                    assert _contains(s.prompt_ids, haystack.encode(f" {v}"))


def test_samples_are_deterministic_from_the_seed(haystack):
    a = ruler.make_samples(haystack, "multi_key", 160, n=4, seed=7)
    assert a == ruler.make_samples(haystack, "multi_key", 160, n=4, seed=7)
    assert a != ruler.make_samples(haystack, "multi_key", 160, n=4, seed=8)
    assert len({s.answer for s in a}) > 1  # samples differ from one another


def test_bad_input_is_a_clear_error(haystack, tokenizer):
    with pytest.raises(SmolbookError, match="unknown task"):
        ruler.make_samples(haystack, "nope", 64, n=1)
    with pytest.raises(SmolbookError, match="too short"):
        ruler.make_samples(haystack, "variable_tracking", 10, n=1)
    with pytest.raises(SmolbookError, match="no filler text"):
        ruler.Haystack(tokenizer, ["", "  "])
    model = _tiny_model(len(tokenizer))
    with pytest.raises(SmolbookError, match="at least 2 samples"):
        ruler.score(model, ruler.make_samples(haystack, "single_needle", 64, n=1), generate=False)


def test_a_model_that_memorised_the_answers_scores_full_marks_and_beats_its_control(haystack, tokenizer):
    samples = ruler.make_samples(haystack, "single_needle", 80, n=4, seed=0)
    model = _tiny_model(len(tokenizer))
    before = ruler.score(model, samples, generate=False, progress=False)
    assert not before.moved  # an untrained model is at chance
    ids = torch.tensor([list(s.prompt_ids + s.answer_ids) for s in samples])
    labels = ids.clone()
    labels[:, :80] = -100  # learn the answers only: memorised in a few dozen steps
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(300):
        loss = model(input_ids=ids, labels=labels, use_cache=False).loss
        if loss.item() < 0.01:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    s = ruler.score(model, samples, batch_size=3, generate=True, progress=False)
    assert s.exact_match == 1.0 and s.forced_exact_match == 1.0 and s.token_accuracy == 1.0
    assert s.answer_loss < s.control_answer_loss
    assert s.control_token_accuracy < 0.8
    assert s.moved
    assert model.training  # scoring restores the mode it found


class InductionOracle(torch.nn.Module):
    """Predicts the token that followed the previous occurrence of the last two tokens (near-perfect copying)."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, use_cache=False, **_):
        B, T = input_ids.shape
        logits = torch.zeros(B, T, self.vocab)
        for b in range(B):
            last: dict[tuple[int, int], int] = {}
            seq = input_ids[b].tolist()
            for t in range(1, T):
                key = (seq[t - 1], seq[t])  # match on two tokens, as induction heads do with a longer prefix
                if key in last:
                    logits[b, t, seq[last[key] + 1]] = 10.0
                last[key] = t
        return type("Out", (), {"logits": logits})()


def test_copy_probe_sees_copying_on_the_repeat_only(haystack, tokenizer):
    samples = ruler.copy_samples(haystack, [0, 50, 200], passage_len=24, prefix_len=8, n=3, seed=1)
    assert len(samples) == 9
    for s in samples:
        p = s.ids[s.first_start:s.first_start + s.passage_len]
        assert s.ids[s.second_start:s.second_start + s.passage_len] == p
        assert len(s.ids) == s.second_start + s.passage_len
    rows = ruler.score_copy(InductionOracle(len(tokenizer)), samples, batch_size=2, progress=False)
    assert [r["distance"] for r in rows] == [0, 50, 200]
    for r in rows:
        assert r["repeat_accuracy"] > 0.8 > r["first_accuracy"]
        assert r["repeat_loss"] < r["first_loss"]
    assert rows[-1]["end_position"] == 8 + 24 + 200 + 24
    assert samples == ruler.copy_samples(haystack, [0, 50, 200], passage_len=24, prefix_len=8, n=3, seed=1)


def test_loss_by_position_and_run_probe_shapes(haystack, tokenizer):
    model = _tiny_model(len(tokenizer))
    out = ruler.loss_by_position(model, haystack, 100, n=3, batch_size=2, bins=10, progress=False)
    assert len(out["position"]) == len(out["loss"]) == 10
    assert out["position"] == sorted(out["position"]) and 1 <= out["position"][0] and out["position"][-1] <= 99
    rows = ruler.run_probe(model, haystack, 128, multiples=(1, 2), tasks=("single_needle", "multi_value"), n=3,
                           generate=True, progress=False)
    assert [(r["task"], r["length"], r["multiple"]) for r in rows] == [
        ("single_needle", 128, 1), ("single_needle", 256, 2), ("multi_value", 128, 1), ("multi_value", 256, 2)]
    for r in rows:
        assert 0 <= r["token_accuracy"] <= 1 and 0 <= r["exact_match"] <= 1 and r["answer_loss"] > 0
        assert r["forced_exact_match"] == r["exact_match"]  # greedy decoding = all answer tokens argmax


def test_moved_rule():
    base = dict(task="t", length=8, n=32, exact_match=None, forced_exact_match=0.0, answer_loss=1.0,
                control_answer_loss=1.0)
    assert ruler.ProbeScore(**base, token_accuracy=0.6, control_token_accuracy=0.1, accuracy_gain_se=0.05).moved
    assert not ruler.ProbeScore(**base, token_accuracy=0.13, control_token_accuracy=0.1, accuracy_gain_se=0.01).moved
    assert not ruler.ProbeScore(**base, token_accuracy=0.5, control_token_accuracy=0.1, accuracy_gain_se=0.3).moved
