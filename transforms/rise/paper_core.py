"""RISE as its authors run it (kaishxu/RISE), step for step. Pure code: requests out, rows back.

Solve: system "You are a helpful assistant.", user = question + SOLVE_SUFFIX, the assistant turn
prefilled with SOLVE_PREFILL, which the model continues (k samples; a sample's text is prefill +
continuation, as their chosen/rejected texts are). A sample cut by the token limit is
`truncated`: never chosen, never rejected. Chosen candidates are correct samples without one of
their error phrases (CHOSEN_PHRASES; skipped when the question holds "wrong" or "correct");
rejected candidates are the incorrect samples; one random of each is the full pair. The chosen
text is split on "\\nStep k:" into step jobs (every step): the step's last <= 4 sentences (their
split) are the text to edit, the error type is drawn among those that fit it, and the editor is
asked greedily with the edit prefill; the edit is read between the fences and dropped when it
holds one of EDIT_PHRASES. The rejected step is the chosen step with the edit in place and
`\\boxed{}` removed; one surviving step pair per problem is kept (stage: paper_path).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from transforms.llm.prompts import template_version
from transforms.rise.filters import self_corrects

SYSTEM = "You are a helpful assistant."
SOLVE_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."
SOLVE_PREFILL = "Let's think step by step.\nStep 1: "
EDIT_PREFILL = "The edited Current Step:\n```\n"
EXEMPT = ("wrong", "correct")  # a question holding one of these skips the phrase filters
CHOSEN_PHRASES = ("a mistake", "misunderstanding", "misleading", "misinterpreted",
                  "Let's correct", "let's correct", "The correct", "Let's reconsider",
                  "let's reconsider", "python", "This is not correct", "this is not correct")
EDIT_PHRASES = ("a mistake", "mistakenly", "misleading", "Misleading", "misinterpreted",
                "Let's correct", "let's correct", "The correct", "Let's reconsider",
                "let's reconsider", "incorrect", "wrong", "python", "This is not correct",
                "this is not correct")
TRUNCATED = "truncated"
_STEP = re.compile(r"\nStep \d+:")
_DIGITS = re.compile(r"\d+")

# One instruction per error type (the authors' seven edit kinds, worded by us).
EDIT_INSTRUCTIONS = {
    "change_value": "Change one number in the current step so that the calculation becomes "
                    "wrong.",
    "change_values": "Change one number, or a group of numbers that belong together, in the "
                     "current step so that the calculation becomes wrong.",
    "wrong_substitution": "Change a value or a symbol in the current step so that a wrong "
                          "value is substituted.",
    "delete_term": "Remove one term of a calculation in the current step so that the "
                   "calculation becomes wrong.",
    "change_operator": "Change one operator (such as +, -, *, /) in the current step so that "
                       "the calculation becomes wrong.",
    "swap_terms": "Exchange two terms of a calculation in the current step so that the "
                  "calculation becomes wrong.",
    "misread_question": "Change a group of related words in the current step so that it "
                        "reflects a misreading of the question.",
}
_EDIT_TEMPLATE = ("Question:\n```\n{question}\n```\n\nInitial Answer:\n```\n{answer}\n```\n\n"
                  "Current Step:\n```\n{text}\n```\n\n{instruction} Do not say that an error "
                  "was made.")
SOLVE_VERSION = "rise.paper_solve@" + template_version(SYSTEM + SOLVE_SUFFIX + SOLVE_PREFILL)
EDIT_VERSION = "rise.paper_edit@" + template_version(
    _EDIT_TEMPLATE + EDIT_PREFILL + repr(sorted(EDIT_INSTRUCTIONS.items())))


def solve_messages(question: str) -> list[dict[str, str]]:
    """The system and user messages of the solve request (the prefill goes separately)."""
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": question + SOLVE_SUFFIX}]


def has_phrase(question: str, text: str, phrases: tuple[str, ...]) -> bool:
    """Whether `text` holds one of `phrases` (never when the question holds wrong/correct)."""
    if any(w in question for w in EXEMPT):
        return False
    return any(p in text for p in phrases)


@dataclass
class StepJob:
    step: str  # the number k of "Step k:"
    initial_reason_steps: str  # the solution up to and including "\nStep k:"
    chosen: str  # the step's text after the marker, up to the next "\nStep j:"
    text_to_edit: str  # its last <= 4 sentences, stripped
    error_type: str
    last_step: bool


def step_splits(solution: str) -> list[tuple[str, str, str, bool]]:
    """(k, initial_reason_steps, chosen step text, is last) for each "\\nStep k:" marker; a
    marker is located at its first occurrence, as their `str.index` does."""
    marks = _STEP.findall(solution)
    out = []
    for i, mark in enumerate(marks):
        pos = solution.index(mark) + len(mark)
        end = solution.index(marks[i + 1]) if i + 1 < len(marks) else len(solution)
        out.append((mark[6:-1], solution[:pos], solution[pos:end], i == len(marks) - 1))
    return out


def sentences(text: str) -> list[str]:
    """Their sentence split: non-empty lines, each cut after every ". ", pieces stripped."""
    out: list[str] = []
    for line in (x for x in text.split("\n") if x != ""):
        cuts = [0] + [m.end() for m in re.finditer(r"\. ", line)]
        out.extend(line[a:b] for a, b in zip(cuts, cuts[1:] + [len(line)], strict=True))
    return [s.strip() for s in out if s.strip()]


def text_to_edit(step_text: str, last: int = 4) -> str:
    """The step's last `last` sentences (from the first occurrence of the first of them)."""
    sents = sentences(step_text)
    if last > 0 and len(sents) >= last:
        step_text = step_text[step_text.index(sents[-last]):]
    return step_text.strip()


def error_types_for(text: str) -> list[str]:
    """The error types that fit a text: several numbers → change_values, one → change_value;
    "=" → wrong_substitution, delete_term, change_operator, swap_terms; neither →
    misread_question."""
    digits = len(_DIGITS.findall(text))
    types = ["change_values"] if digits > 1 else ["change_value"] if digits == 1 else []
    if "=" in text:
        types += ["wrong_substitution", "delete_term", "change_operator", "swap_terms"]
    return types or ["misread_question"]


def step_jobs(solution: str, rng: random.Random, last_sentences: int = 4,
              allowed: tuple[str, ...] | None = None) -> list[StepJob]:
    """One edit job per step of the chosen solution, error type drawn among those that fit."""
    jobs = []
    for k, prefix, chosen, last in step_splits(solution):
        target = text_to_edit(chosen, last_sentences)
        types = [t for t in error_types_for(target) if allowed is None or t in allowed]
        if types:
            jobs.append(StepJob(k, prefix, chosen, target, rng.choice(types), last))
    return jobs


def edit_messages(question: str, job: StepJob) -> list[dict[str, str]]:
    """System and user messages of one edit request (the prefill goes separately)."""
    user = _EDIT_TEMPLATE.format(question=question, answer=job.initial_reason_steps,
                                 text=job.text_to_edit,
                                 instruction=EDIT_INSTRUCTIONS[job.error_type])
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def extract_edit(continuation: str) -> str | None:
    """The edit between the fences (the prefill opened the first one), or None."""
    m = re.search(r"```\n(.+?)\n```", "```\n" + continuation, re.S)
    return m.group(1) if m else None


def _boxed_end(text: str, start: int) -> int | None:
    """Index just past the brace that closes the `\\boxed{` at `start`, or None."""
    depth = 0
    for i in range(start + len("\\boxed"), len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


_WRAPPERS = (("\\( ", " \\)"), ("\\[\n", "\n\\]"), ("\\(", "\\)"), ("\\[", "\\]"), ("$", "$"))


def unbox(text: str) -> str:
    """`\\boxed{X}` → X everywhere; a math wrapper right around it (\\( \\), \\[ \\], $ $) goes too."""
    while (s := text.find("\\boxed{")) >= 0:
        e = _boxed_end(text, s)
        if e is None:
            break
        inner = text[s + len("\\boxed{"):e - 1]
        a, b = s, e
        for left, right in _WRAPPERS:
            if text[:s].endswith(left) and text[e:].startswith(right):
                a, b = s - len(left), e + len(right)
                break
        text = text[:a] + inner + text[b:]
    return text


@dataclass
class PaperSamples:
    """One problem's graded samples and what they yield."""

    verdicts: list[str]
    chosen: str | None = None
    rejected: str | None = None
    reasons: list[str] = field(default_factory=list)
    jobs: list[StepJob] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {v: self.verdicts.count(v) for v in ("correct", "incorrect", TRUNCATED)}


def pick_full_pair(question: str, texts: list[str], verdicts: list[str], rng: random.Random,
                   extra_phrases: bool = False) -> PaperSamples:
    """The full pair (random usable correct vs random incorrect) and its verdict counts.
    `extra_phrases` (ours): also skip chosen texts that our self-correction patterns flag."""
    out = PaperSamples(verdicts)
    pos = [t for t, v in zip(texts, verdicts, strict=True) if v == "correct"
           and not has_phrase(question, t, CHOSEN_PHRASES)
           and not (extra_phrases and self_corrects(t))]
    neg = [t for t, v in zip(texts, verdicts, strict=True) if v == "incorrect"]
    if not pos:
        out.reasons.append("no_usable_correct_sample" if "correct" in verdicts
                           else "no_correct_sample")
    if not neg:
        out.reasons.append("no_incorrect_sample")
    if pos and neg:
        out.chosen, out.rejected = rng.choice(pos), rng.choice(neg)
    return out
