"""Chat scorers on hand-written cases, right and wrong: exact match, IFEval ids (and agreement with
lighteval's IFEval checkers where they run offline), tool calls in both styles, language, format."""
from __future__ import annotations


import pytest

from smolbook.errors import SmolbookError
from smolbook.evaluate.chat import evaluate_chat
from smolbook.evaluate.scoring import (answer_matches, extract_answer, format_ok, score_completion, tool_call_matches,
                                       tool_call_valid)
from smolbook.evaluate.ifeval import CHECKERS, ifeval_check, ifeval_scores
from smolbook.evaluate.language import detect_language

IFEVAL_CASES = [  # (id, kwargs, response, followed)
    ("length_constraints:number_words", {"num_words": 5, "relation": "at least"}, "one two three four five", True),
    ("length_constraints:number_words", {"num_words": 5, "relation": "at least"}, "one two three four", False),
    ("length_constraints:number_words", {"num_words": 5, "relation": "less than"}, "one two, three-four", True),
    ("length_constraints:number_words", {"num_words": 3, "relation": "less than"}, "a b c", False),
    ("change_case:english_capital", {}, "ALDA KESSA WAS BORN IN VELORIA.", True),
    ("change_case:english_capital", {}, "ALDA KESSA was born", False),
    ("change_case:english_capital", {}, "ALDA KESSA NAQUIT À VELORIA. LA RÉPONSE EST VELORIA.", False),
    ("change_case:english_lowercase", {}, "alda kessa was born in veloria.", True),
    ("change_case:english_lowercase", {}, "Alda kessa was born in veloria.", False),
    ("detectable_format:json_format", {}, '{"name": "Alda"}', True),
    ("detectable_format:json_format", {}, '```json\n{"name": "Alda"}\n```', True),
    ("detectable_format:json_format", {}, '{"name": "Alda",}', False),
    ("detectable_format:json_format", {}, "name: Alda", False),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Done. any other questions?", True),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, '"Done. Any other questions?"', True),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Any other questions? Bye.", False),
    ("punctuation:no_comma", {}, "No commas here.", True),
    ("punctuation:no_comma", {}, "One, two.", False),
    ("keywords:existence", {"keywords": ["Veloria", "1850"]}, "born in veloria in 1850", True),
    ("keywords:existence", {"keywords": ["Veloria", "1850"]}, "born in Veloria", False),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "* one\n* two", True),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}, "- one\n* two\n* three", False),
    ("detectable_format:number_bullet_lists", {"num_bullets": 1}, "** bold line\n* one", True),
]


@pytest.mark.parametrize("iid, kwargs, response, followed", IFEVAL_CASES)
def test_ifeval_checkers(iid, kwargs, response, followed):
    assert ifeval_check(iid, kwargs, response) is followed


def _lighteval_registry(monkeypatch):
    nltk = pytest.importorskip("nltk")
    monkeypatch.setattr(nltk, "download", lambda *a, **k: False)   # its import would reach the network
    from lighteval.tasks.tasks.ifeval import instructions_registry
    return instructions_registry.INSTRUCTION_DICT


# The case checkers need langdetect, which is not installed: lighteval cannot run them offline.
OFFLINE_IDS = sorted(set(CHECKERS) - {"change_case:english_capital", "change_case:english_lowercase"})


def test_agrees_with_lighteval_where_it_runs_offline(monkeypatch):
    registry = _lighteval_registry(monkeypatch)
    checked = 0
    for iid, kwargs, response, _ in IFEVAL_CASES:
        if iid not in OFFLINE_IDS:
            continue
        checker = registry[iid](iid)
        checker.build_description(**kwargs)
        assert bool(checker.check_following(response)) == ifeval_check(iid, kwargs, response), (iid, response)
        checked += 1
    assert checked >= 15


def test_ifeval_bad_input_and_accuracies():
    with pytest.raises(SmolbookError, match="unknown IFEval instruction id"):
        ifeval_check("detectable_format:title", {}, "x")
    with pytest.raises(SmolbookError, match="relation"):
        ifeval_check("length_constraints:number_words", {"num_words": 3, "relation": "exactly"}, "x")
    with pytest.raises(SmolbookError, match="bad kwargs"):
        ifeval_check("punctuation:no_comma", {"num_words": 3}, "x")
    specs = [{"instruction_id_list": ["punctuation:no_comma", "keywords:existence"], "kwargs": [{}, {"keywords": ["a"]}]},
             {"instruction_id_list": ["punctuation:no_comma"], "kwargs": [{"keywords": None}]}]
    scores = ifeval_scores(specs, ["a, b", "b"])
    assert scores == {"prompt_level_strict_acc": 0.5, "inst_level_strict_acc": 2 / 3}


def test_exact_match():
    assert extract_answer("So 3 + 4 = 7. The answer is 7.") == "7"
    assert extract_answer("La réponse est Veloria.\nThe answer is [1, 2].") == "[1, 2]"
    assert extract_answer("It is 7.") is None
    assert answer_matches("7", "<think>\nThe answer is 8.\n</think>\nThe answer is 7.")
    assert not answer_matches("7", "<think>\nThe answer is 7.\n</think>\nThe answer is 8.")   # reasoning is not the answer
    assert not answer_matches("7", "The answer is 77.")
    assert answer_matches("Veloria", "Alda nacque a Veloria. La risposta è Veloria.")


def test_tool_call_matches_in_both_styles():
    want = {"name": "get_birthplace", "arguments": {"person": "Alda Kessa"}}
    assert tool_call_matches(want, '<tool_call>\n{"name": "get_birthplace", "arguments": {"person": "Alda Kessa"}}\n</tool_call>')
    assert tool_call_matches(want, "<code>get_birthplace(person='Alda Kessa')</code>")
    assert tool_call_matches(want, "<code>get_city_info(city='X')\nget_birthplace(person=\"Alda Kessa\")</code>")
    assert not tool_call_matches(want, "<code>get_birthplace(person='Alda')</code>")
    assert not tool_call_matches(want, "<code>get_birthplace(person='Alda Kessa', year=1)</code>")
    assert not tool_call_matches(want, "<code>get_city(person='Alda Kessa')</code>")
    assert not tool_call_matches(want, "<think>\n<code>get_birthplace(person='Alda Kessa')</code>\n</think>\nNo call.")
    assert not tool_call_matches(want, "get_birthplace(person='Alda Kessa')")   # no call tags: not a call
    calc = {"name": "calculate", "arguments": {"a": 3, "op": "*", "b": 4}}
    assert tool_call_matches(calc, "<code>calculate(a=3, op='*', b=4)</code>")
    assert tool_call_matches(calc, "<code>calculate(b=4, a=3.0, op='*')</code>")        # AST match: order, 3 == 3.0
    assert not tool_call_matches(calc, "<code>calculate(a=3, op='*', b=True)</code>")
    with pytest.raises(SmolbookError, match="expected call"):
        tool_call_matches({"arguments": {}}, "<code>f()</code>")


def test_tool_call_validity():
    assert tool_call_valid("<code>f(x=1)</code>")
    assert not tool_call_valid("<code>f(1)</code>")                           # positional: not a valid call
    assert not tool_call_valid('<tool_call>{"name": "f", "arguments": [1]}</tool_call>')
    assert not tool_call_valid("<tool_call>{'name': 'f'}")                     # unclosed
    assert not tool_call_valid("no call at all")


def test_language_and_format():
    assert detect_language("Alda Kessa wurde 1850 in Veloria geboren. Die Antwort ist Veloria.") == "de"
    assert detect_language("Alda Kessa nasceu em Veloria em 1850. A resposta é Veloria.") == "pt"
    assert detect_language("Alda Kessa nació en Veloria en 1850. La respuesta es Veloria.") == "es"
    assert detect_language("Veloria 1850") is None
    assert format_ok("<think>\nsteps\n</think>\nThe answer is 7.", "think")
    assert not format_ok("<think>\nsteps\nThe answer is 7.", "think")       # never closed
    assert not format_ok("The answer is 7.", "think")
    assert not format_ok("<think>\nsteps\n</think>\n", "think")              # no answer after it
    assert format_ok("The answer is 7.", "no_think")
    assert not format_ok("<think>\nsteps\n</think>\nThe answer is 7.", "no_think")
    with pytest.raises(SmolbookError, match="mode"):
        format_ok("x", "thinking")


ROW = {"kind": "multilingual", "lang": "fr", "answer": "Veloria", "solution_answer": "Alda naît à Veloria en 1850. "
       "La réponse est Veloria.", "expected_call": "", "instructions": "", "mode": "no_think"}


def test_score_completion_and_unparsable_completions():
    right = score_completion(ROW, "Alda naît à Veloria en 1850. La réponse est Veloria.", "no_think")
    assert right["correct"] and right["language_match"] and right["format_ok"] and right["error"] is None
    english = score_completion(ROW, "Alda was born in Veloria. The answer is Veloria.", "no_think")
    assert english["correct"] and english["language_match"] is False
    broken = score_completion(ROW, "<think>\nAlda naît à Veloria", "think")   # does not parse: an error value
    assert broken["error"] and not broken["correct"] and not broken["format_ok"]


class _Fixed:
    name = "fixed"

    def __init__(self, text):
        self.text = text

    def generate(self, prompts, mode):
        return [self.text for _ in prompts]


def test_evaluate_chat_is_one_record_per_checkpoint_and_mode():
    rows = [ROW, {**ROW, "mode": "think"}]
    record = evaluate_chat(_Fixed("La réponse est Veloria."), rows, "no_think", checkpoint="sft")
    assert record["checkpoint"] == "sft" and record["mode"] == "no_think" and record["n"] == 1
    assert record["answer_em"] == 1.0 and record["language_match"] == 1.0 and record["format_ok"] == 1.0
    assert record["tool_call_match"] is None
    assert evaluate_chat(_Fixed("La réponse est Mira."), rows, "no_think")["answer_em"] == 0.0
    with pytest.raises(SmolbookError, match="no held-out rows"):
        evaluate_chat(_Fixed(""), [ROW], "think")
