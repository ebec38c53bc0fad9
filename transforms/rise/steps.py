"""Splitting a solution into steps.

Reads solution text and returns `Step`s (character spans into it): GSM8K solutions by line with
the final `#### N` line left out; "Step k:" solutions by marker; other text (MATH style) by
sentence, never splitting inside `$...$`, `\\[...\\]` or `\\begin...\\end` math. Text outside every
step (the answer line, blank lines) stays where it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

STEP_MARK = re.compile(r"(?im)^[ \t]*(?:\*\*|#+[ \t]*)?step[ \t]*\d+[ \t]*[:.)]")
_HASH_LINE = re.compile(r"(?m)^[ \t]*####.*$")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$]*\$|\\\[.*?\\\]|\\\(.*?\\\)|\\begin\{(\w+\*?)\}.*?\\end\{\1\}",
                   re.S)
_SENT_END = re.compile(r"(?<=[.!?])[ \t]+(?=[A-Z\\$(])|\n+")


@dataclass(frozen=True)
class Step:
    index: int
    start: int
    end: int
    text: str


def solution_style(text: str) -> str:
    """'gsm8k', 'steps' ("Step k:" markers), or 'prose' (MATH-style and other text)."""
    if "<<" in text or _HASH_LINE.search(text):
        return "gsm8k"
    if len(STEP_MARK.findall(text)) >= 2:
        return "steps"
    return "prose"


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _make(text: str, spans: list[tuple[int, int]]) -> list[Step]:
    out = []
    for s, e in spans:
        s, e = _trimmed(text, s, e)
        if e > s:
            out.append(Step(len(out), s, e, text[s:e]))
    return out


def _split_lines(text: str) -> list[Step]:
    answer = _HASH_LINE.search(text)
    limit = answer.start() if answer else len(text)
    spans, pos = [], 0
    for line in text[:limit].split("\n"):
        spans.append((pos, pos + len(line)))
        pos += len(line) + 1
    return _make(text, spans)


def _split_markers(text: str) -> list[Step]:
    starts = [m.start() for m in STEP_MARK.finditer(text)]
    bounds = starts + [len(text)]
    spans = [(bounds[i], bounds[i + 1]) for i in range(len(starts))]
    if starts and text[:starts[0]].strip():  # a preamble before "Step 1:" is a step of its own
        spans.insert(0, (0, starts[0]))
    return _make(text, spans)


def split_sentences(text: str) -> list[Step]:
    masked = list(text)
    for m in _MATH.finditer(text):  # blank out math so its '.' and newlines never split
        for i in range(m.start() + 1, m.end() - 1):
            if masked[i] in ".!?\n":
                masked[i] = "_"
    flat = "".join(masked)
    spans, last = [], 0
    for m in _SENT_END.finditer(flat):
        spans.append((last, m.start()))
        last = m.end()
    spans.append((last, len(text)))
    return _make(text, spans)


def split_steps(text: str) -> list[Step]:
    """The solution's steps, in order, as spans into `text`."""
    style = solution_style(text)
    if style == "gsm8k":
        return _split_lines(text)
    if style == "steps":
        return _split_markers(text)
    return split_sentences(text)


def replace_span(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def diff_span(old: str, new: str) -> tuple[int, int, int]:
    """(start, end_in_new, end_in_old) of the single region where `new` differs from `old`."""
    n = min(len(old), len(new))
    s = 0
    while s < n and old[s] == new[s]:
        s += 1
    k = 0
    while k < n - s and old[len(old) - 1 - k] == new[len(new) - 1 - k]:
        k += 1
    return s, len(new) - k, len(old) - k
