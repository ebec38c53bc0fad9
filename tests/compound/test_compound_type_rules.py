"""Per-type structure rules and the compound-structure check: each passes a question of its type
(written in the released Compound-QA style) and rejects its planted case."""

from __future__ import annotations

import pytest

from transforms.compound.categories import CATEGORIES
from transforms.compound.rule_check import ask_count, compound_structure
from transforms.compound.type_rules import TYPE_RULES, check_type, opening_type

GOOD = {
    "Factual-Statement": "When did the Brooklyn Bridge open, and which river does it cross?",
    "Cause-and-Effect": "Why did the 1929 crash happen? What were its consequences for workers?",
    "Hypothetical-Analysis": "If the ice on the lake sank, what would happen to the fish? How "
                             "would anglers on the lake adapt?",
    "Comparison-and-Selection": "How does tea compare with coffee before sleep? Which one is "
                                "better?",
    "Evaluation-and-Suggestion": "How effective is the onboarding video? What should we change?",
}
BAD = [
    ("Factual-Statement", "When did the bridge open, and what would happen if it closed?",
     "factual_asks_opinion"),
    ("Factual-Statement", "Why did the bridge open late? Who paid for it?",
     "factual_opens_as_other"),
    ("Cause-and-Effect", "What did the 1929 crash do to workers? How did wages move?",
     "cause_effect_no_cause"),
    ("Cause-and-Effect", "What factors were behind the crash? Who was in office?",
     "cause_effect_no_effect"),
    ("Cause-and-Effect", "If the crash had not happened, why would wages differ? What effect?",
     "cause_effect_opens_as_other"),
    ("Hypothetical-Analysis", "Why does ice float on water? What does this mean for fish?",
     "hypothetical_no_condition"),
    ("Hypothetical-Analysis", "Why would fish die if the ice sank? What follows?",
     "hypothetical_opens_as_other"),
    ("Comparison-and-Selection", "What is tea made of? Which tea should I choose?",
     "comparison_no_contrast"),
    ("Comparison-and-Selection", "How do lists and tuples differ? When was Python released?",
     "comparison_no_choice"),
    ("Comparison-and-Selection", "Why do lists and tuples differ? Which is better?",
     "comparison_opens_as_other"),
    ("Evaluation-and-Suggestion", "What is the onboarding video about? Who recorded it?",
     "evaluation_no_assessment_or_suggestion"),
    ("Evaluation-and-Suggestion", "If the video were shorter, what should we change?",
     "evaluation_opens_as_other"),
]


@pytest.mark.parametrize("category", CATEGORIES)
def test_a_question_of_the_type_passes(category: str) -> None:
    assert check_type(category, GOOD[category], []) == []
    assert compound_structure(GOOD[category]) == []


@pytest.mark.parametrize(("category", "question", "rule"), BAD)
def test_planted_case_fails_with_its_rule(category: str, question: str, rule: str) -> None:
    assert rule in [f["rule"] for f in check_type(category, question, [])]


def test_every_type_rule_has_a_planted_case() -> None:
    assert {rule for *_, rule in BAD} == set(TYPE_RULES)


def test_sub_questions_count_toward_the_structure() -> None:
    # the effect is asked in a sub-question the compound question words differently
    assert check_type("Cause-and-Effect", "What made the crash happen, and then?",
                      ["What made the crash happen?", "What were the consequences?"]) == []


@pytest.mark.parametrize(("question", "asks"), [
    ("When did the bridge open?", 1),
    ("When did the bridge open, and which river does it cross?", 2),
    ("Who went into orbit after Gagarin, for how long, and in what craft?", 3),
    ("Why did it crack? What did the city do? How did commuters cope?", 3),
    ("What is the bridge, which crosses the river, made of?", 1),
])
def test_ask_count(question: str, asks: int) -> None:
    assert ask_count(question) == asks


def test_single_ask_and_unrelated_lists_fail_the_structure() -> None:
    assert [f["rule"] for f in compound_structure("Why does coffee keep people awake?")] == \
        ["question_single_ask"]
    unrelated = "When did the Brooklyn Bridge open? Who wrote Moby-Dick? How many moons has Mars?"
    assert [f["rule"] for f in compound_structure(unrelated)] == ["question_unrelated_parts"]
    # the same shape over one subject is a compound question
    assert compound_structure("When did the Brooklyn Bridge open? Who designed the bridge?") == []
    # a part tied only through the context passes when the context is given
    q = "When did the Brooklyn Bridge open? Who runs the East River ferry?"
    assert compound_structure(q) != []
    assert compound_structure(q, "The Brooklyn Bridge crosses the East River, near a ferry.") == []


@pytest.mark.parametrize(("question", "category"), [
    ("Why did it fail? What then?", "Cause-and-Effect"),
    ("Assuming rates rise, what happens?", "Hypothetical-Analysis"),
    ("In contrast to tea, how does coffee act?", "Comparison-and-Selection"),
    ("How would you assess the plan? What next?", "Evaluation-and-Suggestion"),
    ("What is the plan? When does it start?", None),
])
def test_opening_type(question: str, category: str | None) -> None:
    assert opening_type(question) == category


def test_unknown_category() -> None:
    with pytest.raises(KeyError):
        check_type("Trivia", "q", [])
