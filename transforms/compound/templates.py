"""Prompt templates and answer schemas of the compound stage, and rendering them for one item.

Reads: prompts/<category>.jinja, prompts/answer.jinja, prompts/check.jinja and
schemas/llm/compound_*.json. Writes: rendered prompt strings and JSON Schemas. Pure, no Beam.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import schemas
from transforms.compound.categories import CATEGORIES, slug
from transforms.llm.prompts import PromptTemplate

PROMPTS_DIR = Path(__file__).resolve().parent / "prompts"
SCHEMAS_DIR = Path(schemas.__file__).resolve().parent / "llm"
TEMPLATE_NAMES = tuple(slug(c) for c in CATEGORIES) + ("answer", "check")


@cache
def load_template(name: str) -> PromptTemplate:
    """One template by name: a category slug, 'answer' or 'check'."""
    if name not in TEMPLATE_NAMES:
        raise KeyError(f"no compound template {name!r}; known: {TEMPLATE_NAMES}")
    return PromptTemplate.from_file(PROMPTS_DIR / f"{name}.jinja")


def question_template(category: str) -> PromptTemplate:
    return load_template(slug(category))


@cache
def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS_DIR / f"compound_{name}.json").read_text(encoding="utf-8"))


def question_schema(min_sub: int, max_sub: int) -> dict[str, Any]:
    """The step-1 schema with the configured bounds on the number of sub-questions."""
    s = copy.deepcopy(_schema("question"))
    s["properties"]["sub_questions"].update(minItems=min_sub, maxItems=max_sub)
    return s


def answer_schema(n_sub: int) -> dict[str, Any]:
    """The step-2 schema asking for exactly one sub-answer per sub-question."""
    s = copy.deepcopy(_schema("answer"))
    s["properties"]["sub_answers"].update(minItems=n_sub, maxItems=n_sub)
    return s


def check_schema() -> dict[str, Any]:
    return copy.deepcopy(_schema("check"))


def _clip(text: str | None, limit: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= limit else text[:limit].rstrip() + " ..."


def _subject(seed: dict[str, Any], max_chars: int, max_context: int) -> dict[str, str]:
    return {"question": _clip(seed["question"], max_chars),
            "answer": _clip(seed["answer"], max_chars),
            "context": _clip(seed.get("context"), max_context)}


def _partner(partner: dict[str, Any] | None, max_chars: int, max_context: int
             ) -> dict[str, str] | None:
    return None if partner is None else _subject(partner, max_chars, max_context)


def render_question(category: str, seed: dict[str, Any], partner: dict[str, Any] | None,
                    min_sub: int, max_sub: int, max_chars: int, max_context: int) -> str:
    """Step 1 prompt: the category's template over the seed (and partner, when present)."""
    s = _subject(seed, max_chars, max_context)
    return question_template(category).render(
        question=s["question"], answer=s["answer"], context=s["context"],
        partner=_partner(partner, max_chars, max_context), min_sub=min_sub, max_sub=max_sub)


def render_answer(category: str, compound_question: str, sub_questions: list[str],
                  seed: dict[str, Any], partner: dict[str, Any] | None,
                  max_chars: int, max_context: int) -> str:
    """Step 2 prompt: answer each sub-question in turn from the seed facts."""
    s = _subject(seed, max_chars, max_context)
    return load_template("answer").render(
        category=category, compound_question=compound_question, sub_questions=sub_questions,
        question=s["question"], answer=s["answer"], context=s["context"],
        partner=_partner(partner, max_chars, max_context))


def render_check(compound_question: str, sub_questions: list[str], reference_answer: str,
                 seed: dict[str, Any], partner: dict[str, Any] | None,
                 max_chars: int, max_context: int) -> str:
    """Step 3 prompt: does the answer cover every sub-question and agree with the context?"""
    subjects = [x for x in (_subject(seed, max_chars, max_context),
                            _partner(partner, max_chars, max_context)) if x]
    facts = [f"{label}: {x[key]}" for x in subjects for label, key in
             (("Q", "question"), ("A", "answer"))]
    context = "\n".join(x["context"] for x in subjects if x["context"])
    return load_template("check").render(
        compound_question=compound_question, sub_questions=sub_questions,
        reference_answer=reference_answer, context=context, facts=facts)


def template_versions() -> dict[str, str]:
    """name → version of every compound template (for lineage and the report)."""
    return {name: load_template(name).version for name in TEMPLATE_NAMES}
