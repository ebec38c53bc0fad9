"""Grading as the RISE authors grade (their eval_math.py, which uses DeepSeek-Math's answer
extraction and equivalence), re-written here.

Extraction, first rule that applies: "final answer is $X$. I hope" → X; any `boxed` → the
contents of every `\\boxed{}`; "he answer is" → what follows its last occurrence; else the last
number of the text (commas removed). Each candidate keeps its first line and loses a leading
":" and trailing "." / "/". A question that asks for values "separated by commas" splits the
answer on commas; `\\text{ and }` splits too. Equivalence: repeated predictions are dropped and
the last len(gold) kept; each must equal its gold answer as text, as a number (relative
tolerance 1e-4, also as a percentage), or symbolically (sympy). A GSM8K gold answer (`#### N`
or a whole solution ending so) is reduced to N.
"""

from __future__ import annotations

import math
import re

from transforms.rise.answers import answers_equal, extract_boxed, normalize_answer

_NUM = re.compile(r"-?\d*\.?\d+")
_TEXT_AND = re.compile(r"\\text\{\s*and\s*\}")
_HASH = re.compile(r"####\s*(.+?)\s*$", re.S)


def _raw_predictions(text: str) -> list[str]:
    if "final answer is $" in text and "$. I hope" in text:
        return [text.split("final answer is $", 1)[1].split("$. I hope", 1)[0].strip()]
    if "boxed" in text:
        return extract_boxed(text)
    if "he answer is" in text:
        return [text.split("he answer is")[-1].strip()]
    nums = _NUM.findall(text.replace(",", ""))
    return [nums[-1]] if nums else []


def _clean(ans: str) -> str:
    ans = ans.strip().split("\n")[0]
    return ans.lstrip(":").rstrip(".").rstrip("/").strip()


def extract_answers(question: str, text: str) -> list[str]:
    """The answers a solution gives, in order (empty: none found)."""
    out: list[str] = []
    for raw in _raw_predictions(text):
        ans = _clean(raw)
        if "separated by commas" in question and not any(ch in ans for ch in "()[]"):
            out.extend(a.strip() for a in ans.split(","))
        elif _TEXT_AND.search(ans):
            out.extend(a.strip() for a in _TEXT_AND.sub("[SEP]", ans).split("[SEP]"))
        else:
            out.append(ans.strip())
    return [a for a in out if a]


def gold_answers(gold: str) -> list[str]:
    """The gold answer(s): a GSM8K `#### N` tail is reduced to N."""
    m = _HASH.search(gold)
    return [m.group(1).strip() if m else gold.strip()]


def _number(s: str) -> float | None:
    t = normalize_answer(s).replace(",", "").replace(" ", "")
    pct = t.endswith("%")
    t = t.rstrip("%").rstrip("\\")
    try:
        v = float(t)
    except ValueError:
        return None
    return v / 100 if pct else v


def math_equal(pred: str, ref: str) -> bool:
    """Text, number (rel. tolerance 1e-4, percentages too) or symbolic equality."""
    a, b = _number(pred), _number(ref)
    if a is not None and b is not None:
        return any(math.isclose(a, r, rel_tol=1e-4, abs_tol=1e-12) for r in (b, b / 100, b * 100))
    return answers_equal(pred, ref)


def grade_paper(question: str, text: str, gold: str) -> bool:
    """Whether the solution's answer equals the gold answer, as the authors grade."""
    preds = extract_answers(question, text)
    refs = gold_answers(gold)
    if not preds or not refs:
        return False
    uniq: list[str] = []
    for p in preds:
        if p not in uniq:
            uniq.append(p)
    preds = uniq[-len(refs):]
    return len(preds) == len(refs) and all(math_equal(p, r) for p, r in zip(preds, refs,
                                                                          strict=True))
