"""Adapted row → canonical Example / PreferencePair row dict: normalized text, content hash,
row id (the content hash at the row's source position, schemas/ids.py),
validated (empty texts and unknown shapes raise AdapterError, which the reader dead-letters).
An example without an assistant turn is a prompt-only example (it ends with a user turn)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.ids import example_id, pair_id, row_id
from schemas.records import example_row, pair_row
from schemas.text import normalize_text
from transforms.io.adapters import Adapted, AdapterError


def _normalized(messages: list[dict[str, str]], what: str) -> list[dict[str, str]]:
    out = []
    for i, m in enumerate(messages):
        content = normalize_text(m["content"])
        if not content and m["role"] in ("user", "assistant"):
            raise AdapterError(f"{what}: message {i} ({m['role']}) is empty")
        out.append({"role": m["role"], "content": content})
    return out


def _check_example(messages: list[dict[str, str]]) -> None:
    """A user turn is required; without an assistant turn the example is a prompt (it must
    then end with a user turn, the one to answer)."""
    roles = [m["role"] for m in messages]
    if "user" not in roles:
        raise AdapterError("example has no user turn")
    if "assistant" not in roles and roles[-1] != "user":
        raise AdapterError(f"prompt-only example must end with a user turn, ends with {roles[-1]}")


def to_canonical(adapted: Adapted, source: Mapping[str, Any], file_key: str | None = None
                 ) -> tuple[str, dict[str, Any]]:
    """('example' | 'pair', row dict in the canonical schema's shape). The row id hashes the
    content hash with `file_key` (default: source["file"]) and source["row"]."""
    where = source.get("file") if file_key is None else file_key
    meta = {k: v for k, v in adapted.meta.items() if v is not None}
    for key in ("context", "answer"):
        if isinstance(meta.get(key), str):
            meta[key] = normalize_text(meta[key]) or None
    if adapted.kind == "example":
        messages = _normalized(adapted.messages, "example")
        _check_example(messages)
        ident = row_id(example_id(messages), where, source.get("row"))
        return "example", example_row(ident, messages, source, **meta)
    prompt = _normalized(adapted.prompt, "prompt")
    chosen = _normalized(adapted.chosen, "chosen")
    rejected = _normalized(adapted.rejected, "rejected")
    if not any(m["role"] == "user" for m in prompt):
        raise AdapterError("pair prompt has no user turn")
    if chosen == rejected:
        raise AdapterError("chosen and rejected are identical")
    meta.setdefault("method", "ingest")
    ident = row_id(pair_id(prompt, chosen, rejected), where, source.get("row"))
    return "pair", pair_row(ident, prompt, chosen, rejected, source, **meta)
