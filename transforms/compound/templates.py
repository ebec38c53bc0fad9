"""Prompt templates and answer schemas of the compound stage, and rendering them for one item.

Reads: prompts/<category>.jinja (the writer, one per type), prompts/question_check.jinja,
prompts/answer.jinja, prompts/answer_check.jinja and schemas/llm/compound_*.json. Writes:
rendered prompt strings and JSON Schemas. Pure, no Beam.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path  # local-only: prompt templates ship with the code
from typing import Any

from transforms.compound.categories import CATEGORIES, DESCRIPTIONS, slug
from transforms.llm.prompts import Prompt, load_prompt

STAGE = "compound"
PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"  # local-only: package resource
TEMPLATE_NAMES = tuple(slug(c) for c in CATEGORIES) + ("question_check", "answer", "answer_check")


@cache
def load_template(name: str) -> Prompt:
    """One prompt by name (a category slug, 'question_check', 'answer' or 'answer_check'):
    template, answer schema (the writers share compound_question.json) and version
    'compound.<name>@<hash>'."""
    if name not in TEMPLATE_NAMES:
        raise KeyError(f"no compound template {name!r}; known: {TEMPLATE_NAMES}")
    schema = "question" if name not in ("question_check", "answer", "answer_check") else None
    return load_prompt(STAGE, name, schema=schema)


def question_template(category: str) -> Prompt:
    return load_template(slug(category))


def question_schema() -> dict[str, Any]:
    """The writer's schema. The number of sub-questions is left to the rule check (it names
    the failure, `too_few_sub_questions` / `too_many_sub_questions`, where a schema bound
    would only dead-letter the answer)."""
    return _schema_of(slug(CATEGORIES[0]))


def answer_schema() -> dict[str, Any]:
    """The answer model's schema; one part per sub-question is checked by the rules."""
    return _schema_of("answer")


def check_schema(step: str) -> dict[str, Any]:
    """The schema of the judge's verdict: step 'question_check' or 'answer_check'."""
    return _schema_of(step)


def _schema_of(name: str) -> dict[str, Any]:
    schema = load_template(name).answer_schema()
    assert schema is not None, f"compound prompt {name} has no answer schema"
    return schema


def _clip(text: str | None, limit: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[:limit].rstrip() + " ..."


def _subject(seed: dict[str, Any] | None, max_chars: int, max_context: int) -> dict[str, str] | None:
    if seed is None:
        return None
    return {"question": _clip(seed["question"], max_chars),
            "answer": _clip(seed["answer"], max_chars),
            "context": _clip(seed.get("context"), max_context)}


def user_context(seed: dict[str, Any], partner: dict[str, Any] | None, max_context: int) -> str:
    """The passages the user sees before the compound question: the seed's context, then the
    partner's (when the question uses a partner), blank-line separated; '' when neither has
    one."""
    parts = [_clip(x.get("context"), max_context) for x in (seed, partner) if x]
    return "\n\n".join(p for p in parts if p)


def facts(seed: dict[str, Any], partner: dict[str, Any] | None, max_chars: int) -> list[str]:
    """The seeds' own question/answer lines, given to the answer model and the judge."""
    subjects = [x for x in (_subject(seed, max_chars, 0), _subject(partner, max_chars, 0)) if x]
    return [f"{label}: {x[key]}" for x in subjects
            for label, key in (("Q", "question"), ("A", "answer"))]


def render_question(category: str, seed: dict[str, Any], partner: dict[str, Any] | None,
                    min_sub: int, max_sub: int, max_chars: int, max_context: int) -> str:
    """Writer prompt: the category's template over the seed (and partner, when present)."""
    s = _subject(seed, max_chars, max_context)
    assert s is not None
    return question_template(category).render(
        question=s["question"], answer=s["answer"], context=s["context"],
        partner=_subject(partner, max_chars, max_context), min_sub=min_sub, max_sub=max_sub)


def render_question_check(category: str, compound_question: str, sub_questions: list[str],
                          context: str, fact_lines: list[str]) -> str:
    """Judge prompt on the question: one natural compound question, answerable from the
    context, of the stated type; reasoning before the verdicts."""
    return load_template("question_check").render(
        category=category, description=DESCRIPTIONS[category],
        compound_question=compound_question, sub_questions=sub_questions, context=context,
        facts=fact_lines)


def render_answer(category: str, compound_question: str, sub_questions: list[str],
                  context: str, fact_lines: list[str]) -> str:
    """Answer-model prompt: a full answer to every sub-question, then the reference answer."""
    return load_template("answer").render(
        category=category, compound_question=compound_question, sub_questions=sub_questions,
        context=context, facts=fact_lines)


def render_answer_check(category: str, compound_question: str, sub_questions: list[str],
                        reference_answer: str, context: str, fact_lines: list[str]) -> str:
    """Judge prompt on the answer: covers every sub-question, agrees with the context."""
    return load_template("answer_check").render(
        category=category, compound_question=compound_question, sub_questions=sub_questions,
        reference_answer=reference_answer, context=context, facts=fact_lines)


def template_versions() -> dict[str, str]:
    """name → version of every compound template (for lineage and the report)."""
    return {name: load_template(name).version for name in TEMPLATE_NAMES}
