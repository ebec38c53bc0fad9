"""Secret redaction: one function for every stored text (dead letter, cache, logs, report).

Redacts the values of the environment variables a config names (any `*_env` field, e.g.
`llm.api_key_env`, which must be a variable name), resolved where the text is written (workers
have the same environment), credentials in URLs (`scheme://user:pass@host`) and secret-shaped
tokens: `Bearer …`, `sk-…` keys and `api_key: …` style assignments. For texts Refinery writes
about errors and configuration only: model outputs and input rows are data, never altered. Names of
variables travel in the pipeline; values never do.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "[REDACTED]"
MIN_SECRET_CHARS = 4  # shorter env values would mask ordinary words
PATTERNS = (
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"),
    re.compile(r"(?i)\b((?:x-)?api[_-]?key|authorization|access[_-]?token|secret)"
               r"(\"?'?\s*[:=]\s*\"?'?)[^\s\"',;}]{4,}"),
    re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@\"'<>]+@"),  # credentials in a URL
)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def secret_env_names(config: Mapping[str, Any]) -> tuple[str, ...]:
    """Values of every `*_env` key in a config dump (nested dicts and lists), sorted."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                if isinstance(k, str) and k.endswith("_env") and isinstance(v, str) and v:
                    found.add(v)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config)
    return tuple(sorted(found))


def holds_secret(text: str, env_names: Iterable[str] = ()) -> bool:
    """Whether `text` contains the value of any of the named environment variables."""
    for name in env_names:
        value = os.environ.get(name, "")
        if len(value) >= MIN_SECRET_CHARS and (value in text or json.dumps(value)[1:-1] in text):
            return True
    return False


def redact(text: str, env_names: Iterable[str] = ()) -> str:
    """`text` with secret values and secret-shaped tokens replaced by [REDACTED]."""
    for name in env_names:
        value = os.environ.get(name, "")
        if len(value) >= MIN_SECRET_CHARS and value in text:
            text = text.replace(value, MASK)
    text = PATTERNS[0].sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = PATTERNS[1].sub(MASK, text)
    text = PATTERNS[3].sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


# what every PATTERNS match contains (case-insensitively): a prefilter for column-wise texts
_SHAPES = r"(?i)bearer|basic|sk-|api.?key|authorization|access.?token|secret|://"


def may_hold_secret(texts: Any, env_names: Iterable[str] = ()) -> Any:
    """A boolean Arrow array: which of `texts` (an Arrow string array) may hold a secret, by
    one RE2 pass (a superset of what `redact` changes; nulls are False)."""
    import pyarrow.compute as pc

    flagged = pc.match_substring_regex(texts, _SHAPES)
    for name in env_names:
        value = os.environ.get(name, "")
        if len(value) >= MIN_SECRET_CHARS:
            flagged = pc.or_(flagged, pc.match_substring(texts, value))
    return pc.fill_null(flagged, False)


class Redactor:
    """`redact` bound to a config's env var names; picklable (holds names, not values)."""

    def __init__(self, env_names: Iterable[str] = ()) -> None:
        self.env_names = tuple(env_names)

    def __call__(self, text: str) -> str:
        return redact(text, self.env_names)

    def entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        """A dead-letter entry with its error and raw payload redacted."""
        return {k: self(v) if k in ("error", "raw") and isinstance(v, str) else v
                for k, v in entry.items()}


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's formatted message."""

    def __init__(self, env_names: Iterable[str] = ()) -> None:
        super().__init__()
        self._redact = Redactor(env_names)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction(env_names: Iterable[str] = ()) -> None:
    """Redact every handler of the root logger (call once the config is known)."""
    names = tuple(env_names)
    for handler in logging.getLogger().handlers:
        handler.filters = [f for f in handler.filters if not isinstance(f, RedactingFilter)]
        handler.addFilter(RedactingFilter(names))
