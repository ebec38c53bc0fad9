"""Stable record ids and content hashes.

Two hashes per row. The content hash (`example_id`, `pair_id`) depends only on the normalized
content: equal content, equal hash, wherever it came from (the `content_hash` column; exact
dedup and the release diff use it). The row id (`row_id`) of an input row hashes its content
hash with its source position (the file as the run records it, and the row number the planner
gives it on every runner), so every input row gets its own id, stable across reruns on the
same files, and two copies of one text get two ids and one content hash. Synthesized rows
keep the ids their stages derive (from their parents or their content).

Content hashes hash a flat encoding: a kind tag, then each message as `role US content`, messages
separated by RS, message lists by GS (ASCII unit/record/group separators). Normalized text
never holds these control characters (schemas.text removes them), so the encoding is
unambiguous, and it can be built column-wise with Arrow string functions (see
transforms/io/columnar.py) as well as row by row here: both give the same id.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

ID_BYTES = 16
US, RS, GS = "\x1f", "\x1e", "\x1d"


def digest(data: bytes) -> str:
    """The id of an encoded record: hex blake2b, 16 bytes."""
    return hashlib.blake2b(data, digest_size=ID_BYTES).hexdigest()


def content_id(*parts: object) -> str:
    """Hex blake2b digest of the canonical JSON of `parts` (for seeds and derived keys)."""
    payload = json.dumps(parts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return digest(payload.encode("utf-8"))


def derive_seed(*parts: object) -> int:
    """A 31-bit sampling seed derived from `parts` (run seed, record id, step, round, ...):
    the same parts always give the same seed, any change gives an unrelated one. Use one per
    request so reruns, retries and other workers sample the same answers."""
    return int(content_id(*parts)[:8], 16) & 0x7FFFFFFF


def encode_messages(messages: Iterable[Mapping[str, str]]) -> str:
    return RS.join(f"{m['role']}{US}{m['content']}" for m in messages)


def example_id(messages: Iterable[Mapping[str, str]]) -> str:
    """Id of an Example: depends only on its (already normalized) roles and contents."""
    return digest(("example" + GS + encode_messages(messages)).encode("utf-8"))


def row_id(content_hash: str, file: str | None, row: int | None) -> str:
    """Id of an input row: its content hash at its source position (file, row number)."""
    return digest(f"row{GS}{content_hash}{GS}{file or ''}{US}{row}".encode())


def pair_id(
    prompt: Iterable[Mapping[str, str]],
    chosen: Iterable[Mapping[str, str]],
    rejected: Iterable[Mapping[str, str]],
) -> str:
    """Id of a PreferencePair: depends only on prompt, chosen and rejected."""
    text = GS.join(["pair", encode_messages(prompt), encode_messages(chosen),
                    encode_messages(rejected)])
    return digest(text.encode("utf-8"))
