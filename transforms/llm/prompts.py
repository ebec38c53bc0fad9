"""Versioned Jinja2 prompt templates and the JSON Schemas of their answers.

A template is a `.jinja` file next to the stage that uses it: `load_prompt(stage, name)` reads
transforms/<stage>/prompts/<name>.jinja and, when present, the answer schema
schemas/llm/<stage>_<name>.json (or `schemas/llm/<stage>_<schema>.json` when several templates
share one). Its `version`, `<stage>.<name>@<hash of the template text>`, is recorded in output
lineage and in the response cache key, so editing a prompt invalidates cached answers for it
and nothing else. Rendering is strict: an undefined variable is an error, never an empty string.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path  # local-only: prompt templates ship with the code
from typing import Any

import jinja2

# the repository (transforms/ and schemas/ in it)
ROOT = Path(__file__).resolve().parents[2]  # local-only: the installed code's own folder
_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
)


def template_version(text: str) -> str:
    """Short sha256 of a template's text (12 hex chars)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class PromptTemplate:
    """A Jinja2 template with a name and a content version."""

    name: str
    text: str
    _compiled: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_file(cls, path: str | Path) -> PromptTemplate:
        # local-only: templates are package resources that ship with the code
        p = Path(path)
        return cls.from_string(p.read_text(encoding="utf-8"), name=p.stem)

    @classmethod
    def from_string(cls, text: str, name: str = "inline") -> PromptTemplate:
        return cls(name=name, text=text, _compiled=_ENV.from_string(text))

    @property
    def version(self) -> str:
        return template_version(self.text)

    def render(self, **variables: Any) -> str:
        """The rendered prompt, stripped of surrounding whitespace."""
        compiled = self._compiled if self._compiled is not None else _ENV.from_string(self.text)
        return compiled.render(**variables).strip()

    def __reduce__(self) -> tuple[Any, ...]:
        # The compiled template does not pickle; rebuild it on the other side.
        return (PromptTemplate.from_string, (self.text, self.name))


@dataclass(frozen=True)
class Prompt:
    """A step's template, the JSON Schema of its answer (None: free text) and its version."""

    template: PromptTemplate
    schema: dict[str, Any] | None
    version: str  # "<stage>.<name>@<content hash>"

    def render(self, **variables: Any) -> str:
        return self.template.render(**variables)

    def answer_schema(self) -> dict[str, Any] | None:
        """A copy of the schema, safe to size per request (e.g. minItems)."""
        return copy.deepcopy(self.schema)


@cache
def load_prompt(stage: str, name: str, schema: str | None = None) -> Prompt:
    """The prompt `name` of `stage` (see the module docstring). `schema` names a shared schema
    file (`<stage>_<schema>.json`) instead of `<stage>_<name>.json`; a schema file that is
    named explicitly must exist. Raises FileNotFoundError naming the missing template."""
    # local-only: templates and answer schemas are package resources
    path = ROOT / "transforms" / stage / "prompts" / f"{name}.jinja"
    if not path.is_file():
        raise FileNotFoundError(f"no prompt template {path} (stage {stage!r}, name {name!r})")
    template = PromptTemplate.from_file(path)
    schema_path = ROOT / "schemas" / "llm" / f"{stage}_{schema or name}.json"
    if schema is not None and not schema_path.is_file():
        raise FileNotFoundError(f"no answer schema {schema_path}")
    answer = json.loads(schema_path.read_text(encoding="utf-8")) if schema_path.is_file() else None
    return Prompt(template, answer, f"{stage}.{name}@{template.version}")
