"""The stage's prompt templates (prompts/*.jinja) and answer schemas (schemas/llm/*.json).

`render(step, **vars)` gives the user message of a step; `version(step)` its template version
(name@content hash), recorded in every output's lineage; `answer_schema(step, cfg)` the JSON
Schema stated to the serving layer.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from transforms.llm.prompts import PromptTemplate

PROMPTS = Path(__file__).resolve().parent / "prompts"
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "llm"
STEPS = ("compress", "expand", "reconstruct", "respond", "retag")
SCHEMA_STEPS = ("compress", "expand", "reconstruct", "retag")



@cache
def template(step: str) -> PromptTemplate:
    """The versioned template of `step` (the serving layer's PromptTemplate)."""
    if step not in STEPS:
        raise KeyError(f"unknown step {step!r}")
    return PromptTemplate.from_file(PROMPTS / f"{step}.jinja")


def render(step: str, **variables: Any) -> str:
    """The rendered user message of `step` (strict: a missing variable is an error)."""
    return template(step).render(**variables)


def version(step: str) -> str:
    """`tag_instruct.<step>@<content hash>`: recorded in lineage and the response cache key."""
    return f"tag_instruct.{step}@{template(step).version}"


def versions() -> dict[str, str]:
    return {s: version(s) for s in STEPS}


@cache
def _schema_file(step: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"tag_instruct_{step}.json").read_text())


def answer_schema(step: str, num_tags: int = 3, max_retag: int = 8,
                  max_question_chars: int | None = None) -> dict[str, Any] | None:
    """The JSON Schema of a step's answer, sized by the config (None for free text)."""
    if step not in SCHEMA_STEPS:
        return None
    schema = copy.deepcopy(_schema_file(step))
    if step == "compress":
        schema["properties"]["tags"]["minItems"] = num_tags
        schema["properties"]["tags"]["maxItems"] = num_tags
    elif step == "retag":
        schema["properties"]["tags"]["maxItems"] = max_retag
    elif step == "reconstruct" and max_question_chars is not None:
        schema["properties"]["question"]["maxLength"] = max_question_chars
    return schema
