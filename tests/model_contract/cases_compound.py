"""Contract cases of the compound stage (CQ-Syn): one per model step. The writer, the answer
model and the judge (question check, answer check) answer as in tests/compound/_role_server.py
for its shared context; the seed's context carries the mode's marker into every prompt and
every row."""

from __future__ import annotations

from typing import Any

from tests.compound._role_server import (
    ANSWER_OK,
    CONTEXT,
    QUESTION_OK,
    answer_for,
    question,
)
from tests.model_contract.contract import ModelStageCase

CATEGORY = "Factual-Statement"
SETTINGS = {"enabled": True, "category_weights": {CATEGORY: 1.0}, "categories_per_seed": 1,
            "answer_check": True}
_QUESTION_CHECK = "reviewer of compound questions"  # words of the question check's prompt only
NOT_JSON = "<<I cannot answer in JSON today>>"


def _row(text: str) -> dict[str, Any]:
    """A Dolly-style seed with context (the role server's passage); the context carries the
    marker too, so every prompt and every output row (user turn, meta.context) shows it."""
    return {"instruction": f"{text} When did the Brooklyn Bridge open?",
            "context": f"{CONTEXT} ({text})",
            "response": "It opened in 1883 and crosses the East River."}


def _step(role: str, prompt: str) -> str:
    if role == "judge":
        return "question_check" if _QUESTION_CHECK in prompt else "answer_check"
    return {"writer": "question", "answer": "answer"}[role]


def _answer(role: str, prompt: str) -> Any:
    step = _step(role, prompt)
    if step == "question":
        return question(CATEGORY)
    if step == "answer":
        return answer_for(question(CATEGORY)["sub_questions"])
    return QUESTION_OK if step == "question_check" else ANSWER_OK


_SUBS = question(CATEGORY)["sub_questions"]
RULES = {  # step → (an answer a rule or a verdict rejects, its reason)
    "question": ({"sub_questions": _SUBS[:1], "compound_question": _SUBS[0]},
                 "rule_too_few_sub_questions"),
    "question_check": ({**QUESTION_OK, "matches_type": False}, "llm_question_wrong_type"),
    "answer": ({"sub_answers": answer_for(_SUBS)["sub_answers"][:1],
                "answer": answer_for(_SUBS)["answer"]}, "rule_unanswered_sub_question"),
    "answer_check": ({**ANSWER_OK, "covers_all_sub_questions": False}, "llm_answer_not_covering"),
}


def _case(step: str) -> ModelStageCase:
    rule, reason = RULES[step]
    return ModelStageCase(
        stage="compound", step=step, name=f"compound.{step}", settings=SETTINGS, row=_row,
        answer=_answer, is_step=lambda role, prompt: _step(role, prompt) == step,
        unparseable=NOT_JSON, rule=rule, rule_reason=reason)


CASES = [_case(step) for step in RULES]
