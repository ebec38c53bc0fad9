"""Filters on an edited step: each returns a reason when the edit must be rejected, else None.

Reads the original and edited solution texts and the edited step's span. Rejects: no-op edits,
edits that admit the error ("incorrect", "mistake", "let me correct", ...), edits beyond a token
edit-distance bound, edits that reach outside the chosen step, and (for steps with arithmetic)
edits after which every equation of the edited region still holds or no equation is left.
"""

from __future__ import annotations

import re

from transforms.rise.equations import find_equations
from transforms.rise.steps import diff_span

ADMISSION = re.compile(
    r"\b(?:incorrect(?:ly)?|mistakes?|mistaken(?:ly)?|errors?|erroneous(?:ly)?|wrong(?:ly)?|"
    r"oops|typo|miscalculat\w*|misread\w*|let me (?:correct|fix|re-?check|recalculate)|"
    r"correction|actually,? (?:it|that|this) (?:is|should)|should (?:have been|be)|"
    r"(?:is|was) not correct|inaccurate|accidentally|intentional\w*|deliberate\w*|"
    r"injected|introduc\w+ an? (?:error|mistake))\b",
    re.I,
)
_TOKENS = re.compile(r"\d+(?:[.,]\d+)*|\w+|[^\w\s]")


def tokens(text: str) -> list[str]:
    return _TOKENS.findall(text)


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
) -> tuple[str | None, dict]:
    """(reason or None, detail) for an edited solution whose chosen step spans
    [step_start, step_end_original) in the original."""
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
