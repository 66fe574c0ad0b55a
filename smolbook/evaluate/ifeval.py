"""IFEval's verifiable instructions: a checker per instruction id, and IFEval's strict accuracies.

Hand-written with IFEval's semantics (google-research/instruction_following_eval, as lighteval 0.13
ships it in ``lighteval.tasks.tasks.ifeval.instructions``) because that module cannot be used offline
here: importing it downloads NLTK's punkt data, and its case checkers need ``langdetect``, which is
not installed. tests/evaluate/test_evaluate_chat.py checks that both agree, case by case, on the ids whose
lighteval checkers run offline. The case checkers use :func:`smolbook.evaluate.language.detect_language`
where IFEval uses langdetect; as in IFEval, a text whose language cannot be told counts as English.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable, Sequence

from smolbook.errors import SmolbookError
from smolbook.evaluate.language import detect_language


def _number_words(response: str, *, num_words: int, relation: str) -> bool:
    n = len(re.findall(r"\w+", response))   # IFEval counts nltk RegexpTokenizer(r"\w+") tokens
    if relation == "less than":
        return n < num_words
    if relation == "at least":
        return n >= num_words
    raise SmolbookError(f"length_constraints:number_words: relation {relation!r} is not 'less than' or 'at least'")


def _english(response: str) -> bool:
    return detect_language(response.lower()) in ("en", None)


def _english_capital(response: str) -> bool:
    return response.isupper() and _english(response)


def _english_lowercase(response: str) -> bool:
    return response.islower() and _english(response)


def _json_format(response: str) -> bool:
    value = (response.strip().removeprefix("```json").removeprefix("```Json").removeprefix("```JSON")
             .removeprefix("```").removesuffix("```").strip())
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def _end_checker(response: str, *, end_phrase: str) -> bool:
    return response.strip().strip('"').lower().endswith(end_phrase.strip().lower())


def _no_comma(response: str) -> bool:
    return "," not in response


def _keywords_existence(response: str, *, keywords: Sequence[str]) -> bool:
    # IFEval searches each keyword as a regular expression, ignoring case.
    return all(re.search(k, response, flags=re.IGNORECASE) for k in keywords)


def _number_bullet_lists(response: str, *, num_bullets: int) -> bool:
    stars = re.findall(r"^\s*\*[^\*].*$", response, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", response, flags=re.MULTILINE)
    return len(stars) + len(dashes) == num_bullets


CHECKERS: dict[str, Callable[..., bool]] = {
    "length_constraints:number_words": _number_words,
    "change_case:english_capital": _english_capital,
    "change_case:english_lowercase": _english_lowercase,
    "detectable_format:json_format": _json_format,
    "startend:end_checker": _end_checker,
    "punctuation:no_comma": _no_comma,
    "keywords:existence": _keywords_existence,
    "detectable_format:number_bullet_lists": _number_bullet_lists,
}


def ifeval_check(instruction_id: str, kwargs: dict[str, Any] | None, response: str) -> bool:
    """Whether ``response`` follows IFEval instruction ``instruction_id`` with ``kwargs`` (strict: as written)."""
    checker = CHECKERS.get(instruction_id)
    if checker is None:
        raise SmolbookError(f"unknown IFEval instruction id {instruction_id!r}; supported: {', '.join(CHECKERS)}")
    # IFEval's rows carry null-valued keys for arguments an instruction does not take.
    args = {k: v for k, v in (kwargs or {}).items() if v is not None}
    try:
        return bool(checker(response, **args))
    except TypeError as e:
        raise SmolbookError(f"{instruction_id}: bad kwargs {sorted(args)}: {e}") from None


def ifeval_scores(instructions: Sequence[dict], responses: Sequence[str]) -> dict[str, float]:
    """IFEval's strict accuracies: ``prompt_level_strict_acc`` (every instruction of a prompt followed) and
    ``inst_level_strict_acc`` (instructions followed over all instructions). ``instructions`` holds
    ``{"instruction_id_list": [...], "kwargs": [...]}`` per prompt, as IFEval's rows do."""
    if len(instructions) != len(responses):
        raise SmolbookError(f"{len(instructions)} instruction sets but {len(responses)} responses")
    per_prompt = [[ifeval_check(i, k, r) for i, k in zip(spec["instruction_id_list"], spec["kwargs"])]
                  for spec, r in zip(instructions, responses)]
    n_inst = sum(len(p) for p in per_prompt)
    return {"prompt_level_strict_acc": sum(all(p) for p in per_prompt) / max(1, len(per_prompt)),
            "inst_level_strict_acc": sum(sum(p) for p in per_prompt) / max(1, n_inst)}
