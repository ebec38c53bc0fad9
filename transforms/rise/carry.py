"""Carry a rule edit through a solution: recompute the steps that depend on the edited result.

Reads the original solution, the edited one and the end of the edited step. When the edit
changed what the step computes (its equation's result R became R'), every later equation with R
as an operand is recomputed with R' (visible text and GSM8K annotation alike), the new results
propagate in turn, and the stated final answer (`#### N`, the last `\\boxed{}`) follows. The
later steps stay arithmetically true: the one error is the edited step's.
"""

from __future__ import annotations

import re
from fractions import Fraction

from transforms.rise.answers import numeric_value
from transforms.rise.equations import evaluate, find_equations, format_number
from transforms.rise.errors import numbers_after, set_numbers
from transforms.rise.rule_editor import apply_replacements

_FINAL = re.compile(r"(?m)^([ \t]*####[ \t]*)([^\n]+?)[ \t]*$|\\boxed\{([^{}]*)\}")


def changed_results(original: str, edited: str, upto_original: int,
                    upto_edited: int) -> dict[Fraction, Fraction]:
    """Result values that the edit changed (old → new), equations matched in order."""
    old = find_equations(original[:upto_original])
    new = find_equations(edited[:upto_edited])
    if len(old) != len(new):
        return {}
    return {o.result_value: n.result_value for o, n in zip(old, new, strict=True)
            if o.result_value != n.result_value}


def carry_through(original: str, edited: str, step_end: int) -> str | None:
    """`edited` with the changed result carried through the later steps and the final answer,
    or None when the edit changed no result (nothing to carry)."""
    end = step_end + len(edited) - len(original)
    mapping = changed_results(original, edited, step_end, end)
    if not mapping:
        return None
    text, cursor = edited, end
    while True:
        later = [e for e in find_equations(text) if e.start >= cursor]
        if not later:
            break
        eq = later[0]
        changes: dict[int | str, Fraction] = {
            i: mapping[eq.lhs[i].value] for i in eq.operand_indices()  # type: ignore[index]
            if eq.lhs[i].value in mapping}
        if changes:
            lhs, _ = numbers_after(eq, changes)
            value = evaluate(lhs)
            if value is not None:
                if value != eq.result_value:
                    mapping[eq.result_value] = value
                    changes["result"] = value
                before = len(text)
                text = apply_replacements(text, set_numbers(eq, changes))
                cursor = eq.end + len(text) - before
                continue
        cursor = eq.end
    return _final_answer(text, end, mapping)


def _final_answer(text: str, start: int, mapping: dict[Fraction, Fraction]) -> str:
    reps = []
    for m in _FINAL.finditer(text, start):
        group = 2 if m.group(2) is not None else 3
        value = numeric_value(m.group(group))
        if value is not None and value in mapping:
            reps.append((m.start(group), m.end(group),
                         format_number(mapping[value], m.group(group).replace("$", ""))))
    return apply_replacements(text, reps)
