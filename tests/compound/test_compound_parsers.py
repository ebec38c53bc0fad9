"""Parsers fed clean, noisy, truncated, empty and malformed model output."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms.compound.parsers import (
    extract_json_object,
    parse_answer,
    parse_answer_check,
    parse_question,
    parse_question_check,
    result_payload,
)

GOOD_Q = {"sub_questions": ["Why does ice float?", "What happens to lakes if ice sank?"],
          "compound_question": "Why does ice float, and what happens to lakes if ice sank?"}


def test_clean_question() -> None:
    p = parse_question(json.dumps(GOOD_Q))
    assert p.ok
    assert p.value.sub_questions == tuple(GOOD_Q["sub_questions"])
    assert p.value.compound_question == GOOD_Q["compound_question"]


@pytest.mark.parametrize("wrap", [
    "```json\n{}\n```",
    "```\n{}\n```",
    "Sure! Here is the JSON:\n{}\nHope this helps.",
    "  {}  ",
])
def test_noisy_wrappers_are_tolerated(wrap: str) -> None:
    p = parse_question(wrap.replace("{}", json.dumps(GOOD_Q)))
    assert p.ok, p


def test_dict_from_serving_layer_passes_through() -> None:
    assert parse_question(GOOD_Q).ok


@pytest.mark.parametrize(("raw", "code"), [
    ("", "empty"),
    (None, "empty"),
    ("   \n ", "empty"),
    ("The compound question is: why?", "no_json"),
    ('{"sub_questions": ["Why does ice float?", "What hap', "truncated_json"),
    ('{"sub_questions": ["a?", "b?"], "compound_question": "a? b?"', "truncated_json"),
    ('{"sub_questions": [a?, b?], "compound_question": "x"} trailing', "invalid_json"),
    ("[1, 2]", "no_json"),
    ('{"compound_question": "a and b?"}', "missing_sub_questions"),
    ('{"sub_questions": ["a?", "b?"]}', "missing_compound_question"),
    ('{"sub_questions": "a? b?", "compound_question": "a? b?"}', "wrong_type_sub_questions"),
    ('{"sub_questions": [1, 2], "compound_question": "a? b?"}', "wrong_type_sub_questions"),
    ('{"sub_questions": ["", "  "], "compound_question": "a? b?"}', "empty_sub_questions"),
    ('{"sub_questions": ["a?", "b?"], "compound_question": 7}', "wrong_type_compound_question"),
    ('{"sub_questions": ["a?", "b?"], "compound_question": " "}', "empty_compound_question"),
])
def test_malformed_question(raw: str | None, code: str) -> None:
    p = parse_question(raw)
    assert not p.ok
    assert p.error == code
    assert p.detail


def test_non_object_value_from_serving_layer() -> None:
    assert parse_question(["a", "b"]).error == "not_an_object"
    assert parse_question(42).error == "not_an_object"


def test_blank_sub_questions_are_dropped() -> None:
    p = parse_question('{"sub_questions": ["Why?", " ", "How?"], "compound_question": "q"}')
    assert p.ok and p.value.sub_questions == ("Why?", "How?")


@pytest.mark.parametrize(("raw", "code"), [
    ('{"answer": "x"}', "missing_sub_answers"),
    ('{"sub_answers": ["x"]}', "missing_answer"),
    ('{"sub_answers": [], "answer": "x"}', "empty_sub_answers"),
    ('{"sub_answers": [{"text": "x"}], "answer": "x"}', "wrong_type_sub_answers"),
    ('{"sub_answers": ["x"], "answer": ["x"]}', "wrong_type_answer"),
    ('{"sub_answers": ["The bridge opened in 1883.", "The bri', "truncated_json"),
])
def test_malformed_answer(raw: str, code: str) -> None:
    assert parse_answer(raw).error == code


@pytest.mark.parametrize(("raw", "covers", "consistent"), [
    ('{"reasoning": "r", "covers_all_sub_questions": true, "consistent_with_context": false}',
     True, False),
    ('{"covers_all_sub_questions": "yes", "consistent_with_context": "No"}', True, False),
    ('```json\n{"covers_all_sub_questions": false, "consistent_with_context": true}\n```',
     False, True),
])
def test_answer_check_verdicts(raw: str, covers: bool, consistent: bool) -> None:
    p = parse_answer_check(raw)
    assert p.ok
    assert (p.value.covers_all_sub_questions, p.value.consistent_with_context) == \
        (covers, consistent)


def test_question_check_keeps_reasoning_and_three_verdicts() -> None:
    p = parse_question_check('{"reasoning": "two parts, both in the passage", '
                             '"single_compound_question": true, '
                             '"answerable_from_context": "no", "matches_type": true}')
    assert p.ok and p.value.reasoning == "two parts, both in the passage"
    assert (p.value.single_compound_question, p.value.answerable_from_context,
            p.value.matches_type) == (True, False, True)


@pytest.mark.parametrize(("raw", "code"), [
    ('{"consistent_with_context": true}', "missing_covers_all_sub_questions"),
    ('{"covers_all_sub_questions": "maybe", "consistent_with_context": true}',
     "wrong_type_covers_all_sub_questions"),
    ('{"covers_all_sub_questions": 1, "consistent_with_context": true}',
     "wrong_type_covers_all_sub_questions"),
    ('{"covers_all_sub_questions": true, "consistent_with_context": tr', "truncated_json"),
    ("true", "no_json"),
])
def test_malformed_answer_check(raw: str, code: str) -> None:
    assert parse_answer_check(raw).error == code


def test_malformed_question_check() -> None:
    assert parse_question_check('{"single_compound_question": true}').error == \
        "missing_answerable_from_context"


def test_blank_sub_answers_keep_their_position() -> None:
    p = parse_answer('{"sub_answers": ["In 1883.", " ", "The East River."], "answer": "x"}')
    assert p.ok and p.value.sub_answers == ("In 1883.", "", "The East River.")


def test_result_payload_prefers_validated_json() -> None:
    assert result_payload(({"a": 1},), ("raw",)) == {"a": 1}
    assert result_payload((None,), ("raw",)) == "raw"
    assert result_payload(None, ("raw",)) == "raw"
    assert result_payload(None, ()) is None


@given(st.text(max_size=300))
def test_parsers_never_raise_on_any_text(text: str) -> None:
    for parse in (parse_question, parse_answer, parse_question_check, parse_answer_check):
        p = parse(text)
        assert p.ok or (p.error and p.detail)
    assert extract_json_object(text).ok or extract_json_object(text).error
