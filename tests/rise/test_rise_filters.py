"""The edit filters: no-op, admission of the error, edit distance, outside step, still true."""

from __future__ import annotations

import pytest
from rise_fixtures import GSM8K

from transforms.rise.filters import admits_error, check_edit, self_corrects, token_edit_distance
from transforms.rise.steps import split_steps

SOL = GSM8K[0][1]
STEP = split_steps(SOL)[0]  # "In the morning he sold 36/3 = <<36/3=12>>12 muffins."


def _check(new_step: str, arithmetic: bool = True, bound: int = 12):
    edited = SOL[:STEP.start] + new_step + SOL[STEP.end:]
    return check_edit(SOL, edited, STEP.start, STEP.end, bound, arithmetic)


def test_good_edit_passes() -> None:
    reason, detail = _check("In the morning he sold 36/3 = <<36/3=13>>13 muffins.")
    assert reason is None and detail["edit_distance"] == 2


def test_noop() -> None:
    assert _check(STEP.text)[0] == "noop_edit"


@pytest.mark.parametrize("tail", [
    "muffins, which is incorrect.", "muffins (a small mistake).", "muffins. Let me correct that.",
    "muffins. Oops, that is wrong.", "muffins, an error I introduced on purpose.",
])
def test_admission_is_rejected(tail: str) -> None:
    assert _check(f"In the morning he sold 36/3 = <<36/3=13>>13 {tail}")[0] == "admits_error"


def test_admission_already_in_the_original_is_not_counted() -> None:
    assert not admits_error("Avoid the mistake of adding.", "Avoid the mistake of adding twice.")
    assert admits_error("He sold 12.", "He sold 13, which is wrong.")


def test_edit_distance_bound() -> None:
    long = "In the morning he sold a great many muffins, far more than anybody had expected."
    reason, detail = _check(long, arithmetic=False)
    assert reason == "edit_too_large" and detail["edit_distance"] > 12
    assert token_edit_distance("a b c", "a x c") == 1
    assert token_edit_distance("1,250 + 3", "1,250 - 3") == 1


def test_equation_still_true() -> None:
    # numbers changed consistently: the equation holds, so it is no subtle error
    assert _check("In the morning he sold 39/3 = <<39/3=13>>13 muffins.")[0] == \
        "equation_still_true"


def test_edit_outside_the_step() -> None:
    edited = SOL.replace("12 + 5", "12 + 6")
    reason, _ = check_edit(SOL, edited, STEP.start, STEP.end, 12, True)
    assert reason == "edit_outside_step"


def _model_check(new_step: str, gold: str | None = None, bound: int = 12):
    edited = SOL[:STEP.start] + new_step + SOL[STEP.end:]
    return check_edit(SOL, edited, STEP.start, STEP.end, bound, True, last_step_gold=gold,
                      require_false=False)[0]


def test_model_edits_may_be_consistent_but_wrong() -> None:
    # 39/3 = 13 holds, but the step's result changed: a wrong, self-consistent computation
    assert _model_check("In the morning he sold 39/3 = <<39/3=13>>13 muffins.") is None
    assert _model_check("In the morning he sold 36/3 = <<36/3=13>>13 muffins.") is None
    # same result, every equation true: nothing was computed differently
    assert _model_check("In the morning he sold 36/3 = <<36/3=12>>12 cakes.") == \
        "computation_unchanged"
    assert _model_check("In the morning he sold 13 muffins.", bound=30) == "equation_removed"


def test_last_step_must_not_keep_the_correct_answer() -> None:
    assert _model_check("In the morning he sold 36/3 = <<36/3=13>>13 muffins.", gold="13") == \
        "keeps_correct_answer"
    assert _model_check("In the morning he sold 36/3 = <<36/3=13>>13 muffins.", gold="12") is None


@pytest.mark.parametrize(("text", "flag"), [
    ("Step 1: 3 * 4 = 12.\nWait, that should be 3 * 5 = 15.", True),
    ("Step 2: Let me recheck: 12 + 3 = 15.", True),
    ("Step 2: I made a mistake above, so 15.", True),
    ("Step 1: 3 * 4 = 12.\nStep 2: 12 + 3 = 15.\nThe answer is 15.", False),
])
def test_self_correction_phrases(text: str, flag: bool) -> None:
    assert self_corrects(text) is flag
