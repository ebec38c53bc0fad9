"""The stage's prompt templates (prompts/*.jinja) and answer schemas (schemas/llm/*.json).

`render(step, **vars)` gives the user message of a step; `version(step)` its template version
(name@content hash), recorded in every output's lineage; `answer_schema(step, cfg)` the JSON
Schema stated to the serving layer.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

PROMPTS = Path(__file__).resolve().parent / "prompts"
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "llm"
STEPS = ("compress", "expand", "reconstruct", "respond", "retag")
SCHEMA_STEPS = ("compress", "expand", "reconstruct", "retag")

_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(PROMPTS)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=False,
    autoescape=False,
)


@cache
def _template(step: str) -> tuple[jinja2.Template, str]:
    if step not in STEPS:
        raise KeyError(f"unknown step {step!r}")
    text = (PROMPTS / f"{step}.jinja").read_text()
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return _ENV.get_template(f"{step}.jinja"), f"tag_instruct.{step}@{digest}"


def render(step: str, **variables: Any) -> str:
    """The rendered user message of `step` (trailing whitespace stripped)."""
    return _template(step)[0].render(**variables).strip()


def version(step: str) -> str:
    return _template(step)[1]


def versions() -> dict[str, str]:
    return {s: version(s) for s in STEPS}


@cache
def _schema_file(step: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"tag_instruct_{step}.json").read_text())


def answer_schema(step: str, num_tags: int = 3, max_retag: int = 8) -> dict[str, Any] | None:
    """The JSON Schema of a step's answer, sized by the config (None for free text)."""
    if step not in SCHEMA_STEPS:
        return None
    schema = copy.deepcopy(_schema_file(step))
    if step == "compress":
        schema["properties"]["tags"]["minItems"] = num_tags
        schema["properties"]["tags"]["maxItems"] = num_tags
    elif step == "retag":
        schema["properties"]["tags"]["maxItems"] = max_retag
    return schema
