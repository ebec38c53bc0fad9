"""Dedup keys and exact duplicates.

Reads Example batches; writes the text each row is compared on (`key_texts`: all user turns,
the first user turn, or the whole conversation) and a 64-bit hash of its folded form
(schemas.text.fold_text: NFKC, case, punctuation, whitespace). Rows with equal hashes are exact
duplicates; `exact_groups` picks the keeper of each group by priority. Rows of one content hash
(schemas/ids.py) have one key text, so every content-hash duplicate is an exact duplicate here
(and so are rows that differ only in case, punctuation or, for key `prompt`, in the answer);
a dropped row's `duplicate_of` is its keeper's id, never its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from schemas.records import meta_field
from schemas.text import fold_text

KEYS = ("prompt", "first_user", "conversation")
SEP = "\x1f"


def row_keys(batch: pa.RecordBatch) -> list[str]:
    """A key per row: its id plus its source (dataset, file, row). Input rows have unique ids
    (two copies of one text: two ids, one content hash); the source still tells apart rows
    whose stage derived one id from their content; sorting keys sorts by id first, so the
    keeper tie-break (best score, then smallest id) is deterministic."""
    ids = batch.column("id").to_pylist()
    if "source" not in batch.schema.names:
        return ids
    src = batch.column("source").to_pylist()
    return [f"{i}{SEP}{(s or {}).get('dataset')}{SEP}{(s or {}).get('file')}{SEP}"
            f"{(s or {}).get('row')}" for i, s in zip(ids, src, strict=True)]


def id_of(key: str) -> str:
    """The record id inside a row key."""
    return key.split(SEP, 1)[0]


def key_texts(batch: pa.RecordBatch, key: str) -> list[str]:
    """The text of each row that dedup compares."""
    if key not in KEYS:
        raise ValueError(f"unknown dedup key {key!r}; expected one of {KEYS}")
    out = []
    for messages in batch.column("messages").to_pylist():
        messages = messages or []
        if key == "conversation":
            out.append("\n".join(f"{m['role']}: {m['content'] or ''}" for m in messages))
            continue
        users = [m["content"] or "" for m in messages if m["role"] == "user"]
        out.append((users[0] if users else "") if key == "first_user" else "\n".join(users))
    return out


def exact_hashes(texts: Sequence[str]) -> np.ndarray:
    """uint64 hash of each folded text (blake2b, 8 bytes)."""
    return np.array(
        [int.from_bytes(hashlib.blake2b(fold_text(t).encode("utf-8"), digest_size=8).digest(),
                        "little") for t in texts], dtype=np.uint64)


def quality_scores(batch: pa.RecordBatch, field: str) -> np.ndarray:
    """meta.<field> as float64 (NaN where missing); all NaN when the field does not exist."""
    names = [f.name for f in batch.schema.field("meta").type]
    if field not in names:
        return np.full(batch.num_rows, np.nan)
    arr = meta_field(batch, field).cast(pa.float64())
    return arr.to_numpy(zero_copy_only=False).astype(np.float64)


def exact_groups(hashes: np.ndarray, order: np.ndarray) -> np.ndarray:
    """For rows already sorted in keeper priority (`order` = that permutation of row numbers),
    the row number of each row's keeper (itself when it is kept)."""
    h = hashes[order]
    first_pos = {}
    keeper = np.empty(len(hashes), np.int64)
    for pos, (row, value) in enumerate(zip(order.tolist(), h.tolist(), strict=True)):
        first = first_pos.setdefault(value, pos)
        keeper[row] = order[first]
    return keeper
