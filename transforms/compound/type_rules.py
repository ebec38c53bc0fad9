"""Per-type rules of a compound question: does it have the structure of its category?

Reads: the category, the compound question and its sub-questions. Writes: a list of failures
({"rule": name, ...}); empty when the question has its type's structure. Keyword and pattern
checks on the case-folded text, so they are cheap and explainable; the judge's `matches_type`
verdict is the semantic check beside them. Rules:

- Factual-Statement: `factual_asks_opinion` (a sub-question asks what would happen, what to
  choose or what to do: that is another type).
- Cause-and-Effect: `cause_effect_no_cause` (nothing asks why / for a cause or reason),
  `cause_effect_no_effect` (nothing asks for an effect, consequence or what follows).
- Hypothetical-Analysis: `hypothetical_no_condition` (no "if", "suppose", "imagine", "were
  to", ... : no changed condition to reason about).
- Comparison-and-Selection: `comparison_fewer_than_two_options` (no two distinct options named
  around "between ... and", "or", "versus", "compare ... with", "differ from", ...),
  `comparison_no_choice` (nothing asks which to choose, prefer or recommend).
- Evaluation-and-Suggestion: `evaluation_no_assessment` (nothing asks how good, effective,
  risky, strong or weak), `evaluation_no_suggestion` (nothing asks what to do, change,
  improve or recommend).
Pure, no Beam, no model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from schemas.text import fold_text
from transforms.compound.rule_check import STOPWORDS

# Words that can name an option: everything but function words ("list" and "name" are task
# words in questions, but "a list" and "a tuple" are options).
_FUNCTION_WORDS = STOPWORDS - {"explain", "describe", "tell", "give", "list", "name", "say",
                               "state", "answer", "question", "questions"}
_WORD = re.compile(r"[^\W_]+")


def _words(*terms: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(terms) + r")\b")


CAUSE = _words(r"why", r"causes?", r"caused", r"reasons?", r"due to", r"because",
               r"what (?:makes|made|led to|leads to|drives|drove|explains?)",
               r"how (?:did|does|do) .{1,60} (?:come about|arise|happen)", r"origins?",
               r"responsible for")
EFFECT = _words(r"effects?", r"consequences?", r"results?", r"resulted", r"impacts?",
                r"outcomes?", r"affects?", r"affected", r"leads? to", r"led to",
                r"what (?:happens|happened|follows|followed|changes|changed)",
                r"how (?:did|does|do|will|would) .{1,60} (?:change|affect|influence)",
                r"implications?", r"influences?")
CONDITION = _words(r"if", r"suppose", r"supposing", r"imagine", r"were to", r"had .{1,40} "
                   r"(?:not|never|been)", r"hypothetically", r"assuming", r"in case",
                   r"what would", r"would happen", r"instead of", r"unless")
CHOICE = _words(r"which", r"choose", r"choosing", r"chosen", r"select", r"selecting",
                r"prefer", r"preferable", r"pick", r"better", r"best", r"recommend",
                r"recommended", r"opt", r"go with", r"more suitable", r"most suitable",
                r"should (?:i|we|you|one|they|he|she|a|an|the) .{1,60}\bor")
ASSESS = _words(r"evaluate", r"evaluation", r"assess", r"assessment", r"how (?:well|good|bad|"
                r"effective|useful|reliable|safe|risky|strong|weak|successful|accurate|"
                r"appropriate|suitable|important|valuable|realistic)",
                r"strengths?", r"weaknesses?", r"pros", r"cons", r"advantages?",
                r"disadvantages?", r"drawbacks?", r"benefits?", r"risks?", r"limitations?",
                r"effective(?:ness)?", r"quality", r"worth", r"judge", r"rate", r"critique",
                r"is it (?:a )?(?:good|bad|wise|reasonable)", r"sound")
SUGGEST = _words(r"suggest", r"suggestions?", r"recommend", r"recommendations?", r"advice",
                 r"advise", r"should", r"improve", r"improvements?", r"tips?",
                 r"what (?:can|could|might) .{1,60} do", r"how (?:can|could|might) .{1,60}",
                 r"steps?", r"change", r"better way", r"ought")
OPINION = _words(r"would happen", r"what if", r"suppose", r"imagine", r"should", r"recommend",
                 r"choose", r"prefer", r"suggest", r"which is better")

# Two named options: the groups a and b are the two sides of the connector.
_END = r"(?=[,.;:?!]|\band\b|\bfor\b|\bwhen\b|\bif\b|$)"
OPTION_PAIRS = [re.compile(p) for p in (
    r"\bbetween (?P<a>.+?) and (?P<b>.+?)" + _END,
    r"\bcompar(?:e|ing|ed) (?P<a>.+?) (?:with|to|and|against) (?P<b>.+?)" + _END,
    r"\b(?P<a>[\w' -]+?) differs? from (?P<b>.+?)" + _END,
    r"\b(?:do|does|did) (?P<a>.+?) and (?P<b>.+?) (?:differ|compare)",
    r"\b(?P<a>[\w' -]+?),? (?:or|versus|vs\.?) (?P<b>[\w' -]+?)" + _END,
    r"\b(?P<a>[\w' -]+?) (?:than) (?P<b>[\w' -]+?)" + _END,
)]


def _text(compound_question: str, sub_questions: Sequence[str]) -> str:
    return fold_text(" ".join([compound_question, *sub_questions]))


def named_options(text: str) -> list[tuple[str, str]]:
    """Pairs of options the text names (each side with a content word the other lacks)."""
    pairs = []
    for pattern in OPTION_PAIRS:
        for m in pattern.finditer(text):
            a, b = (set(_WORD.findall(m.group(g))) - _FUNCTION_WORDS for g in ("a", "b"))
            if a - b and b - a:
                pairs.append((m.group("a").strip(), m.group("b").strip()))
    return pairs


def _factual(text: str) -> list[dict[str, Any]]:
    hit = OPINION.search(text)
    return [{"rule": "factual_asks_opinion", "marker": hit.group(0)}] if hit else []


def _cause_effect(text: str) -> list[dict[str, Any]]:
    fails = []
    if not CAUSE.search(text):
        fails.append({"rule": "cause_effect_no_cause"})
    if not EFFECT.search(text):
        fails.append({"rule": "cause_effect_no_effect"})
    return fails


def _hypothetical(text: str) -> list[dict[str, Any]]:
    return [] if CONDITION.search(text) else [{"rule": "hypothetical_no_condition"}]


def _comparison(text: str, partner_subject: bool) -> list[dict[str, Any]]:
    fails = []
    if not named_options(text):
        fails.append({"rule": "comparison_fewer_than_two_options",
                      "partner": partner_subject})
    if not CHOICE.search(text):
        fails.append({"rule": "comparison_no_choice"})
    return fails


def _evaluation(text: str) -> list[dict[str, Any]]:
    fails = []
    if not ASSESS.search(text):
        fails.append({"rule": "evaluation_no_assessment"})
    if not SUGGEST.search(text):
        fails.append({"rule": "evaluation_no_suggestion"})
    return fails


_RULES: dict[str, Callable[[str], list[dict[str, Any]]]] = {
    "Factual-Statement": _factual,
    "Cause-and-Effect": _cause_effect,
    "Hypothetical-Analysis": _hypothetical,
    "Evaluation-and-Suggestion": _evaluation,
}

TYPE_RULES: tuple[str, ...] = (
    "factual_asks_opinion", "cause_effect_no_cause", "cause_effect_no_effect",
    "hypothetical_no_condition", "comparison_fewer_than_two_options", "comparison_no_choice",
    "evaluation_no_assessment", "evaluation_no_suggestion")


def check_type(category: str, compound_question: str, sub_questions: Sequence[str],
               partner_subject: bool = False) -> list[dict[str, Any]]:
    """Failures of the category's structure rules (see the module docstring)."""
    text = _text(compound_question, sub_questions)
    if category == "Comparison-and-Selection":
        return _comparison(text, partner_subject)
    if category not in _RULES:
        raise KeyError(f"unknown category {category!r}")
    return _RULES[category](text)
