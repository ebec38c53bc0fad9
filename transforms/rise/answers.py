"""Final-answer extraction and grading.

Reads solution text; finds its final answer (`#### N`, the last `\\boxed{...}` with nested
braces, "The answer is ...", or, for reference solutions only, the last number) and decides
whether two answers are equal: numbers with commas, units, percents, fractions, decimals and negatives compare by exact value;
LaTeX (`\\frac`, `\\dfrac`, `\\sqrt`, `\\pi`, tuples) compares through sympy when the text differs.
Grading a model's sample is strict: no stated final answer → incorrect-unfinished.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

_HASH_ANSWER = re.compile(r"^\s*####\s*(.+?)\s*$", re.M)
_ANSWER_IS = re.compile(
    r"(?:final answer|the answer)\s*(?:is|:)\s*:?\s*(.+?)(?:\.\s*$|\.\s+[A-Z]|\n|$)", re.I | re.M)
_LAST_NUM = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?|-?\.\d+")
_BOX_CMDS = ("\\boxed", "\\fbox")
_UNIT_WORDS = re.compile(
    r"\b(?:dollars?|cents?|units?|square|sq|cubic|feet|foot|ft|inches|inch|in|cm|mm|km|m|meters?|"
    r"miles?|hours?|hrs?|minutes?|mins?|seconds?|secs?|days?|weeks?|months?|years?|degrees?|"
    r"pounds?|lbs?|ounces?|oz|kg|grams?|g|liters?|l|ml|gallons?|pages?|people|points?|"
    r"percent|per|each|apples?|students?|items?|pieces?|times|mph|kph)\b\.?", re.I)
_NUMBER = re.compile(r"^-?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?$")
_MIXED = re.compile(r"^(-?\d+)\s+(\d+)/(\d+)$")


def _boxed_spans(text: str) -> list[tuple[int, int, int, int]]:
    """(cmd_start, content_start, content_end, cmd_end) of each \\boxed{...} (nested braces)."""
    spans = []
    i = 0
    while True:
        hits = [(text.find(c, i), c) for c in _BOX_CMDS]
        hits = [(p, c) for p, c in hits if p >= 0]
        if not hits:
            return spans
        pos, cmd = min(hits)
        j = pos + len(cmd)
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] == "{":
            depth, k = 0, j
            while k < len(text):
                if text[k] == "{":
                    depth += 1
                elif text[k] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            if depth != 0:  # unbalanced: take the rest
                spans.append((pos, j + 1, len(text), len(text)))
                return spans
            spans.append((pos, j + 1, k, k + 1))
            i = k + 1
        else:  # "\boxed 5": up to the next space or '$'
            m = re.match(r"\s*([^\s$]+)", text[j:])
            if m is None:
                return spans
            spans.append((pos, j + m.start(1), j + m.end(1), j + m.end(1)))
            i = j + m.end(1)


def extract_boxed(text: str) -> list[str]:
    """Contents of every \\boxed{...} / \\fbox{...} in order."""
    return [text[s:e] for _, s, e, _ in _boxed_spans(text)]


def strip_boxed(text: str) -> str:
    """`text` with each \\boxed{X} replaced by X."""
    out, last = [], 0
    for cs, s, e, ce in _boxed_spans(text):
        out.append(text[last:cs])
        out.append(text[s:e])
        last = ce
    out.append(text[last:])
    return "".join(out)


def extract_final_answer(text: str) -> str | None:
    """The final answer stated in a solution, or None."""
    if not text:
        return None
    hashes = _HASH_ANSWER.findall(text)
    if hashes:
        return hashes[-1].strip()
    boxed = extract_boxed(text)
    if boxed:
        return boxed[-1].strip()
    said = _ANSWER_IS.findall(text)
    if said:
        return said[-1].strip().rstrip(".").strip()
    nums = _LAST_NUM.findall(text)
    return nums[-1].strip() if nums else None


def stated_answer(text: str) -> str | None:
    """The answer a solution states explicitly (`#### N`, `\\boxed{}`, "the answer is"), or
    None; unlike `extract_final_answer`, never falls back to the last number."""
    if not text:
        return None
    if _HASH_ANSWER.search(text) or extract_boxed(text) or _ANSWER_IS.search(text):
        return extract_final_answer(text)
    return None


def _strip_latex_wrappers(s: str) -> str:
    s = s.strip().strip("$").strip()
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}", r" \1 ", s)
    s = re.sub(r"\\(?:left|right|displaystyle|!|,|;|:|quad|qquad)", " ", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"\^\s*\{?\\circ\}?", " ", s)
    s = s.replace("\\%", "%").replace("\\$", "$")
    return re.sub(r"\s+", " ", s).strip()


def normalize_answer(answer: str) -> str:
    """A canonical string: LaTeX wrappers, currency, units and thousands commas removed."""
    s = _strip_latex_wrappers(answer)
    s = s.replace("$", "")
    s = _UNIT_WORDS.sub(" ", s)
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").strip()
    return s


def _frac_shorthand(s: str) -> str:
    r"""\frac34 → \frac{3}{4}; \frac{a}b → \frac{a}{b}."""
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*(\{[^{}]*\})\s*(\d)", r"\\frac\1{\2}", s)
    return re.sub(r"\\frac\s*(\d)\s*(\{[^{}]*\})", r"\\frac{\1}\2", s)


def numeric_value(answer: str) -> Fraction | None:
    """Exact value of a plain numeric answer (commas, units, %, a/b, mixed numbers, \\frac{a}{b})."""
    s = _frac_shorthand(normalize_answer(answer))
    pct = s.endswith("%")
    s = s.rstrip("%").strip()
    m = re.fullmatch(r"(-?)\\frac\{\s*(-?\d+(?:\.\d+)?)\s*\}\{\s*(-?\d+(?:\.\d+)?)\s*\}", s)
    try:
        if m:
            v = Fraction(m.group(2)) / Fraction(m.group(3))
            v = -v if m.group(1) else v
        elif (mm := _MIXED.match(s)) is not None:
            whole, num, den = int(mm.group(1)), int(mm.group(2)), int(mm.group(3))
            v = Fraction(abs(whole)) + Fraction(num, den)
            v = -v if mm.group(1).startswith("-") else v
        elif re.fullmatch(r"-?\d+(?:\.\d+)?\s*/\s*-?\d+(?:\.\d+)?", s):
            a, b = (Fraction(x.strip()) for x in s.split("/"))
            v = a / b
        elif _NUMBER.match(s) and any(ch.isdigit() for ch in s):
            v = Fraction(s.replace(",", ""))
        else:
            return None
    except (ValueError, ZeroDivisionError):
        return None
    return v / 100 if pct else v


def _latex_to_sympy_text(s: str) -> str:
    s = _frac_shorthand(s)
    for _ in range(8):  # innermost first, repeated for nesting
        s2 = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)
        s2 = re.sub(r"\\sqrt\[([^\]]*)\]\{([^{}]*)\}", r"((\2)**(1/(\1)))", s2)
        s2 = re.sub(r"\\sqrt\{([^{}]*)\}", r"sqrt(\1)", s2)
        s2 = re.sub(r"\\sqrt\s*(\d+|[a-z])", r"sqrt(\1)", s2)
        if s2 == s:
            break
        s = s2
    s = s.replace("\\pi", " pi ").replace("\\cdot", "*").replace("\\times", "*")
    s = s.replace("\\infty", " oo ").replace("^", "**").replace("{", "(").replace("}", ")")
    s = s.replace("\\", " ")
    return re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)


def to_sympy(answer: str) -> Any:
    """A sympy expression (or tuple of them) for a LaTeX/plain answer, or None."""
    import sympy
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    s = normalize_answer(answer)
    if not s or len(s) > 200:
        return None
    text = _latex_to_sympy_text(s)
    trans = standard_transformations + (implicit_multiplication_application, convert_xor)
    try:
        if re.fullmatch(r"[\(\[].*,.*[\)\]]", text.strip()):
            parts = _split_top_level(text.strip()[1:-1])
            return tuple(parse_expr(p, transformations=trans, evaluate=True) for p in parts)
        expr = parse_expr(text, transformations=trans, evaluate=True)
        return expr if isinstance(expr, sympy.Basic) else None
    except Exception:  # sympy raises many kinds on odd input
        return None


def _split_top_level(s: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def _sympy_equal(a: Any, b: Any) -> bool:
    import sympy

    if isinstance(a, tuple) or isinstance(b, tuple):
        return (isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b)
                and all(_sympy_equal(x, y) for x, y in zip(a, b, strict=True)))
    try:
        diff = sympy.simplify(a - b)
        if diff == 0:
            return True
        val = complex(sympy.N(diff))
        return abs(val) < 1e-9 * max(1.0, abs(complex(sympy.N(b))))
    except Exception:
        return False


def answers_equal(pred: str | None, gold: str | None) -> bool:
    """Whether two final answers are the same: text, exact number, then sympy equivalence."""
    if pred is None or gold is None:
        return False
    np_, ng = normalize_answer(pred), normalize_answer(gold)
    if not np_ or not ng:
        return False
    if np_ == ng or np_.replace(" ", "") == ng.replace(" ", ""):
        return True
    vp, vg = numeric_value(pred), numeric_value(gold)
    if vp is not None and vg is not None:
        return vp == vg
    sp, sg = to_sympy(pred), to_sympy(gold)
    if sp is None or sg is None:
        return False
    return _sympy_equal(sp, sg)


CORRECT, INCORRECT, UNFINISHED = "correct", "incorrect", "incorrect_unfinished"


def grade_sample(solution: str, gold: str | None) -> str:
    """CORRECT when the solution *states* a final answer equal to gold (exact or
    sympy-equivalent), UNFINISHED when it states none (never correct: no fallback to the last
    number), else INCORRECT."""
    stated = stated_answer(solution)
    if stated is None:
        return UNFINISHED
    return CORRECT if answers_equal(stated, gold) else INCORRECT


def grade(solution: str, gold: str | None) -> bool:
    """Whether a solution states a final answer equal to the gold answer."""
    return grade_sample(solution, gold) == CORRECT
