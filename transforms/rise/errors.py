"""The RISE error types, when each applies, and the concrete rule edits of an equation.

Reads an `Equation` (see equations.py) and the numbers of its context (question, earlier steps);
returns, per error type, the candidate `Edit`s that make the equation false. An edit is a list of
text replacements covering every rendering of the equation (visible text and annotation alike).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from itertools import combinations
from typing import Any

from transforms.rise.equations import (
    BINARY_OPS,
    Equation,
    Tok,
    evaluate,
    format_number,
    holds,
    numbers_in,
)
from transforms.rise.steps import STEP_MARK

ERROR_TYPES: dict[str, str] = {
    "change_value": "change one numerical value (an operand or a result) to a nearby wrong value",
    "change_values": "change several related numerical values of the same calculation",
    "wrong_substitution": "substitute a wrong value or symbol (one that appears elsewhere in the "
                          "problem or solution) for the right one",
    "delete_term": "delete one term of a calculation",
    "change_operator": "change one arithmetic operator (e.g. + to -, * to /)",
    "swap_terms": "swap two terms of a calculation",
    "misread_question": "misread a fact or condition given in the question (a word-level "
                        "change of what the step says about the problem)",
}
SIMILAR_DIGITS = {"1": "7", "7": "1", "3": "8", "8": "3", "5": "6", "6": "5"}
_PER_TARGET = 3  # nearby values tried per number


@dataclass
class Edit:
    error_type: str
    replacements: list[tuple[int, int, str]]  # (start, end, new text), absolute offsets
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Logical:
    """A rewritten equation: new lhs tokens, new result value (for the falsity check)."""

    lhs: list[Tok]
    result: Fraction
    result_text: str


def _false(eq: Equation, lhs: list[Tok], result: Fraction | None = None) -> bool:
    res = eq.result_value if result is None else result
    val = evaluate(lhs)
    return val is not None and not holds(val, res, format_number(res, eq.result.text))


def _retoken(t: Tok, value: Fraction) -> Tok:
    return Tok("num", format_number(value, t.text), t.start, t.end, value=value, pct=t.pct)


def _nearby(v: Fraction, text: str) -> list[Fraction]:
    """Subtly different values, nearest first, keeping the sign and the number of decimals."""
    d = len(text.split(".", 1)[1]) if "." in text else 0
    unit = Fraction(1, 10 ** d)
    out = []
    for k in (1, -1, 2, -2, 3, -3, 5, -5, 10, -10):
        w = v + k * unit
        if w != v and (w > 0 or v < 0) and (v >= 0 or w < 0):
            out.append(w)
    return out


def _misreadings(v: Fraction, text: str) -> list[Fraction]:
    """Values a reader might take `text` for: adjacent digits swapped, a similar digit, a zero
    dropped or added."""
    digits = text.replace(",", "")
    seen: list[Fraction] = []

    def add(s: str) -> None:
        try:
            w = Fraction(s)
        except (ValueError, ZeroDivisionError):
            return
        if w != v and w > 0 and w not in seen and not (len(s) > 1 and s[0] == "0" and s[1] != "."):
            seen.append(w)

    for i in range(len(digits) - 1):
        a, b = digits[i], digits[i + 1]
        if a != b and a.isdigit() and b.isdigit():
            add(digits[:i] + b + a + digits[i + 2:])
    for i, ch in enumerate(digits):
        if ch in SIMILAR_DIGITS:
            add(digits[:i] + SIMILAR_DIGITS[ch] + digits[i + 1:])
    if v.denominator == 1:
        add(str(v * 10))
        if v % 10 == 0:
            add(str(v // 10))
    return seen


# ------------------------------------------------------------ text replacements per rendering

def set_numbers(eq: Equation, changes: dict[int | str, Fraction]) -> list[tuple[int, int, str]]:
    """Text replacements giving operands (by lhs index) or the result ("result") new values in
    every rendering of `eq`."""
    reps = []
    for r in eq.renderings:
        for pos, value in changes.items():
            tok = r.result if pos == "result" else (r.lhs[pos] if r.lhs is not None else None)
            if tok is not None:
                reps.append((tok.start, tok.end, format_number(value, tok.text)))
    return reps


_OP_STYLES = [
    ({"\\times", "\\cdot", "\\div"}, {"*": "\\times", "/": "\\div"}),
    ({"×", "÷", "·"}, {"*": "×", "/": "÷"}),
    ({"x", "X"}, {"*": "x", "/": "/"}),
]


def _styled_op(orig: str, sym: str) -> str:
    for family, table in _OP_STYLES:
        if orig in family:
            return table.get(sym, sym)
    return sym


def numbers_after(eq: Equation, changes: dict[int | str, Fraction]) -> tuple[list[Tok], Fraction]:
    """(lhs tokens, result value) of `eq` after `changes`."""
    lhs = [(_retoken(t, changes[i]) if i in changes else t) for i, t in enumerate(eq.lhs)]
    return lhs, changes.get("result", eq.result_value)


# ------------------------------------------------------------------------------ candidates

def _value_edits(eq: Equation, error_type: str, targets: dict[int | str, list[Fraction]],
                 per_target: int = _PER_TARGET) -> list[Edit]:
    edits = []
    for pos, values in targets.items():
        kept = 0
        for w in values:
            lhs, res = numbers_after(eq, {pos: w})
            if _false(eq, lhs, res):
                old = eq.result_value if pos == "result" else eq.lhs[pos].value  # type: ignore[index]
                edits.append(Edit(error_type, set_numbers(eq, {pos: w}),
                                  {"target": str(pos), "old": str(old), "new": str(w)}))
                kept += 1
                if kept >= per_target:
                    break
    return edits


def change_value(eq: Equation, ctx: set[Fraction]) -> list[Edit]:
    targets: dict[int | str, list[Fraction]] = {
        i: _nearby(eq.lhs[i].value, eq.lhs[i].text) for i in eq.operand_indices()}  # type: ignore[arg-type]
    targets["result"] = _nearby(eq.result_value, eq.result.text)
    return _value_edits(eq, "change_value", targets)


def change_values(eq: Equation, ctx: set[Fraction]) -> list[Edit]:
    positions: list[int | str] = [*eq.operand_indices(), "result"]
    edits = []
    for a, b in combinations(positions, 2):
        ta = eq.result if a == "result" else eq.lhs[a]  # type: ignore[index]
        tb = eq.result if b == "result" else eq.lhs[b]  # type: ignore[index]
        for wa in _nearby(ta.value, ta.text)[:2]:  # type: ignore[arg-type]
            for wb in _nearby(tb.value, tb.text)[:2]:  # type: ignore[arg-type]
                lhs, res = numbers_after(eq, {a: wa, b: wb})
                if _false(eq, lhs, res):
                    edits.append(Edit("change_values", set_numbers(eq, {a: wa, b: wb}),
                                      {"targets": [str(a), str(b)], "new": [str(wa), str(wb)]}))
    return edits


def wrong_substitution(eq: Equation, ctx: set[Fraction]) -> list[Edit]:
    own = {eq.lhs[i].value for i in eq.operand_indices()} | {eq.result_value}
    pool = sorted(v for v in ctx if v not in own and v > 0)
    targets: dict[int | str, list[Fraction]] = {i: pool for i in eq.operand_indices()}
    return _value_edits(eq, "wrong_substitution", targets, per_target=len(pool))


def misread_question(eq: Equation, question_numbers: set[Fraction]) -> list[Edit]:
    targets: dict[int | str, list[Fraction]] = {
        i: _misreadings(eq.lhs[i].value, eq.lhs[i].text)  # type: ignore[arg-type]
        for i in eq.operand_indices() if eq.lhs[i].value in question_numbers}
    return _value_edits(eq, "misread_question", targets)


def change_operator(eq: Equation, ctx: set[Fraction]) -> list[Edit]:
    edits = []
    for i in eq.op_indices():
        cur = eq.lhs[i].sym
        if cur not in BINARY_OPS:
            continue
        for sym in BINARY_OPS:
            if sym == cur:
                continue
            lhs = list(eq.lhs)
            lhs[i] = Tok("op", sym, lhs[i].start, lhs[i].end)
            if not _false(eq, lhs):
                continue
            reps = [(r.lhs[i].start, r.lhs[i].end, _styled_op(r.lhs[i].text, sym))
                    for r in eq.renderings if r.lhs is not None]
            edits.append(Edit("change_operator", reps, {"old": cur, "new": sym}))
    return edits


def swap_terms(eq: Equation, ctx: set[Fraction]) -> list[Edit]:
    edits = []
    for i, j in combinations(eq.operand_indices(), 2):
        if eq.lhs[i].value == eq.lhs[j].value:
            continue
        lhs = list(eq.lhs)
        lhs[i], lhs[j] = lhs[j], lhs[i]
        if not _false(eq, lhs):
            continue
        reps = []
        for r in eq.renderings:
            if r.lhs is not None:
                reps.append((r.lhs[i].start, r.lhs[i].end, r.lhs[j].text))
                reps.append((r.lhs[j].start, r.lhs[j].end, r.lhs[i].text))
        edits.append(Edit("swap_terms", reps, {"swapped": [eq.lhs[i].text, eq.lhs[j].text]}))
    return edits


def delete_term(eq: Equation, ctx: set[Fraction]) -> list[Edit]:
    ops = eq.operand_indices()
    if len(ops) < 3:
        return []
    edits = []
    lhs = eq.lhs
    for i in ops:
        if i >= 2 and lhs[i - 1].kind == "op" and lhs[i - 2].kind == "num" and i - 1 in eq.op_indices():
            cut = (i - 1, i + 1)  # the operator before and the operand
            spans = [(r.lhs[i - 2].end, r.lhs[i].end) for r in eq.renderings if r.lhs is not None]
        elif i == 0 and len(lhs) > 2 and lhs[1].kind == "op" and lhs[2].kind == "num":
            cut = (0, 2)  # the operand and the operator after it
            spans = [(r.lhs[0].start, r.lhs[2].start) for r in eq.renderings if r.lhs is not None]
        else:
            continue
        new_lhs = lhs[:cut[0]] + lhs[cut[1]:]
        if not _false(eq, new_lhs):
            continue
        edits.append(Edit("delete_term", [(s, e, "") for s, e in spans],
                          {"deleted": lhs[i].text}))
    return edits


def candidate_edits(eq: Equation, question_numbers: set[Fraction],
                    context_numbers: set[Fraction]) -> dict[str, list[Edit]]:
    """Rule edits per error type for a true equation; a type maps to [] when it does not apply."""
    if not eq.is_true():
        return {t: [] for t in ERROR_TYPES}
    return {
        "change_value": change_value(eq, context_numbers),
        "change_values": change_values(eq, context_numbers),
        "wrong_substitution": wrong_substitution(eq, context_numbers),
        "delete_term": delete_term(eq, context_numbers),
        "change_operator": change_operator(eq, context_numbers),
        "swap_terms": swap_terms(eq, context_numbers),
        "misread_question": misread_question(eq, question_numbers),
    }


VALUE_TYPES = ("change_value", "change_values")
EQUATION_TYPES = ("wrong_substitution", "delete_term", "change_operator", "swap_terms")
ARITHMETIC_TYPES = VALUE_TYPES + EQUATION_TYPES


def types_for_step(step_text: str) -> list[str]:
    """Error types a model editor may apply to a step, by its content: digits → value edits,
    '=' → substitution, deleted term, operator, swapped terms; neither → a misreading of the
    question (a word-level edit). The "Step k:" marker does not count."""
    step_text = STEP_MARK.sub("", step_text, count=1)
    digits = any(ch.isdigit() for ch in step_text)
    types: list[str] = []
    if digits:
        types += ["change_value"] + (["change_values"] if len(numbers_in(step_text)) >= 2 else [])
    if "=" in step_text:
        types += list(EQUATION_TYPES)
    return types or ["misread_question"]
