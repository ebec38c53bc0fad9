"""Filters on an edited step: each returns a reason when the edit must be rejected, else None.

Reads the original and edited solution texts and the edited step's span. Rejects: no-op edits
(noop_edit), edits that reach outside the chosen step (edit_outside_step), edits that admit the
error ("incorrect", "mistake", "let me correct", ...: admits_error), edits beyond a token
edit-distance bound (edit_too_large), an edited last step that still holds the correct final
answer (keeps_correct_answer), and for arithmetic error types edits whose computation is the
same as before: neither the step's result differs nor an equation became false
(computation_unchanged; consistent-but-wrong edits pass), or that remove every equation
(equation_removed). `self_corrects` finds self-correction phrases in sampled solutions.
"""

from __future__ import annotations

import re
from fractions import Fraction

from transforms.rise.answers import numeric_value, stated_answer
from transforms.rise.equations import find_equations, numbers_in
from transforms.rise.steps import diff_span

ADMISSION = re.compile(
    r"\b(?:incorrect(?:ly)?|mistakes?|mistaken(?:ly)?|errors?|erroneous(?:ly)?|wrong(?:ly)?|"
    r"oops|typo|miscalculat\w*|misread\w*|let me (?:correct|fix|re-?check|recalculate)|"
    r"correction|actually,? (?:it|that|this) (?:is|should)|should (?:have been|be)|"
    r"(?:is|was) not correct|inaccurate|accidentally|intentional\w*|deliberate\w*|"
    r"injected|introduc\w+ an? (?:error|mistake))\b",
    re.I,
)
SELF_CORRECTION = re.compile(
    r"\b(?:wait|hmm+|oops|actually|on second thought|let me (?:re-?check|recheck|correct|fix|"
    r"recalculate|recompute|redo|reconsider|try again)|let'?s (?:re-?check|recheck|recalculate|"
    r"recompute|redo|correct that)|I made (?:a|an) (?:mistake|error)|that'?s (?:not right|wrong)|"
    r"(?:this|that) is (?:not right|wrong|incorrect)|correction|re-?evaluat\w*|mistake)\b",
    re.I,
)
_TOKENS = re.compile(r"\d+(?:[.,]\d+)*|\w+|[^\w\s]")


def tokens(text: str) -> list[str]:
    return _TOKENS.findall(text)


def tokens_with_offsets(text: str) -> list[tuple[int, int]]:
    """(start, end) of each token of `tokens(text)`."""
    return [m.span() for m in _TOKENS.finditer(text)]


def token_edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between the token sequences of `a` and `b`."""
    ta, tb = tokens(a), tokens(b)
    if len(ta) < len(tb):
        ta, tb = tb, ta
    prev = list(range(len(tb) + 1))
    for i, x in enumerate(ta, 1):
        cur = [i] + [0] * len(tb)
        for j, y in enumerate(tb, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def admits_error(original: str, edited: str) -> bool:
    """True when the edit adds wording that confesses a mistake (not already in the original)."""
    before = {m.group(0).lower() for m in ADMISSION.finditer(original)}
    return any(m.group(0).lower() not in before for m in ADMISSION.finditer(edited))


def self_corrects(text: str) -> bool:
    """True when a solution corrects itself ("wait", "let me recheck", "I made a mistake")."""
    return SELF_CORRECTION.search(text) is not None


def step_result(step: str) -> Fraction | None:
    """What a step computes: the result of its last equation, else its last number."""
    eqs = find_equations(step)
    if eqs:
        return eqs[-1].result_value
    nums = numbers_in(step)
    return nums[-1] if nums else None


def computation_changed(old_step: str, new_step: str) -> bool:
    """True when the edited step computes something else: an equation of it is false, or its
    result differs from the original step's (a consistent-but-wrong computation)."""
    if any(not e.is_true() for e in find_equations(new_step)):
        return True
    return step_result(new_step) != step_result(old_step)


def holds_answer(step: str, gold: str) -> bool:
    """True when a step states the gold answer or writes its value as a number."""
    stated = stated_answer(step)
    if stated is not None and numeric_value(stated) == numeric_value(gold) is not None:
        return True
    value = numeric_value(gold)
    return value is not None and value in numbers_in(step)


def edited_equations_false(edited_step: str, span: tuple[int, int]) -> bool | None:
    """None when the edited region touches no equation; else whether one of those is false."""
    touched = [e for e in find_equations(edited_step)
               if e.start <= span[1] and e.end >= span[0]]
    if not touched:
        return None
    return any(not e.is_true() for e in touched)


def check_edit(
    original: str,
    edited: str,
    step_start: int,
    step_end_original: int,
    max_edit_distance: int,
    arithmetic: bool,
    last_step_gold: str | None = None,
    require_false: bool = True,
) -> tuple[str | None, dict]:
    """(reason or None, detail) for an edited solution whose chosen step spans
    [step_start, step_end_original) in the original. `last_step_gold`: the gold answer when the
    step is the solution's last one. `require_false` (rule edits): an equation in the edited
    region must be false; else (model edits) a changed computation is enough."""
    if edited == original:
        return "noop_edit", {}
    s, e_new, e_old = diff_span(original, edited)
    step_end_edited = step_end_original + (len(edited) - len(original))
    if s < step_start or e_old > step_end_original:
        return "edit_outside_step", {"span": [s, e_new]}
    old_step = original[step_start:step_end_original]
    new_step = edited[step_start:step_end_edited]
    dist = token_edit_distance(old_step, new_step)
    detail = {"edit_distance": dist}
    if admits_error(old_step, new_step):
        return "admits_error", detail
    if dist > max_edit_distance:
        return "edit_too_large", detail
    if last_step_gold is not None and holds_answer(new_step, last_step_gold):
        return "keeps_correct_answer", detail
    if arithmetic and not require_false:
        if find_equations(old_step) and not find_equations(new_step):
            return "equation_removed", detail
        return (None if computation_changed(old_step, new_step) else "computation_unchanged",
                detail)
    if arithmetic:
        verdict = edited_equations_false(new_step, (s - step_start, e_new - step_start))
        if verdict is None and find_equations(old_step):
            if not find_equations(new_step):
                return "equation_removed", detail
            verdict = edited_equations_false(new_step, (0, len(new_step)))
        if verdict is True:
            return None, detail
        if verdict is False:
            return "equation_still_true", detail
    return None, detail
