"""Step split and arithmetic equation finding on GSM8K, MATH and "Step k:" text."""

from __future__ import annotations

from fractions import Fraction

from rise_fixtures import GSM8K, MATH, STEPS

from transforms.rise.equations import find_equations, format_number, holds
from transforms.rise.steps import diff_span, solution_style, split_steps


def test_gsm8k_split_leaves_answer_line_out() -> None:
    sol = GSM8K[0][1]
    steps = split_steps(sol)
    assert solution_style(sol) == "gsm8k"
    assert [s.text for s in steps] == sol.split("\n")[:2]
    assert all(sol[s.start:s.end] == s.text for s in steps)


def test_math_split_keeps_math_whole() -> None:
    sol = "We have $x = 1.5$. Then $y = 2.$ So the answer is $\\boxed{3.5}$."
    steps = split_steps(sol)
    assert solution_style(sol) == "prose"
    assert [s.text for s in steps] == ["We have $x = 1.5$.",
                                       "Then $y = 2.$ So the answer is $\\boxed{3.5}$."]
    assert all(sol[s.start:s.end] == s.text for s in steps)
    assert len(split_steps(MATH[0][1])) == 3


def test_step_markers() -> None:
    sol = STEPS[0][1]
    steps = split_steps(sol)
    assert solution_style(sol) == "steps"
    assert [s.text[:7] for s in steps] == ["Step 1:", "Step 2:", "Step 3:"]


def test_gsm8k_equation_has_visible_and_annotation_renderings() -> None:
    sol = GSM8K[0][1]
    eqs = find_equations(sol)
    assert len(eqs) == 2
    first = eqs[0]
    assert len(first.renderings) == 2
    vis, ann = first.renderings
    assert not vis.annotation and ann.annotation
    assert sol[vis.lhs[0].start:vis.lhs[-1].end] == "36/3"
    assert sol[vis.result.start:vis.result.end] == "12"
    assert sol[ann.result.start:ann.result.end] == "12" and ann.result.start < vis.result.start
    assert first.is_true() and first.value == 12


def test_latex_and_plain_equations() -> None:
    eqs = find_equations(MATH[2][1])
    assert [e.value for e in eqs] == [5, 49]
    assert all(e.is_true() for e in eqs)
    eqs = find_equations("It is 3 x 4 = 12 and (2 + 3) × 2 = 10, but 7 - 2 = 4.")
    assert [e.is_true() for e in eqs] == [True, True, False]
    assert find_equations("Let x = 5 and 2p/5 = p") == []


def test_rounded_results_and_formatting() -> None:
    assert holds(Fraction(10, 3), Fraction("3.33"), "3.33")
    assert not holds(Fraction(49, 2), Fraction(24), "24")
    assert format_number(Fraction(1250), "1,000") == "1,250"
    assert format_number(Fraction("47.6"), "47.5") == "47.6"
    assert format_number(Fraction(-3), "3") == "-3"
    assert diff_span("abcXdef", "abcYYdef") == (3, 5, 4)
