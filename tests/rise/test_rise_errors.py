"""Every error type, on GSM8K- and MATH-style fixtures: applicability and rule edits."""

from __future__ import annotations

import random

import pytest
from rise_fixtures import GSM8K, MATH, STEPS

from transforms.rise.equations import find_equations
from transforms.rise.errors import ERROR_TYPES, candidate_edits, types_for_step
from transforms.rise.pairs import verify_rule_pair
from transforms.rise.rule_editor import apply_replacements, edit_sites, rule_edit
from transforms.rise.steps import diff_span

STYLES = {
    "gsm8k": [(q, s) for q, s in GSM8K],
    "math": [(q, s) for q, s, _ in MATH + STEPS],
}


def _all_edits(problems):
    for question, solution in problems:
        for site in edit_sites(solution, question):
            for etype, edits in site.by_type.items():
                for edit in edits:
                    yield solution, site, etype, edit


@pytest.mark.parametrize("style", sorted(STYLES))
@pytest.mark.parametrize("error_type", list(ERROR_TYPES))
def test_every_type_applies_and_every_edit_is_false_and_local(style: str, error_type: str) -> None:
    seen = 0
    for solution, site, etype, edit in _all_edits(STYLES[style]):
        if etype != error_type:
            continue
        seen += 1
        edited = apply_replacements(solution, edit.replacements)
        s, e_new, e_old = diff_span(solution, edited)
        assert site.step.start <= s and e_old <= site.step.end, "edit left its step"
        assert verify_rule_pair(solution, edited, (s, e_new), strip_rejected_boxed=False) is None
    assert seen > 0, f"{error_type} never applied to the {style} fixtures"


def test_change_operator_and_swap_edit_both_renderings() -> None:
    q, sol = GSM8K[0]
    eq = find_equations(sol)[0]  # 36/3 = <<36/3=12>>12
    edits = candidate_edits(eq, {36.0, 5.0}, set())
    texts = {apply_replacements(sol, e.replacements).split("\n")[0]
             for e in edits["change_operator"]}
    assert "In the morning he sold 36*3 = <<36*3=12>>12 muffins." in texts
    assert "In the morning he sold 36-3 = <<36-3=12>>12 muffins." in texts
    swapped = [apply_replacements(sol, e.replacements).split("\n")[0] for e in edits["swap_terms"]]
    assert swapped == ["In the morning he sold 3/36 = <<3/36=12>>12 muffins."]
    assert edits["delete_term"] == []  # two operands: nothing to delete


def test_delete_term_removes_one_term_everywhere() -> None:
    q, sol = GSM8K[1]
    eq = find_equations(sol)[0]
    edits = candidate_edits(eq, set(), set())["delete_term"]
    lines = {apply_replacements(sol, e.replacements).split("\n")[1] for e in edits}
    assert "He has 120 - 25 - 15 = <<120-25-15=70>>70 stickers left." in lines
    assert "He has 25 - 15 - 10 = <<25-15-10=70>>70 stickers left." in lines


def test_misread_needs_a_question_number_and_swaps_digits() -> None:
    q, sol = GSM8K[2]  # 3 x 84 = $<<3*84=252>>252: 84 is in the question
    eq = find_equations(sol)[0]
    misread = candidate_edits(eq, {84}, set())["misread_question"]
    assert any("3 x 48 = $<<3*48=252>>252" in apply_replacements(sol, e.replacements)
               for e in misread)
    assert candidate_edits(eq, set(), set())["misread_question"] == []


def test_wrong_substitution_uses_context_values() -> None:
    q, sol = GSM8K[0]
    eq = find_equations(sol)[1]  # 12 + 5 = 17
    subs = candidate_edits(eq, set(), {36, 3, 12, 5})["wrong_substitution"]
    news = {e.detail["new"] for e in subs}
    assert news <= {"36", "3"} and news


def test_false_equations_are_never_edited() -> None:
    sol = "He has 7 - 2 = <<7-2=4>>4 apples.\n#### 4"
    assert edit_sites(sol, "He has 7 apples and eats 2.") == []
    assert rule_edit(sol, "He has 7 apples and eats 2.", random.Random(0)) == "no_applicable_step"


@pytest.mark.parametrize(("step", "types"), [
    ("Step 1: We first find what is left.", ["misread_question"]),
    ("Step 2: He has 252 apples and 3 pears.", ["change_value", "change_values"]),
    ("Step 2: He has 7 apples.", ["change_value"]),
    ("Step 3: 3 x 84 = 252", ["change_value", "change_values", "wrong_substitution",
                              "delete_term", "change_operator", "swap_terms"]),
    ("Let x = y + z.", ["wrong_substitution", "delete_term", "change_operator", "swap_terms"]),
])
def test_error_types_follow_the_step_content(step: str, types: list[str]) -> None:
    assert types_for_step(step) == types
    assert set(types) <= set(ERROR_TYPES)


def test_rule_edit_is_seeded() -> None:
    q, sol = GSM8K[2]
    a = rule_edit(sol, q, random.Random("0:x"))
    b = rule_edit(sol, q, random.Random("0:x"))
    assert not isinstance(a, str) and not isinstance(b, str)
    assert (a.edited, a.error_type, a.step.index) == (b.edited, b.error_type, b.step.index)
    outs = {rule_edit(sol, q, random.Random(f"{k}:x")).edited for k in range(12)}
    assert len(outs) > 3


def test_allowed_types_restrict_the_choice() -> None:
    q, sol = GSM8K[1]
    for k in range(10):
        res = rule_edit(sol, q, random.Random(k), allowed=["delete_term"])
        assert not isinstance(res, str) and res.error_type == "delete_term"
    assert rule_edit(GSM8K[0][1], GSM8K[0][0], random.Random(0),
                     allowed=["delete_term"]) == "no_applicable_step"
