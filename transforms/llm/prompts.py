"""Versioned Jinja2 prompt templates.

A template is a `.jinja` file next to the stage that uses it. Its `version` is a short hash of
its text, recorded in output lineage and in the response cache key, so editing a prompt
invalidates cached answers for it and nothing else. Rendering is strict: an undefined variable
is an error, never an empty string.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

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
