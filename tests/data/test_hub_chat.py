"""Post-training hub loaders on local datasets laid out as on the hub (README configs, parquet/JSONL files),
read through the same datasets.load_dataset path: rows become messages with a mode; bad rows are errors."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from smolbook.data.hub_chat import (chat_source, chat_sources, chat_text, convert_row, iter_chat_rows,
                                    open_chat_dataset, released_source)
from smolbook.errors import SmolbookError

THINK = "<think>\nLet me add: 2 + 2 = 4.\n</think>\nThe answer is 4."


def _hub_folder(root: Path, config: str | None, splits: dict[str, list[dict]], fmt: str = "parquet") -> str:
    """A local copy of a hub dataset: one file per split under data/, a README.md ``configs:`` block and the
    split sizes in ``dataset_info`` (what the hub's dataset card lists)."""
    import datasets

    root.mkdir(parents=True, exist_ok=True)
    files = []
    for split, rows in splits.items():
        rel = f"{config or 'default'}/{split}.{fmt}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        if fmt == "jsonl":
            (root / rel).write_text("".join(json.dumps(r) + "\n" for r in rows))
        else:
            datasets.Dataset.from_list(rows).to_parquet(str(root / rel))
        files.append((split, rel, len(rows)))
    name = config or "default"
    card = ["---", "configs:", f"- config_name: {name}", "  data_files:"]
    card += [f"  - split: {s}\n    path: {rel}" for s, rel, _ in files]
    card += ["dataset_info:", f"- config_name: {name}", "  splits:"]
    card += [f"  - name: {s}\n    num_examples: {n}" for s, _, n in files]
    (root / "README.md").write_text("\n".join(card + ["---", ""]))
    return str(root)


def _local(name: str, hub_dir: str):
    """The recipe's reader for ``name`` with its hub id pointed at a local folder (the only substitution)."""
    return dataclasses.replace(chat_source(name), hub_id=hub_dir)


def _sharegpt(i: int, value: str = THINK) -> dict:
    return {"conversations": [{"from": "human", "value": f"What is 2 + 2? ({i})"}, {"from": "gpt", "value": value}],
            "difficulty": 3, "source": "test"}


def test_every_recipe_post_training_dataset_has_a_reader():
    names = {s.name for s in chat_sources()}
    assert names == {"OpenThoughts3-1.2M", "Llama-Nemotron-Post-Training-Dataset-v1.1-R1", "smoltalk2-Mid",
                     "smoltalk2-SFT", "tulu-3-8b-preference-mixture", "smoltalk2-Preference"}
    assert {s.format for s in chat_sources("apo")} == {"preference"}
    assert [released_source(s).name for s in ("mid_training", "sft", "apo")] == \
        ["smoltalk2-Mid", "smoltalk2-SFT", "smoltalk2-Preference"]
    with pytest.raises(SmolbookError, match="teacher model"):
        chat_source("teacher-traces")


@pytest.mark.parametrize("streaming", [True, False])
def test_sharegpt_rows_become_messages_with_a_mode(tmp_path, streaming):
    rows = [_sharegpt(i) for i in range(6)] + [_sharegpt(6, "Four.")]
    src = _local("OpenThoughts3-1.2M", _hub_folder(tmp_path / "ot3", None, {"train": rows}))
    out = list(open_chat_dataset(src, streaming=streaming))
    assert len(out) == 7
    assert out[0]["messages"] == [{"role": "user", "content": "What is 2 + 2? (0)"},
                                  {"role": "assistant", "content": THINK}]
    assert [r["mode"] for r in out] == ["think"] * 6 + ["no_think"]
    assert out[0]["chat_template_kwargs"]["enable_thinking"] is True
    assert set(out[0]) == {"messages", "mode", "chat_template_kwargs"}


def test_nemotron_rows_take_their_mode_from_the_system_prompt_and_the_recipe_selection(tmp_path):
    def row(i, version="v1.1", reasoning="on", output=THINK):
        return {"input": [{"role": "user", "content": f"q{i}"}], "output": output + "<|eot_id|>",
                "system_prompt": f"detailed thinking {reasoning}", "reasoning": reasoning, "version": version,
                "category": "math", "license": "cc-by-4.0", "generator": "DeepSeek-R1", "used_in_training": "Ultra"}

    math = [row(0), row(1, version="v1"), row(2, reasoning="off", output="4"), row(3)]
    code = [row(10), row(11)]
    src = _local("Llama-Nemotron-Post-Training-Dataset-v1.1-R1",
                 _hub_folder(tmp_path / "nemo", "SFT", {"math": math, "code": code}, fmt="jsonl"))
    out = list(open_chat_dataset(src, split="math"))
    assert [r["messages"][0]["content"] for r in out] == ["q0", "q3"]  # v1.1, reasoning on: the recipe's rows
    assert out[0]["messages"] == [{"role": "user", "content": "q0"}, {"role": "assistant", "content": THINK}]
    assert {r["mode"] for r in out} == {"think"}
    both = list(open_chat_dataset(src))  # math and code interleaved, until the first runs out
    assert {r["messages"][0]["content"] for r in both} <= {"q0", "q3", "q10", "q11"} and len(both) >= 2


def test_smoltalk_splits_are_interleaved_and_modes_come_from_enable_thinking(tmp_path):
    def row(i, think):
        content = THINK if think else "<think>\n\n</think>\nThe answer is 4."
        return {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": f"u{i}"},
                             {"role": "assistant", "content": content}],
                "chat_template_kwargs": {"enable_thinking": think, "xml_tools": None, "python_tools": None,
                                         "custom_instructions": ""}, "source": "test"}

    src = _local("smoltalk2-SFT", _hub_folder(tmp_path / "st2", "SFT", {
        "a_think": [row(i, True) for i in range(30)], "b_no_think": [row(100 + i, False) for i in range(30)]}))
    rows = list(iter_chat_rows(src, limit=20, seed=1))
    assert len(rows) == 20 and {r["mode"] for r in rows} == {"think", "no_think"}
    for r in rows:
        assert r["messages"][0]["role"] == "user"  # the empty system prompt is the template's default one
        if r["mode"] == "no_think":  # the template writes the empty think block itself
            assert r["messages"][-1]["content"] == "The answer is 4."
            assert r["chat_template_kwargs"]["enable_thinking"] is False


def test_preference_rows_split_into_prompt_chosen_rejected(tmp_path):
    def row(i):
        prompt = [{"role": "user", "content": f"p{i}"}]
        return {"id": str(i), "prompt": f"p{i}", "source": "t",
                "chosen": prompt + [{"role": "assistant", "content": "good"}],
                "rejected": prompt + [{"role": "assistant", "content": "bad"}]}

    src = _local("tulu-3-8b-preference-mixture", _hub_folder(tmp_path / "tulu", None, {"train": [row(i) for i in range(5)]}))
    out = list(open_chat_dataset(src, streaming=True))
    assert out[2] == {"prompt": [{"role": "user", "content": "p2"}], "chosen": [{"role": "assistant", "content": "good"}],
                      "rejected": [{"role": "assistant", "content": "bad"}], "mode": "no_think",
                      "chat_template_kwargs": out[2]["chat_template_kwargs"]}
    assert out[2]["chat_template_kwargs"]["enable_thinking"] is False


BAD = {
    "missing column": ("sharegpt", {"difficulty": 1}, "missing column 'conversations'"),
    "unknown role": ("sharegpt", {"conversations": [{"from": "narrator", "value": "x"}, {"from": "gpt", "value": "y"}]},
                     "unknown speaker 'narrator'"),
    "empty content": ("sharegpt", {"conversations": [{"from": "human", "value": " "}, {"from": "gpt", "value": "y"}]},
                      "empty content"),
    "unclosed think": ("sharegpt", {"conversations": [{"from": "human", "value": "q"},
                                                      {"from": "gpt", "value": "<think>\nhmm, let me"}]}, "never closes"),
    "no answer": ("messages", {"messages": [{"role": "user", "content": "q"}]}, "ends with a user turn"),
    "mode contradiction": ("messages", {"messages": [{"role": "user", "content": "q"},
                                                     {"role": "assistant", "content": "4"}],
                                        "chat_template_kwargs": {"enable_thinking": True}}, "holds no <think>"),
    "nemotron prompt": ("nemotron", {"input": [{"role": "user", "content": "q"}], "output": "4",
                                     "system_prompt": "be brief"}, "system_prompt 'be brief'"),
    "not a message": ("messages", {"messages": ["hello", {"role": "assistant", "content": "y"}]},
                      "message 0 must be an object"),
    "prompts differ": ("preference", {"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "x"}],
                                      "rejected": [{"role": "user", "content": "b"}, {"role": "assistant", "content": "y"}]},
                       "different prompts"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_malformed_row_is_an_error_naming_the_dataset_and_row(case):
    from smolbook.data.hub_chat import ChatSource

    fmt, row, problem = BAD[case]
    src = ChatSource("some-set", "org/some-set", fmt, config="SFT")
    with pytest.raises(SmolbookError) as err:
        convert_row(src, row, 17, split="math")
    msg = str(err.value)
    assert "dataset 'some-set' (org/some-set, config SFT, split math), row 17" in msg and problem in msg


def test_early_nemotron_rows_with_llama3_formatted_input_are_read():
    from smolbook.data.hub_chat import nemotron_row

    text = ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2 + 2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n")
    row = nemotron_row({"input": text, "output": "4<|eot_id|>", "system_prompt": "detailed thinking off"})
    assert row["messages"] == [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4"}]
    assert row["mode"] == "no_think"


def test_a_malformed_row_deep_in_a_stream_stops_the_stream_with_its_hub_row_number(tmp_path):
    rows = [_sharegpt(i) for i in range(5)]
    rows[3]["conversations"][1]["value"] = "<think> never closed"
    src = _local("OpenThoughts3-1.2M", _hub_folder(tmp_path / "bad", None, {"train": rows}))
    it = iter(open_chat_dataset(src))
    assert [next(it)["mode"] for _ in range(3)] == ["think"] * 3
    with pytest.raises(SmolbookError, match=r"OpenThoughts3-1.2M.*split train\), row 3: .*never closes"):
        next(it)


def test_a_folder_that_is_not_that_format_is_a_clear_error(tmp_path):
    src = _local("smoltalk2-Mid", _hub_folder(tmp_path / "wrong", "Mid", {"x": [{"text": "hello"}]}))
    with pytest.raises(SmolbookError, match="no column 'messages'.*columns: text"):
        open_chat_dataset(src)


def test_unreachable_hub_names_the_dataset_and_the_offline_scales(monkeypatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    for src in (chat_source("smoltalk2-SFT"), chat_source("OpenThoughts3-1.2M")):
        with pytest.raises(SmolbookError) as err:
            open_chat_dataset(src)
        msg = str(err.value)
        assert src.hub_id in msg and "offline scale (smoke, tiny, gpu)" in msg
        assert err.value.__cause__ is None


def test_converted_rows_render_with_the_book_template_in_their_mode(tmp_path):
    from smolbook.chat import template_tokenizer

    src = _local("OpenThoughts3-1.2M", _hub_folder(tmp_path / "r", None, {"train": [_sharegpt(0), _sharegpt(1, "Four.")]}))
    think, no_think = iter_chat_rows(src)
    tok = template_tokenizer()
    assert "Reasoning Mode: /think" in chat_text(think, tok) and THINK in chat_text(think, tok)
    text = chat_text(no_think, tok)
    assert "Reasoning Mode: /no_think" in text and "<think>\n\n</think>\nFour." in text
