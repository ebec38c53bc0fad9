"""Parsers of the four model answers: compound question, question check, reference answer,
answer check.

Reads: raw model text (or JSON already validated by the serving layer). Writes: a typed value,
or an error code saying what was wrong (empty, no_json, truncated_json, invalid_json,
not_an_object, missing_<field>, wrong_type_<field>, empty_<field>). Never raises on model text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from transforms.llm.structured import json_span_end

_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


@dataclass(frozen=True)
class Parsed:
    value: Any = None
    error: str | None = None  # short code; None when parsing succeeded
    detail: str | None = None  # human-readable explanation

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class QuestionOut:
    compound_question: str
    sub_questions: tuple[str, ...]


@dataclass(frozen=True)
class AnswerOut:
    answer: str
    sub_answers: tuple[str, ...]


@dataclass(frozen=True)
class QuestionCheckOut:
    """The judge's verdict on a compound question, written after its reasoning."""

    reasoning: str
    single_compound_question: bool
    answerable_from_context: bool
    matches_type: bool


@dataclass(frozen=True)
class AnswerCheckOut:
    reasoning: str
    covers_all_sub_questions: bool
    consistent_with_context: bool


def extract_json_object(text: str | None) -> Parsed:
    """The first JSON object in `text`, tolerating code fences and prose around it."""
    if text is None or not text.strip():
        return Parsed(error="empty", detail="the model returned no text")
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    start = body.find("{")
    if start < 0:
        return Parsed(error="no_json", detail="no '{' in the output")
    try:
        obj, _ = json.JSONDecoder().raw_decode(body[start:])
    except json.JSONDecodeError as e:
        code = "truncated_json" if json_span_end(body, start) is None else "invalid_json"
        return Parsed(error=code, detail=f"{e.msg} at char {e.pos}")
    if not isinstance(obj, dict):
        return Parsed(error="not_an_object", detail=f"got {type(obj).__name__}")
    return Parsed(value=obj)


def _as_object(raw: Any) -> Parsed:
    if isinstance(raw, dict):
        return Parsed(value=raw)
    if isinstance(raw, str | None):
        return extract_json_object(raw)
    return Parsed(error="not_an_object", detail=f"got {type(raw).__name__}")


def _text_field(obj: dict[str, Any], name: str) -> Parsed:
    if name not in obj:
        return Parsed(error=f"missing_{name}", detail=f"no field {name!r}")
    value = obj[name]
    if not isinstance(value, str):
        return Parsed(error=f"wrong_type_{name}", detail=f"{name} is {type(value).__name__}")
    value = value.strip()
    if not value:
        return Parsed(error=f"empty_{name}", detail=f"{name} is blank")
    return Parsed(value=value)


def _text_list_field(obj: dict[str, Any], name: str, keep_blank: bool = False) -> Parsed:
    """A list of strings, stripped; blank entries dropped (kept with `keep_blank`, where
    positions matter: sub-answer i answers sub-question i); no non-blank entry is an error."""
    if name not in obj:
        return Parsed(error=f"missing_{name}", detail=f"no field {name!r}")
    value = obj[name]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return Parsed(error=f"wrong_type_{name}", detail=f"{name} is not a list of strings")
    items = tuple(v.strip() for v in value if keep_blank or v.strip())
    if not any(items):
        return Parsed(error=f"empty_{name}", detail=f"{name} has no non-blank entry")
    return Parsed(value=items)


def _bool_field(obj: dict[str, Any], name: str) -> Parsed:
    if name not in obj:
        return Parsed(error=f"missing_{name}", detail=f"no field {name!r}")
    value = obj[name]
    if isinstance(value, bool):
        return Parsed(value=value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return Parsed(value=value.strip().lower() in _TRUE)
    return Parsed(error=f"wrong_type_{name}", detail=f"{name} is {value!r}, not a boolean")


def _first_error(*parts: Parsed) -> Parsed | None:
    return next((p for p in parts if not p.ok), None)


def parse_question(raw: Any) -> Parsed:
    """{"sub_questions": [str, ...], "compound_question": str} → QuestionOut."""
    obj = _as_object(raw)
    if not obj.ok:
        return obj
    subs = _text_list_field(obj.value, "sub_questions")
    cq = _text_field(obj.value, "compound_question")
    err = _first_error(subs, cq)
    if err:
        return err
    return Parsed(value=QuestionOut(cq.value, subs.value))


def parse_answer(raw: Any) -> Parsed:
    """{"sub_answers": [str, ...], "answer": str} → AnswerOut."""
    obj = _as_object(raw)
    if not obj.ok:
        return obj
    subs = _text_list_field(obj.value, "sub_answers", keep_blank=True)
    ans = _text_field(obj.value, "answer")
    err = _first_error(subs, ans)
    if err:
        return err
    return Parsed(value=AnswerOut(ans.value, subs.value))


def _reasoning(obj: dict[str, Any]) -> str:
    value = obj.get("reasoning")
    return value.strip() if isinstance(value, str) else ""


def parse_question_check(raw: Any) -> Parsed:
    """{"reasoning": str, "single_compound_question": bool, "answerable_from_context": bool,
    "matches_type": bool} → QuestionCheckOut. Booleans may come as "yes"/"no"/"true"/"false"."""
    obj = _as_object(raw)
    if not obj.ok:
        return obj
    single = _bool_field(obj.value, "single_compound_question")
    answerable = _bool_field(obj.value, "answerable_from_context")
    typed = _bool_field(obj.value, "matches_type")
    err = _first_error(single, answerable, typed)
    if err:
        return err
    return Parsed(value=QuestionCheckOut(_reasoning(obj.value), single.value, answerable.value,
                                         typed.value))


def parse_answer_check(raw: Any) -> Parsed:
    """{"reasoning": str, "covers_all_sub_questions": bool, "consistent_with_context": bool}
    → AnswerCheckOut."""
    obj = _as_object(raw)
    if not obj.ok:
        return obj
    covers = _bool_field(obj.value, "covers_all_sub_questions")
    consistent = _bool_field(obj.value, "consistent_with_context")
    err = _first_error(covers, consistent)
    if err:
        return err
    return Parsed(value=AnswerCheckOut(_reasoning(obj.value), covers.value, consistent.value))


def result_payload(parsed: tuple[Any, ...] | None, texts: tuple[str, ...]) -> Any:
    """What to parse from a ChatResult: the serving layer's validated JSON when present,
    else the first raw text."""
    if parsed and parsed[0] is not None:
        return parsed[0]
    return texts[0] if texts else None
