"""The grader: extraction and equivalence on tricky answer formats."""

from __future__ import annotations

import pytest

from transforms.rise.answers import (
    CORRECT,
    INCORRECT,
    UNFINISHED,
    answers_equal,
    extract_boxed,
    extract_final_answer,
    grade,
    grade_sample,
    numeric_value,
    strip_boxed,
)


@pytest.mark.parametrize(("pred", "gold"), [
    ("1,200", "1200"),
    ("$1,200.00", "1200"),
    ("-7", "-7.0"),
    ("0.5", ".5"),
    ("12 cm", "12"),
    ("18 dollars", "$18"),
    ("50%", "0.5"),
    ("\\frac{3}{4}", "0.75"),
    ("\\dfrac{3}{4}", "3/4"),
    ("\\dfrac34", "\\frac{3}{4}"),
    ("-\\frac{1}{2}", "-0.5"),
    ("1 1/2", "3/2"),
    ("2\\sqrt{3}", "\\sqrt{12}"),
    ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3, \\pi/2)"),
    ("x^2+1", "1+x^{2}"),
    ("90^\\circ", "90"),
    ("\\text{(C)}", "C"),
])
def test_equal_answers(pred: str, gold: str) -> None:
    assert answers_equal(pred, gold)


@pytest.mark.parametrize(("pred", "gold"), [
    ("5", "6"), ("-5", "5"), ("1,201", "1200"), ("\\frac{3}{5}", "0.75"), ("(3, 2)", "(2, 3)"),
    ("2\\sqrt{3}", "\\sqrt{13}"), ("", "1"), (None, "1"),
])
def test_different_answers(pred: str | None, gold: str) -> None:
    assert not answers_equal(pred, gold)


def test_boxed_nested_braces_and_strip() -> None:
    text = "So $x = \\boxed{\\frac{1}{\\sqrt{2}}}$ and also \\boxed{7}."
    assert extract_boxed(text) == ["\\frac{1}{\\sqrt{2}}", "7"]
    assert strip_boxed(text) == "So $x = \\frac{1}{\\sqrt{2}}$ and also 7."
    assert extract_final_answer(text) == "7"
    assert extract_boxed("it is \\boxed 5$.") == ["5"]
    assert strip_boxed("no box here") == "no box here"


@pytest.mark.parametrize(("solution", "answer"), [
    ("She pays 252 + 32 = $<<252+32=284>>284.\n#### 284", "284"),
    ("#### 1,000\n", "1,000"),
    ("Hence the result is $\\boxed{\\dfrac{3}{4}}$.", "\\dfrac{3}{4}"),
    ("Step 3: The answer is 110.", "110"),
    ("Final answer: -4", "-4"),
    ("We get 3 and then 4.5 apples", "4.5"),
    ("", None),
    ("no numbers at all", None),
])
def test_extract_final_answer(solution: str, answer: str | None) -> None:
    assert extract_final_answer(solution) == answer


def test_grade_against_gold() -> None:
    assert grade("Step 1: 2 * 3 = 6.\nThe answer is \\boxed{6}.", "6.0")
    assert not grade("Step 1: 2 * 3 = 7.\nThe answer is \\boxed{7}.", "6")
    assert numeric_value("$1,234.50") == numeric_value("1234.5")
    assert numeric_value("abc") is None


@pytest.mark.parametrize(("solution", "verdict"), [
    ("Step 1: 2 * 3 = 6.\nThe answer is \\boxed{6}.", CORRECT),
    ("Step 1: 2 * 3 = 6.\nThe answer is $\\frac{12}{2}$.", CORRECT),  # sympy/exact equivalent
    ("Step 1: 2 * 3 = 7.\nThe answer is \\boxed{7}.", INCORRECT),
    ("Step 1: 2 * 3 = 6.\nStep 2: So we have 6", UNFINISHED),  # last number right, unstated
    ("", UNFINISHED),
])
def test_grade_sample_is_strict(solution: str, verdict: str) -> None:
    assert grade_sample(solution, "6") == verdict
    assert grade(solution, "6") == (verdict == CORRECT)
