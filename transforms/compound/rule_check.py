"""The generic rule check of a compound item: shape of the question, and each sub-question
answered. (The per-type rules live in type_rules.py.)

Reads: compound question, sub-questions, reference answer, sub-answers, and the seed material
the question was made from (context first). Writes: the failing rules in the order of
QUESTION_RULES and ANSWER_RULES, each with its detail. Pure, no Beam, no model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.text import fold_text

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Function words and question scaffolding: they carry no subject, so they never count as shared.
STOPWORDS = frozenset([
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each",
    "either", "else", "ever", "every", "few", "for", "from", "further", "had", "has", "have",
    "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if",
    "in", "into", "is", "it", "its", "itself", "just", "let", "like", "may", "me", "might",
    "more", "most", "much", "must", "my", "myself", "neither", "no", "nor", "not", "now", "of",
    "off", "on", "once", "one", "only", "or", "other", "ought", "our", "ours", "ourselves",
    "out", "over", "own", "per", "rather", "same", "shall", "she", "should", "so", "some",
    "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there",
    "these", "they", "this", "those", "through", "thus", "to", "too", "under", "until", "up",
    "upon", "us", "very", "was", "we", "were", "what", "whatever", "when", "where", "whether",
    "which", "while", "who", "whom", "whose", "why", "will", "with", "within", "without",
    "would", "yet", "you", "your", "yours", "yourself", "yourselves", "explain", "describe",
    "tell", "give", "list", "name", "say", "state", "please", "briefly", "answer", "question",
    "questions",
])


# First words that make a sentence a question or a task even without a question mark.
QUESTION_STARTS = frozenset([
    "what", "why", "how", "which", "who", "whom", "whose", "when", "where", "whether", "is",
    "are", "was", "were", "do", "does", "did", "can", "could", "should", "would", "will",
    "shall", "may", "might", "has", "have", "had", "explain", "describe", "compare", "list",
    "name", "give", "suggest", "evaluate", "assess", "recommend", "identify", "tell",
])


def is_question(text: str) -> bool:
    """Ends with '?' or starts with an interrogative or task word."""
    stripped = text.strip()
    if stripped.endswith("?"):
        return True
    words = _WORD.findall(fold_text(stripped))
    return bool(words) and words[0] in QUESTION_STARTS


def _stem(word: str) -> str:
    """A deliberately small suffix stripper, applied alike to both sides of every comparison."""
    for suffix, repl, keep in (("ies", "y", 2), ("sses", "ss", 2), ("ches", "ch", 2),
                               ("shes", "sh", 2), ("xes", "x", 2), ("ing", "", 3),
                               ("ed", "", 3), ("ly", "", 3)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep:
            return word[: len(word) - len(suffix)] + repl
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def content_words(text: str) -> set[str]:
    """Stemmed, case-folded words of `text` that are not stopwords (digits always count)."""
    out = set()
    for w in _WORD.findall(fold_text(text)):
        if w in STOPWORDS or (len(w) < 2 and not w.isdigit()):
            continue
        out.add(_stem(w))
    return out


def overlap(part: str, whole: str) -> float:
    """Share of `part`'s content words found in `whole` (0 when `part` has none)."""
    words = content_words(part)
    if not words:
        return 0.0
    return len(words & content_words(whole)) / len(words)


def present_in(sub_question: str, compound_question: str, min_overlap: float) -> bool:
    """Verbatim after folding, or enough of its content words appear in the compound question."""
    folded_sub = fold_text(sub_question)
    if folded_sub and folded_sub in fold_text(compound_question):
        return True
    return bool(content_words(sub_question)) and \
        overlap(sub_question, compound_question) >= min_overlap


QUESTION_RULES: tuple[str, ...] = (
    "too_few_sub_questions", "too_many_sub_questions", "duplicate_sub_questions",
    "sub_question_not_a_question", "sub_question_not_grounded", "sub_question_not_in_question")
ANSWER_RULES: tuple[str, ...] = (
    "unanswered_sub_question", "extra_sub_answers", "empty_sub_answer", "sub_answer_off_topic",
    "sub_answer_echoes_question", "answer_omits_sub_answer")


@dataclass(frozen=True)
class RuleResult:
    ok: bool
    reason: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)

    def detail(self) -> dict[str, Any]:
        return {"check": "rule", "failures": self.failures}


@dataclass(frozen=True)
class RuleParams:
    min_sub_questions: int = 2
    max_sub_questions: int = 4
    presence_min_overlap: float = 0.5
    min_shared_words: int = 1
    answer_min_overlap: float = 0.5
    min_seed_words: int = 1


def check_question(compound_question: str, sub_questions: Sequence[str],
                   params: RuleParams, seed_text: str | None = None) -> list[dict[str, Any]]:
    """Failures of the question alone: count, duplicates, each a question, each grounded in the
    seed material (shares `min_seed_words` content words with `seed_text`, when given), each
    present in the compound question."""
    fails: list[dict[str, Any]] = []
    n = len(sub_questions)
    if n < params.min_sub_questions:
        fails.append({"rule": "too_few_sub_questions", "count": n,
                      "min": params.min_sub_questions})
    if n > params.max_sub_questions:
        fails.append({"rule": "too_many_sub_questions", "count": n,
                      "max": params.max_sub_questions})
    seen: dict[str, int] = {}
    for i, sq in enumerate(sub_questions):
        key = fold_text(sq)
        if key in seen:
            fails.append({"rule": "duplicate_sub_questions", "index": i, "same_as": seen[key]})
        seen.setdefault(key, i)
    seed_words = content_words(seed_text) if seed_text is not None else None
    for i, sq in enumerate(sub_questions):
        if not is_question(sq):
            fails.append({"rule": "sub_question_not_a_question", "index": i})
        if seed_words is not None:
            shared = content_words(sq) & seed_words
            if len(shared) < params.min_seed_words:
                fails.append({"rule": "sub_question_not_grounded", "index": i,
                              "shared": sorted(shared)})
    for i, sq in enumerate(sub_questions):
        if not present_in(sq, compound_question, params.presence_min_overlap):
            fails.append({"rule": "sub_question_not_in_question", "index": i,
                          "overlap": round(overlap(sq, compound_question), 3)})
    return fails


def check_answers(sub_questions: Sequence[str], answer: str, sub_answers: Sequence[str],
                  params: RuleParams) -> list[dict[str, Any]]:
    """Failures of the answers: one non-empty, on-topic sub-answer per sub-question, each
    carried into the reference answer."""
    fails: list[dict[str, Any]] = []
    if len(sub_answers) < len(sub_questions):
        fails.extend({"rule": "unanswered_sub_question", "index": i}
                     for i in range(len(sub_answers), len(sub_questions)))
    elif len(sub_answers) > len(sub_questions):
        fails.append({"rule": "extra_sub_answers", "count": len(sub_answers),
                      "expected": len(sub_questions)})
    for i, (sq, sa) in enumerate(zip(sub_questions, sub_answers, strict=False)):
        if not sa.strip():
            fails.append({"rule": "empty_sub_answer", "index": i})
            continue
        shared = content_words(sq) & content_words(sa)
        if len(shared) < params.min_shared_words:
            fails.append({"rule": "sub_answer_off_topic", "index": i, "shared": sorted(shared)})
        elif not content_words(sa) - content_words(sq):
            fails.append({"rule": "sub_answer_echoes_question", "index": i})
        if overlap(sa, answer) < params.answer_min_overlap:
            fails.append({"rule": "answer_omits_sub_answer", "index": i,
                          "overlap": round(overlap(sa, answer), 3)})
    return fails


def rule_check(compound_question: str, sub_questions: Sequence[str], answer: str,
               sub_answers: Sequence[str], params: RuleParams | None = None,
               seed_text: str | None = None) -> RuleResult:
    """Every rule at once; the reason is the first failure in the order of the docstring."""
    params = params or RuleParams()
    fails = check_question(compound_question, sub_questions, params, seed_text) + \
        check_answers(sub_questions, answer, sub_answers, params)
    if not fails:
        return RuleResult(ok=True)
    return RuleResult(ok=False, reason=fails[0]["rule"], failures=fails)
