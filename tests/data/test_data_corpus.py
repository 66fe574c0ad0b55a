"""The offline corpus, its held-out evaluations, the tokenizer and the prepare() cache."""
from __future__ import annotations

import json
import re

import pytest

from smolbook.data import DOMAINS, EVAL_TASKS, generate_corpus, longdocs, prepare
from smolbook.data.problems import Arithmetic
from smolbook.data.programs import run_program, training_programs
from smolbook.data.tokenizer import ALL_RESERVED, BOS, EOS, PAD
from smolbook.scales import get_scale


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(120, 30, seed=0)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return prepare("smoke", tmp_path_factory.mktemp("run"), seed=0, progress=False)


def test_deterministic_from_seed():
    a, b, c = generate_corpus(20, 6, seed=1), generate_corpus(20, 6, seed=1), generate_corpus(20, 6, seed=2)
    assert a.train == b.train and a.evals == b.evals and a.valid == b.valid
    assert a.train["web"] != c.train["web"]


def test_every_domain_and_task_is_sized_by_the_arguments(corpus):
    assert set(corpus.train) == set(DOMAINS) == set(corpus.valid)
    extra = {d: longdocs.n_long(120) if d in longdocs.LONG_DOMAINS else 0 for d in DOMAINS}
    assert all(len(corpus.train[d]) == 120 + extra[d] and len(corpus.valid[d]) > 0 for d in DOMAINS)
    assert set(corpus.evals) == set(EVAL_TASKS) and all(len(corpus.evals[t]) == 30 for t in EVAL_TASKS)


def test_world_facts_are_consistent_across_documents(corpus):
    born: dict[str, set] = {}
    for doc in corpus.train["web"]:
        for name, city, year in re.findall(r"([A-Z][a-z]+ [A-Z][a-z]+) was born in (\w+) in (\d{4})\.", doc["text"]):
            born.setdefault(name, set()).add((city, year))
    assert len(born) > 20
    assert all(len(v) == 1 for v in born.values()), {k: v for k, v in born.items() if len(v) > 1}


def test_facts_are_restated_within_documents(corpus):
    # Copying at a distance is what the tiny model can learn: most person documents restate a fact.
    person = [d["text"] for d in corpus.train["web"] if d["kind"] == "person"]
    restated = [t for t in person if any(t.count(s.strip()) >= 2 for s in re.split(r"(?<=\.) ", t.split("\n\n", 1)[1])[:3])]
    assert len(restated) / len(person) > 0.8


def test_heldout_people_never_appear_in_training(corpus):
    train_text = "\n".join(d["text"] for d in corpus.train["web"] + corpus.train["multilingual-web"])
    assert corpus.world.heldout_people
    for p in corpus.world.heldout_people:
        assert p.name not in train_text


def test_cloze_rows_are_answerable_in_context(corpus):
    for row in corpus.evals["cloze"]:
        assert len(row["choices"]) == 4 and len(set(row["choices"])) == 4
        assert row["choices"][row["label"]] == row["answer"]
        body = row["prompt"].rsplit("In summary,", 1)[0]
        assert row["answer"].strip() in body  # the fact is stated earlier in the prompt


def test_arithmetic_eval_is_correct_and_unseen(corpus):
    ar = Arithmetic(0)
    train_text = "\n".join(d["text"] for dom in ("math", "reasoning", "code") for d in corpus.train[dom])
    for row in corpus.evals["arithmetic"]:
        a, op, b = re.search(r"What is (\d+) ([-+*]) (\d+)\?", row["prompt"]).groups()
        assert int(row["answer"]) == eval(f"{a}{op}{b}")  # noqa: S307 - our own digits
        assert ar.is_heldout(int(a), op, int(b))
        assert not re.search(rf"(?<!\d){a} {re.escape(op)} {b} =", train_text)


def test_code_outputs_are_what_the_programs_print(corpus):
    seen = training_programs(corpus.train["code"])
    for row in corpus.evals["code_output"]:
        code = row["prompt"].split("```python\n", 1)[1].split("```\n", 1)[0]
        assert code not in seen
        assert run_program(code).rstrip("\n") == row["answer"]
    for doc in corpus.train["code"][:40]:
        for chunk in doc["text"].split("```python\n")[1:]:
            code, rest = chunk.split("```\nOutput:\n", 1)
            assert rest.startswith(run_program(code))


def test_reasoning_docs_think_then_answer(corpus):
    for d in corpus.train["reasoning"]:
        if d["kind"] == "long":  # a book of problems (tests/test_longcontext.py)
            continue
        assert re.fullmatch(r"Problem: .+\n<think>\n.+\n</think>\nThe answer is .+\.", d["text"], re.S)
        assert d["text"].endswith(f"The answer is {d['answer']}.")


def test_translation_rows_use_heldout_people(corpus):
    names = {p.name for p in corpus.world.heldout_people}
    for row in corpus.evals["translation"]:
        query = row["prompt"].rsplit("English: ", 1)[1]
        assert any(n in query for n in names) and row["answer"].startswith(" ")


def test_prepare_writes_datasets_tokens_and_a_loadable_tokenizer(smoke):
    from transformers import AutoTokenizer

    scale = get_scale("smoke")
    tok = AutoTokenizer.from_pretrained(smoke.tokenizer_dir)
    assert len(tok) == scale.model.vocab_size
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (BOS, EOS, PAD)
    for t in ALL_RESERVED:  # every marker is one token
        assert len(tok(t, add_special_tokens=False)["input_ids"]) == 1, t
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    text = "Problem: 3 + 4?\n<think>\n3 + 4 = 7.\n</think>\nThe answer is 7. Café naît à Kessa."
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    for d in DOMAINS:
        n_long = longdocs.n_long(scale.corpus_docs_per_domain) if d in longdocs.LONG_DOMAINS else 0
        assert smoke.train[d].column_names[0] == "text" and len(smoke.train[d]) == scale.corpus_docs_per_domain + n_long
        td = smoke.tokens["train"][d]
        assert len(td) == len(smoke.train[d])
        assert all(td.doc(i)[-1] == tok.eos_token_id for i in range(len(td)))
        assert smoke.sizes()[d]["tokens"] == td.n_tokens
    assert sum(smoke.sizes()[d]["docs_over_seq_len"] for d in DOMAINS) > 0  # a long tail past seq_len
    for t in EVAL_TASKS:
        assert {"prompt", "answer"} <= set(smoke.evals[t].column_names)
    assert "choices" in smoke.evals["cloze"].column_names


def test_prepare_reuses_a_complete_build_and_rebuilds_a_broken_one(smoke):
    again = prepare("smoke", smoke.root.parent, seed=0, progress=False)
    assert again.from_cache and again.manifest == smoke.manifest
    (smoke.root / "tokens" / "train_code.npz").write_bytes(b"corrupt")
    rebuilt = prepare("smoke", smoke.root.parent, seed=0, progress=False)
    assert not rebuilt.from_cache
    assert rebuilt.tokens["train"]["code"].n_tokens == smoke.tokens["train"]["code"].n_tokens
    manifest = json.loads((smoke.root / "manifest.json").read_text())
    manifest["fingerprint"] = "something-else"
    (smoke.root / "manifest.json").write_text(json.dumps(manifest))
    assert not prepare("smoke", smoke.root.parent, seed=0, progress=False).from_cache


def test_validation_batches_cover_the_heldout_documents(smoke):
    from smolbook.data import validation_batches

    batches = validation_batches(smoke, "math", seq_len=64, batch_size=4)
    n_real = sum(int((b["labels"] != -100).sum()) for b in batches)
    assert n_real == smoke.tokens["valid"]["math"].n_tokens
    assert all(b["input_ids"].shape[1] == 64 for b in batches)
