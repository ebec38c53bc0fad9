"""Per-type structure rules: each passes a question of its type and rejects its planted case."""

from __future__ import annotations

import pytest

from transforms.compound.categories import CATEGORIES
from transforms.compound.type_rules import TYPE_RULES, check_type, named_options

GOOD = {
    "Factual-Statement": "When did the Brooklyn Bridge open, and which river does it cross?",
    "Cause-and-Effect": "Why did the 1929 crash happen, and what were its consequences for "
                        "workers?",
    "Hypothetical-Analysis": "Why does ice float, and what would happen to fish if it sank?",
    "Comparison-and-Selection": "What is the difference between tea and coffee, and which one "
                                "is better before sleep?",
    "Evaluation-and-Suggestion": "How effective is the onboarding video, and what should we "
                                 "change?",
}
BAD = [
    ("Factual-Statement", "When did the bridge open, and what would happen if it closed?",
     "factual_asks_opinion"),
    ("Cause-and-Effect", "What did the 1929 crash do to workers?", "cause_effect_no_cause"),
    ("Cause-and-Effect", "Why did the 1929 crash happen?", "cause_effect_no_effect"),
    ("Hypothetical-Analysis", "Why does ice float on water?", "hypothetical_no_condition"),
    ("Comparison-and-Selection", "What is tea, and which tea should I choose?",
     "comparison_fewer_than_two_options"),
    ("Comparison-and-Selection", "How do lists and tuples differ?", "comparison_no_choice"),
    ("Evaluation-and-Suggestion", "What is the onboarding video, and what should we change?",
     "evaluation_no_assessment"),
    ("Evaluation-and-Suggestion", "How effective is the onboarding video?",
     "evaluation_no_suggestion"),
]


@pytest.mark.parametrize("category", CATEGORIES)
def test_a_question_of_the_type_passes(category: str) -> None:
    assert check_type(category, GOOD[category], []) == []


@pytest.mark.parametrize(("category", "question", "rule"), BAD)
def test_planted_case_fails_with_its_rule(category: str, question: str, rule: str) -> None:
    assert rule in [f["rule"] for f in check_type(category, question, [])]


def test_every_type_rule_has_a_planted_case() -> None:
    assert {rule for *_, rule in BAD} == set(TYPE_RULES)


def test_sub_questions_count_toward_the_structure() -> None:
    # the effect is asked in a sub-question the compound question words differently
    assert check_type("Cause-and-Effect", "Why did the crash happen, and then?",
                      ["Why did the crash happen?", "What were the consequences?"]) == []


@pytest.mark.parametrize(("text", "pair"), [
    ("should i take the train or the bus to paris", ("should i take the train", "the bus to paris")),
    ("compare python with java for scripting", ("python", "java")),
    ("how does a list differ from a tuple", ("how does a list", "a tuple")),
])
def test_named_options(text: str, pair: tuple[str, str]) -> None:
    assert pair in named_options(text)


def test_the_same_option_twice_is_not_two_options() -> None:
    assert named_options("tea or tea") == []
    with pytest.raises(KeyError):
        check_type("Trivia", "q", [])
