"""The rule check on crafted good and bad compound items."""

from __future__ import annotations

import pytest

from transforms.compound.rule_check import (
    ANSWER_RULES,
    QUESTION_RULES,
    RuleParams,
    content_words,
    is_question,
    overlap,
    present_in,
    rule_check,
)

CQ = "When did the Brooklyn Bridge open, and which river does the Brooklyn Bridge cross?"
SUBS = ["When did the Brooklyn Bridge open?", "Which river does the Brooklyn Bridge cross?"]
SUB_ANSWERS = ["The Brooklyn Bridge opened on 24 May 1883.",
               "The Brooklyn Bridge crosses the East River."]
ANSWER = " ".join(SUB_ANSWERS)


def test_good_item_passes() -> None:
    r = rule_check(CQ, SUBS, ANSWER, SUB_ANSWERS)
    assert r.ok and r.reason is None and r.failures == []


def test_paraphrased_sub_question_counts_as_present() -> None:
    cq = "Which river is crossed by the Brooklyn Bridge, and when did the Brooklyn Bridge open?"
    assert rule_check(cq, SUBS, ANSWER, SUB_ANSWERS).ok


BAD = [
    ("too_few_sub_questions", dict(subs=SUBS[:1], sub_answers=SUB_ANSWERS[:1])),
    ("too_many_sub_questions",
     dict(subs=SUBS + ["Who designed the Brooklyn Bridge?", "How long is the Brooklyn Bridge?",
                       "What is the Brooklyn Bridge made of?"],
          cq=CQ + " Who designed the Brooklyn Bridge? How long is the Brooklyn Bridge? "
                  "What is the Brooklyn Bridge made of?",
          sub_answers=SUB_ANSWERS + ["John Roebling designed the Brooklyn Bridge.",
                                     "The Brooklyn Bridge is 1834 m long.",
                                     "The Brooklyn Bridge is made of granite and steel."])),
    ("duplicate_sub_questions",
     dict(subs=[SUBS[0], SUBS[0].upper()], sub_answers=[SUB_ANSWERS[0]] * 2)),
    ("sub_question_not_in_question",
     dict(cq="When did it open?")),
    ("question_single_ask", dict(cq="When did the Brooklyn Bridge, which crosses a river, open?")),
    ("question_unrelated_parts",
     dict(subs=[SUBS[0], "Who wrote Moby-Dick?"], cq=SUBS[0] + " Who wrote Moby-Dick?",
          sub_answers=[SUB_ANSWERS[0], "Herman Melville wrote Moby-Dick."],
          answer=SUB_ANSWERS[0] + " Herman Melville wrote Moby-Dick.")),
    ("unanswered_sub_question", dict(sub_answers=SUB_ANSWERS[:1])),
    ("extra_sub_answers", dict(sub_answers=SUB_ANSWERS + ["Also it is nice."])),
    ("empty_sub_answer", dict(sub_answers=[SUB_ANSWERS[0], "   "])),
    ("sub_answer_off_topic", dict(sub_answers=[SUB_ANSWERS[0], "Yes, indeed."],
                                  answer=SUB_ANSWERS[0] + " Yes, indeed.")),
    ("answer_omits_sub_answer", dict(answer=SUB_ANSWERS[0])),
    ("sub_question_not_a_question",
     dict(subs=[SUBS[0], "The Brooklyn Bridge crosses a river."],
          cq=CQ.replace("which river does", "the Brooklyn Bridge crosses a river.") +
          " The Brooklyn Bridge crosses a river.")),
    ("sub_answer_echoes_question",
     dict(sub_answers=[SUB_ANSWERS[0], "Which river does the Brooklyn Bridge cross?"],
          answer=SUB_ANSWERS[0] + " Which river does the Brooklyn Bridge cross?")),
]


@pytest.mark.parametrize(("reason", "change"), BAD, ids=[b[0] for b in BAD])
def test_bad_items_fail_with_their_rule(reason: str, change: dict) -> None:
    r = rule_check(change.get("cq", CQ), change.get("subs", SUBS),
                   change.get("answer", ANSWER), change.get("sub_answers", SUB_ANSWERS))
    assert not r.ok
    assert r.reason == reason
    assert reason in {f["rule"] for f in r.failures}
    assert r.detail()["check"] == "rule"


def test_every_failure_is_listed() -> None:
    r = rule_check("Something else entirely?", SUBS, "Nothing.", ["", "Yes."])
    rules = [f["rule"] for f in r.failures]
    assert rules.count("sub_question_not_in_question") == 2
    assert "empty_sub_answer" in rules and "sub_answer_off_topic" in rules
    assert r.reason == "sub_question_not_in_question"


def test_bounds_come_from_params() -> None:
    three = SUBS + ["Who designed the Brooklyn Bridge?"]
    cq = CQ + " Who designed the Brooklyn Bridge?"
    answers = SUB_ANSWERS + ["John Roebling designed the Brooklyn Bridge."]
    params = RuleParams(min_sub_questions=2, max_sub_questions=2)
    assert rule_check(cq, three, " ".join(answers), answers, params).reason == \
        "too_many_sub_questions"
    assert rule_check(cq, three, " ".join(answers), answers).ok


def test_content_words_drop_function_words_and_stem() -> None:
    assert content_words("Why do the bridges open?") == {"bridge", "open"}
    assert content_words("How many minutes in 1 week?") == {"many", "minute", "1", "week"}
    assert content_words("What is it?") == set()
    assert overlap("What is it?", "anything") == 0.0


def test_question_made_of_stopwords_must_appear_verbatim() -> None:
    assert present_in("What is it?", "Tell me: what is it? And why?", 0.75)
    assert not present_in("What is it?", "Why is that so?", 0.75)


SEED_TEXT = "When did the Brooklyn Bridge open?\nIt opened in 1883 over the East River."


def test_sub_questions_must_come_from_the_seed() -> None:
    assert rule_check(CQ, SUBS, ANSWER, SUB_ANSWERS, seed_text=SEED_TEXT).ok
    # a sub-question copied from the prompt's example instead of the seed
    copied = "How safe are walk-run intervals for a beginner runner?"
    r = rule_check(CQ + " " + copied, SUBS + [copied], ANSWER + " Walk-run intervals are safe.",
                   SUB_ANSWERS + ["Walk-run intervals are safe for a beginner runner."],
                   seed_text=SEED_TEXT)
    assert r.reason == "sub_question_not_grounded"
    assert {"rule": "sub_question_not_grounded", "index": 2, "shared": []} in r.failures


@pytest.mark.parametrize(("text", "expected"), [
    ("Why is the sky blue?", True), ("Explain why the sky is blue", True),
    ("how does it work", True), ("The sky is blue.", False), ("", False)])
def test_is_question(text: str, expected: bool) -> None:
    assert is_question(text) is expected


def test_every_generic_rule_has_a_planted_case() -> None:
    planted = {reason for reason, _ in BAD} | {"sub_question_not_grounded"}
    assert planted == set(QUESTION_RULES + ANSWER_RULES)
