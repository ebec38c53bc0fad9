"""Per-type rules of a compound question: does it have the structure of its category?

Reads: the category, the compound question and its sub-questions. Writes: a list of failures
({"rule": name, ...}); empty when the question has its type's structure. Keyword and pattern
checks on the case-folded text, cheap and explainable; the judge's `matches_type` verdict is the
semantic check beside them. The paper does not publish its rule list; these rules are fitted
to the authors' released Compound-QA questions (bench/compound_released.py measures them on
the released data and on a labelled negative set, data/compound_negatives.jsonl).

Two kinds of rule. A type's own signal must be present; and a question whose opening frames
another type (it opens with "Why", "If"/"Assuming", "Compared with"/"In contrast to", or "How
would you assess/evaluate") belongs to that type, not this one (`<type>_opens_as_other`).

- Factual-Statement: `factual_asks_opinion` (a changed condition, a choice, an assessment or a
  recommendation is asked), `factual_opens_as_other`.
- Cause-and-Effect: `cause_effect_no_cause` (nothing asks why / for causes, reasons, factors),
  `cause_effect_no_effect` (nothing asks for an effect, impact, consequence, role or
  significance), `cause_effect_opens_as_other`.
- Hypothetical-Analysis: `hypothetical_no_condition` (no "if", "assuming", "suppose",
  "imagine", "were to", "in a scenario", ...), `hypothetical_opens_as_other`.
- Comparison-and-Selection: `comparison_no_contrast` (nothing compares, contrasts or asks how
  options differ), `comparison_no_choice` (nothing asks which, what is better / more / best,
  or to choose / prefer / recommend), `comparison_opens_as_other`.
- Evaluation-and-Suggestion: `evaluation_no_assessment_or_suggestion` (neither asks how good,
  effective, strong or weak something is, nor what to improve, recommend or do),
  `evaluation_opens_as_other`.
Pure, no Beam, no model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from schemas.text import fold_text


def _words(*terms: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(terms) + r")\b")


CAUSE = _words(r"why", r"causes?", r"caused", r"causing", r"reasons?", r"factors?",
               r"due to", r"because", r"led to", r"leads? to", r"lead(?:ing)? (?:\w+ )?to",
               r"contribut\w*", r"driv(?:e|es|en|ing|ers?)", r"drove", r"prompt(?:s|ed)?",
               r"motivat\w+", r"origins?", r"responsible for", r"what (?:makes|made|explains?)",
               r"how (?:did|does|do|has|have) .{1,60} (?:come about|arise|emerge|develop)",
               r"stem(?:s|med)? from", r"result(?:s|ed)? from", r"triggers?", r"triggered")
EFFECT = _words(r"effects?", r"consequences?", r"results?", r"resulted", r"impacts?",
                r"impacted", r"outcomes?", r"affects?", r"affected", r"affecting", r"leads? to",
                r"led to", r"implications?", r"influenc\w+", r"significance", r"significant",
                r"roles?", r"benefits?", r"bring", r"brought", r"changes?", r"changed",
                r"contribut\w*", r"what (?:happens|happened|follows|followed)", r"means?",
                r"shap(?:e|ed|es|ing)", r"reflects?", r"purpose", r"importance", r"important",
                r"advantages?", r"disadvantages?", r"challenges?", r"implicat\w+",
                r"caus(?:e|es|ed|ing)", r"trigger\w*", r"relat\w+", r"connect\w*", r"link\w*",
                r"ramifications?", r"repercussions?", r"response", r"react\w*", r"evolv\w+",
                r"develop\w*", r"led")
CONDITION = _words(r"if", r"suppose", r"supposing", r"imagine", r"imagining", r"assum\w+",
                   r"were to", r"hypothetical\w*", r"in (?:a|the) (?:case|event|scenario)",
                   r"in case", r"scenario", r"what would", r"would (?:happen|change|be)",
                   r"had .{1,40} (?:not|never|been)", r"unless", r"given that", r"provided that",
                   r"what might", r"could have", r"would have", r"envision\w*", r"predict\w*")
CONTRAST = _words(r"compar\w+", r"contrast\w*", r"differ\w*", r"versus", r"vs", r"unlike",
                  r"as opposed to", r"rather than", r"whereas", r"similar\w*", r"distinguish\w*",
                  r"relative to", r"against", r"than", r"alternatives?", r"options?", r"or",
                  r"between", r"both", r"either", r"trade-?offs?")
CHOICE = _words(r"which", r"choose", r"choosing", r"chosen", r"choice", r"select\w*", r"opt",
                r"prefer\w*", r"pick", r"better", r"best", r"worse", r"worst", r"more",
                r"most", r"less", r"least", r"superior", r"recommend\w*", r"go with",
                r"suitable", r"ideal", r"favou?r\w*", r"stronger", r"greater", r"higher",
                r"lower", r"faster", r"easier", r"cheaper", r"\w+er than", r"what (?:would|should)")
ASSESS = _words(r"evaluat\w+", r"assess\w*", r"apprais\w+", r"critiqu\w+", r"judge", r"rate",
                r"how (?:well|good|bad|effective\w*|efficient\w*|useful|reliable|safe|risky|"
                r"strong|weak|successful|accurate|appropriate|suitable|important|valuable|"
                r"realistic|adequate|feasible|practical|sustainable|impactful|beneficial)",
                r"strengths?", r"weakness\w*", r"pros", r"cons", r"advantages?",
                r"disadvantages?", r"drawbacks?", r"benefits?", r"risks?", r"limitations?",
                r"shortcomings?", r"effective\w*", r"efficien\w+", r"quality", r"worth",
                r"merits?", r"success\w*", r"challenges?", r"issues?", r"problems?", r"flaws?",
                r"opinion", r"analy[sz]\w+", r"performance")
SUGGEST = _words(r"suggest\w*", r"recommend\w*", r"advice", r"advis\w+", r"should",
                 r"improv\w+", r"enhanc\w+", r"optimi[sz]\w+", r"strateg\w+", r"tips?",
                 r"measures?", r"steps?", r"actions?", r"solutions?", r"ways?", r"approach\w*",
                 r"plan\w*", r"address\w*", r"mitigat\w+", r"prevent\w*", r"overcome",
                 r"better", r"boost\w*", r"increas\w+", r"reduc\w+", r"strengthen\w*",
                 r"modif\w+", r"adjust\w*", r"refin\w+", r"maximi[sz]\w+", r"minimi[sz]\w+",
                 r"ensure", r"implement\w*", r"adopt\w*",
                 r"what (?:can|could|might|would) .{1,60} do", r"how (?:can|could|might) .{1,60}")
OPINION = _words(r"what if", r"suppose", r"imagine", r"assuming", r"were to",
                 r"would happen", r"which is (?:better|best|more suitable)", r"should (?:i|we)",
                 r"would you (?:recommend|suggest|choose)",
                 r"how (?:can|could|might) .{1,60} (?:improve|enhance|optimi[sz]e)",
                 r"how (?:would|do) you (?:assess|evaluate|rate|judge)",
                 r"strengths and weakness\w*", r"pros and cons")

_CONDITIONAL = re.compile(r"\b(?:if(?! (?:so|not)\b)|assuming|suppose|imagine)\b")

# The opening of the first sentence that frames a type (checked on the compound question).
OPENERS: dict[str, re.Pattern[str]] = {
    "Cause-and-Effect": re.compile(r"^(?:why|for what reasons?)\b"),
    "Hypothetical-Analysis": re.compile(r"^(?:if|assuming|assume|suppose|supposing|imagine|"
                                        r"hypothetically|in (?:a|the) (?:hypothetical )?"
                                        r"(?:scenario|case|event)|were|had|what if)\b"),
    "Comparison-and-Selection": re.compile(r"^(?:compared? (?:with|to)|in contrast|in "
                                           r"comparison|contrasting|comparing|unlike|as opposed "
                                           r"to|relative to|how (?:does|do|did) .{1,80} "
                                           r"(?:compare|differ)|what (?:are|is) the "
                                           r"(?:main |key )?differences?)\b"),
    "Evaluation-and-Suggestion": re.compile(r"^(?:how (?:would|do|can|should|could) you "
                                            r"(?:assess|evaluate|rate|judge|appraise|critique)|"
                                            r"evaluate|assess|critique|appraise|how effective\w*|"
                                            r"what is your (?:assessment|evaluation))\b"),
}


def _text(compound_question: str, sub_questions: Sequence[str]) -> str:
    return fold_text(" ".join([compound_question, *sub_questions]))


def opening_type(compound_question: str) -> str | None:
    """The type the question's opening frames, or None (a neutral What/Who/How opening)."""
    head = fold_text(compound_question).lstrip(" \"'([")
    return next((t for t, p in OPENERS.items() if p.match(head)), None)


def _factual(text: str) -> list[dict[str, Any]]:
    hit = OPINION.search(text) or _CONDITIONAL.search(text)
    return [{"rule": "factual_asks_opinion", "marker": hit.group(0)}] if hit else []


def _cause_effect(text: str) -> list[dict[str, Any]]:
    fails = []
    if not CAUSE.search(text):
        fails.append({"rule": "cause_effect_no_cause"})
    # "Why X? What Y?" is how the released data frames the type: the follow-up to a
    # why-question counts as its effect side even when it names no effect word.
    if not EFFECT.search(text) and not OPENERS["Cause-and-Effect"].match(text.lstrip(" \"'([")):
        fails.append({"rule": "cause_effect_no_effect"})
    return fails


def _hypothetical(text: str) -> list[dict[str, Any]]:
    return [] if CONDITION.search(text) else [{"rule": "hypothetical_no_condition"}]


def _comparison(text: str) -> list[dict[str, Any]]:
    fails = []
    if not CONTRAST.search(text):
        fails.append({"rule": "comparison_no_contrast"})
    if not CHOICE.search(text):
        fails.append({"rule": "comparison_no_choice"})
    return fails


def _evaluation(text: str) -> list[dict[str, Any]]:
    if ASSESS.search(text) or SUGGEST.search(text):
        return []
    return [{"rule": "evaluation_no_assessment_or_suggestion"}]


_RULES: dict[str, tuple[str, Callable[[str], list[dict[str, Any]]]]] = {
    "Factual-Statement": ("factual", _factual),
    "Cause-and-Effect": ("cause_effect", _cause_effect),
    "Hypothetical-Analysis": ("hypothetical", _hypothetical),
    "Comparison-and-Selection": ("comparison", _comparison),
    "Evaluation-and-Suggestion": ("evaluation", _evaluation),
}

TYPE_RULES: tuple[str, ...] = (
    "factual_asks_opinion", "factual_opens_as_other", "cause_effect_no_cause",
    "cause_effect_no_effect", "cause_effect_opens_as_other", "hypothetical_no_condition",
    "hypothetical_opens_as_other", "comparison_no_contrast", "comparison_no_choice",
    "comparison_opens_as_other", "evaluation_no_assessment_or_suggestion",
    "evaluation_opens_as_other")


def check_type(category: str, compound_question: str, sub_questions: Sequence[str]
               ) -> list[dict[str, Any]]:
    """Failures of the category's structure rules (see the module docstring)."""
    if category not in _RULES:
        raise KeyError(f"unknown category {category!r}")
    prefix, rule = _RULES[category]
    fails = rule(_text(compound_question, sub_questions))
    other = opening_type(compound_question)
    if other is not None and other != category:
        fails.append({"rule": f"{prefix}_opens_as_other", "opens_as": other})
    return fails
