from __future__ import annotations

import pytest

from transforms.tag_instruct.config import TagInstructConfig
from transforms.tag_instruct.verify import check_complexity, check_question, check_response

CFG = TagInstructConfig(max_similarity=0.9, max_answer_similarity=0.9, min_question_chars=10,
                        max_question_chars=200, max_length_ratio=4.0)
ORIG = "Explain why the sky looks blue during the day."
ANSWER = "Air molecules scatter short wavelengths far more than long ones, so the sky is blue."
NEW = "Explain why the sky is blue at noon but red at sunset, using Rayleigh scattering."


def test_good_question_passes() -> None:
    assert check_question(NEW, ORIG, ANSWER, 0.7, 0.5, CFG) is None


@pytest.mark.parametrize(("question", "sim", "sim_ans", "reason"), [
    ("Why blue?", 0.5, 0.1, "question_too_short"),
    ("x" * 201, 0.5, 0.1, "question_too_long"),
    ("Why? " * 39, 0.5, 0.1, "question_too_long"),  # 195 chars < 200 but ratio > 4
    (NEW, 0.93, 0.1, "too_similar_to_original"),
    (ORIG.upper(), 0.2, 0.1, "too_similar_to_original"),  # same text after folding
    (NEW, 0.5, 0.95, "copies_original_answer"),
    ("Question: " + ANSWER, 0.5, 0.2, "copies_original_answer"),  # contains the answer
])
def test_question_rules(question: str, sim: float, sim_ans: float, reason: str) -> None:
    failure = check_question(question, ORIG, ANSWER, sim, sim_ans, CFG)
    assert failure is not None and failure.reason == reason


def test_threshold_is_strict_below() -> None:
    assert check_question(NEW, ORIG, ANSWER, 0.8999, 0.1, CFG) is None
    assert check_question(NEW, ORIG, ANSWER, 0.9, 0.1, CFG).reason == "too_similar_to_original"


def test_no_original_answer_skips_copy_rule() -> None:
    assert check_question(NEW, ORIG, "", 0.5, None, CFG) is None


def test_response_rules() -> None:
    assert check_response(NEW, "Because of Rayleigh scattering ...", 0.6, CFG) is None
    assert check_response(NEW, "   ", 0.0, CFG).reason == "empty_response"
    assert check_response(NEW, NEW, 0.99, CFG).reason == "copies_own_answer"
    assert check_response(NEW, "something else", 0.95, CFG).reason == "copies_own_answer"


def test_complexity_rule() -> None:
    before = ["physics", "explanation", "optics"]
    assert check_complexity(before, ["physics", "optics", "comparison"], CFG) is None
    failure = check_complexity(before, ["physics", "optics"], CFG)
    assert failure.reason == "complexity_loss" and failure.detail["required"] == 3
    lenient = CFG.model_copy(update={"min_tags_after": 2})
    assert check_complexity(before, ["physics", "optics"], lenient) is None
