"""Row helpers shared by the layout adapters: the error type, the adapted-row record, text
fields, folded field names and the JSON of unmapped fields. Pure functions, no Beam."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_FOLD = re.compile(r"[\s\-]+")


class AdapterError(ValueError):
    """A row that cannot become a canonical record; the message says why."""


@dataclass
class Adapted:
    """One converted row: an example (messages) or a preference pair (prompt/chosen/rejected).
    An example may end with a user turn: a prompt-only row, to be answered later."""

    kind: str  # "example" | "pair"
    messages: list[dict[str, str]] = field(default_factory=list)
    prompt: list[dict[str, str]] = field(default_factory=list)
    chosen: list[dict[str, str]] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def fold_key(name: str) -> str:
    """A field name as layouts know it: 'Best Answer' → 'best_answer', 'Question' → 'question'."""
    return _FOLD.sub("_", str(name).strip()).lower()


def fold_keys(row: Mapping[str, Any]) -> dict[str, Any]:
    """`row` with folded field names. A field already spelled the folded way wins a clash;
    the other keeps its own name (so nothing is lost)."""
    out = {k: v for k, v in row.items() if fold_key(k) == k}
    for k, v in row.items():
        if fold_key(k) != k:
            out[k if fold_key(k) in out else fold_key(k)] = v
    return out


def text_field(value: Any, what: str, required: bool = True) -> str:
    if value is None:
        if required:
            raise AdapterError(f"missing field {what!r}")
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, Mapping) for p in value):
        # OpenAI content parts: keep the text parts.
        return "\n".join(str(p.get("text", "")) for p in value if p.get("type", "text") == "text")
    raise AdapterError(f"field {what!r} should be text, got {type(value).__name__}")


def extra_json(row: Mapping[str, Any], used: set[str]) -> str | None:
    rest = {k: v for k, v in row.items() if k not in used}
    return json.dumps(rest, ensure_ascii=False, sort_keys=True, default=str) if rest else None


def msg(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def joined(first: str, second: str) -> str:
    """'first\\n\\nsecond', or first alone when second is blank (Alpaca's input, Dolly's context)."""
    return f"{first}\n\n{second}" if second.strip() else first


def with_system(row: Mapping[str, Any], messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """`messages` after the row's `system` field as a system turn (unless blank or already
    there)."""
    system = text_field(row.get("system"), "system", required=False)
    if system.strip() and not (messages and messages[0]["role"] == "system"):
        return [msg("system", system), *messages]
    return messages
