"""Stable record ids: a hash of the normalized content, independent of source and row."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

ID_BYTES = 16


def content_id(*parts: object) -> str:
    """Hex blake2b digest of the canonical JSON of `parts`."""
    payload = json.dumps(parts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=ID_BYTES).hexdigest()


def _pairs(messages: Iterable[Mapping[str, str]]) -> list[list[str]]:
    return [[m["role"], m["content"]] for m in messages]


def example_id(messages: Iterable[Mapping[str, str]]) -> str:
    """Id of an Example: depends only on its (already normalized) roles and contents."""
    return content_id("example", _pairs(messages))


def pair_id(
    prompt: Iterable[Mapping[str, str]],
    chosen: Iterable[Mapping[str, str]],
    rejected: Iterable[Mapping[str, str]],
) -> str:
    """Id of a PreferencePair: depends only on prompt, chosen and rejected."""
    return content_id("pair", _pairs(prompt), _pairs(chosen), _pairs(rejected))
