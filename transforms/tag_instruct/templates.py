"""The stage's prompt templates (prompts/*.jinja) and answer schemas (schemas/llm/*.json).

`render(step, **vars)` gives the user message of a step; `version(step)` its template version
(name@content hash), recorded in every output's lineage; `answer_schema(step, cfg)` the JSON
Schema stated to the serving layer. A step may have variants (`<step>_<variant>.jinja`): the
paper's bracket formats (`brackets`, no schema) and the Alpaca respond template (`alpaca`).
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path  # local-only: prompt templates and schemas ship with the code
from typing import Any

from transforms.llm.prompts import Prompt, PromptTemplate, load_prompt

PROMPTS = Path(__file__).resolve().parent / "prompts"  # local-only: package resource
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "llm"  # local-only: package resource
STEPS = ("compress", "tag", "expand", "reconstruct", "respond")
SCHEMA_STEPS = ("compress", "tag", "expand", "reconstruct")
VARIANTS = {"brackets": ("compress", "expand", "reconstruct"), "alpaca": ("respond",)}
# the verify step re-tags the new question with the same tagger (same template and schema);
# the pair candidates are asked with the expand prompt
_SAME_AS = {"retag": "tag", "pair_expand": "expand"}


@cache
def _prompt(step: str, variant: str | None = None) -> Prompt:
    step = _SAME_AS.get(step, step)
    if step not in STEPS:
        raise KeyError(f"unknown step {step!r}")
    if variant is not None and step in VARIANTS.get(variant, ()):
        return load_prompt("tag_instruct", f"{step}_{variant}", schema=None)
    return load_prompt("tag_instruct", step)


def template(step: str, variant: str | None = None) -> PromptTemplate:
    """The versioned template of `step` (the serving layer's PromptTemplate)."""
    return _prompt(step, variant).template


def render(step: str, variant: str | None = None, **variables: Any) -> str:
    """The rendered user message of `step` (strict: a missing variable is an error)."""
    return template(step, variant).render(**variables)


def version(step: str, variant: str | None = None) -> str:
    """`tag_instruct.<step>@<content hash>`: recorded in lineage and the response cache key."""
    return _prompt(step, variant).version


def versions() -> dict[str, str]:
    return {s: version(s) for s in STEPS}


def answer_schema(step: str, num_tags: int = 3, tagger_max_tags: int = 12,
                  variant: str | None = None) -> dict[str, Any] | None:
    """The JSON Schema of a step's answer, sized by the config (None for free text and for
    the bracket variants)."""
    step = _SAME_AS.get(step, step)
    if step not in SCHEMA_STEPS or step in VARIANTS.get(variant or "", ()):
        return None
    schema = copy.deepcopy(_prompt(step).schema)
    if step == "compress":
        schema["properties"]["tags"]["minItems"] = num_tags
        schema["properties"]["tags"]["maxItems"] = num_tags
    elif step == "tag":
        schema["properties"]["tags"]["maxItems"] = tagger_max_tags
    return schema
