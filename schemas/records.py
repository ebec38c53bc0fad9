"""Canonical records and their Arrow schemas.

`Example`: id, content_hash, messages [{role, content}], source {dataset, file, row}, meta {...}.
`PreferencePair`: id, content_hash, prompt, chosen, rejected (message lists), source, meta.

`id` is unique per row (for an input row: its content at its source position, schemas/ids.py);
`content_hash` is the hash of the normalized content alone (equal content, equal hash).

Stages exchange `pyarrow.RecordBatch`es of these schemas. `meta` is a struct column: the base
fields below are always present; stages add their own fields (scores, lineage details) with
`with_meta`, so filters and reports read columns, not nested Python objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from schemas.ids import example_id, pair_id

ROLES = ("system", "user", "assistant", "tool")

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)
SOURCE = pa.struct([("dataset", pa.string()), ("file", pa.string()), ("row", pa.int64())])
LINEAGE = pa.struct(
    [
        ("parent_ids", pa.list_(pa.string())),
        ("stage", pa.string()),
        ("method", pa.string()),
        ("model", pa.string()),
        ("template_version", pa.string()),
    ]
)
# Base meta fields every Example carries. `extra` keeps unmapped source fields as JSON.
EXAMPLE_META = pa.struct(
    [
        ("tags", pa.list_(pa.string())),
        ("category", pa.string()),
        ("context", pa.string()),
        ("answer", pa.string()),
        ("extra", pa.string()),
        ("lineage", LINEAGE),
    ]
)
PAIR_META = pa.struct(
    [
        ("method", pa.string()),
        ("error_type", pa.string()),
        ("step_index", pa.int32()),
        ("edit_span", pa.list_(pa.int32())),
        ("parent_id", pa.string()),
        ("extra", pa.string()),
        ("lineage", LINEAGE),
    ]
)

EXAMPLE_SCHEMA = pa.schema(
    [("id", pa.string()), ("content_hash", pa.string()), ("messages", MESSAGES),
     ("source", SOURCE), ("meta", EXAMPLE_META)]
)
PAIR_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("content_hash", pa.string()),
        ("prompt", MESSAGES),
        ("chosen", MESSAGES),
        ("rejected", MESSAGES),
        ("source", SOURCE),
        ("meta", PAIR_META),
    ]
)

# Columns added to a record batch when its rows are rejected (see transforms/base.py).
REJECT_FIELDS = [
    ("reject_stage", pa.string()),
    ("reject_reason", pa.string()),
    ("reject_detail", pa.string()),  # JSON object with stage-specific details
]


def empty_lineage() -> dict[str, Any]:
    return {"parent_ids": [], "stage": None, "method": None, "model": None,
            "template_version": None}


def example_row(
    id: str,
    messages: Sequence[Mapping[str, str]],
    source: Mapping[str, Any] | None = None,
    **meta: Any,
) -> dict[str, Any]:
    """A row dict in EXAMPLE_SCHEMA's shape; unknown meta keys become extra meta fields.
    `content_hash` is computed from the messages."""
    base = {"tags": [], "category": None, "context": None, "answer": None, "extra": None,
            "lineage": empty_lineage()}
    base.update(meta)
    msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
    return {
        "id": id,
        "content_hash": example_id(msgs),
        "messages": msgs,
        "source": dict(source or {"dataset": None, "file": None, "row": None}),
        "meta": base,
    }


def pair_row(
    id: str,
    prompt: Sequence[Mapping[str, str]],
    chosen: Sequence[Mapping[str, str]],
    rejected: Sequence[Mapping[str, str]],
    source: Mapping[str, Any] | None = None,
    **meta: Any,
) -> dict[str, Any]:
    """A row dict in PAIR_SCHEMA's shape; unknown meta keys become extra meta fields.
    `content_hash` is computed from prompt, chosen and rejected."""
    base = {"method": None, "error_type": None, "step_index": None, "edit_span": None,
            "parent_id": None, "extra": None, "lineage": empty_lineage()}
    base.update(meta)

    def msgs(ms: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
        return [{"role": m["role"], "content": m["content"]} for m in ms]

    return {
        "id": id,
        "content_hash": pair_id(msgs(prompt), msgs(chosen), msgs(rejected)),
        "prompt": msgs(prompt),
        "chosen": msgs(chosen),
        "rejected": msgs(rejected),
        "source": dict(source or {"dataset": None, "file": None, "row": None}),
        "meta": base,
    }


def _schema_with_meta(base: pa.Schema, rows: Sequence[Mapping[str, Any]]) -> pa.Schema:
    """`base` with meta extended by any extra meta keys found in rows (types inferred)."""
    meta_type: pa.StructType = base.field("meta").type
    known = {meta_type.field(i).name for i in range(meta_type.num_fields)}
    extra_keys = sorted({k for r in rows for k in r["meta"] if k not in known})
    if not extra_keys:
        return base
    fields = [meta_type.field(i) for i in range(meta_type.num_fields)]
    for key in extra_keys:
        values = [r["meta"].get(key) for r in rows]
        fields.append(pa.field(key, pa.array(values).type))
    return base.set(base.get_field_index("meta"), pa.field("meta", pa.struct(fields)))


def with_content_hash(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """`rows` where every row has its content_hash (computed where it is missing)."""
    if all(r.get("content_hash") for r in rows):
        return list(rows)
    return [r if r.get("content_hash") else {**r, "content_hash": (
        example_id(r["messages"]) if "messages" in r else
        pair_id(r["prompt"], r["chosen"], r["rejected"]))} for r in rows]


def examples_to_batch(rows: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
    """Example row dicts → RecordBatch (EXAMPLE_SCHEMA plus any extra meta fields); a
    missing content_hash is computed."""
    schema = _schema_with_meta(EXAMPLE_SCHEMA, rows)
    return pa.RecordBatch.from_pylist(with_content_hash(rows), schema=schema)


def pairs_to_batch(rows: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
    """PreferencePair row dicts → RecordBatch (PAIR_SCHEMA plus any extra meta fields); a
    missing content_hash is computed."""
    schema = _schema_with_meta(PAIR_SCHEMA, rows)
    return pa.RecordBatch.from_pylist(with_content_hash(rows), schema=schema)


def meta_field(batch: pa.RecordBatch | pa.Table, name: str) -> pa.Array:
    """One field of the meta struct column."""
    meta = batch.column("meta")
    if isinstance(meta, pa.ChunkedArray):
        meta = meta.combine_chunks()
    return meta.field(name)


def with_meta(batch: pa.RecordBatch | pa.Table,
              **columns: pa.Array | Sequence[Any]) -> pa.RecordBatch | pa.Table:
    """A copy of `batch` (RecordBatch or Table) whose meta struct has `columns` added or
    replaced."""
    meta = batch.column("meta")
    if isinstance(meta, pa.ChunkedArray):
        meta = meta.combine_chunks()
    names = [meta.type.field(i).name for i in range(meta.type.num_fields)]
    arrays = {n: meta.field(n) for n in names}
    for name, values in columns.items():
        arrays[name] = values if isinstance(values, pa.Array) else pa.array(values)
        if name not in names:
            names.append(name)
    new_meta = pa.StructArray.from_arrays([arrays[n] for n in names], names=names,
                                          mask=meta.is_null() if meta.null_count else None)
    idx = batch.schema.get_field_index("meta")
    if isinstance(batch, pa.Table):
        return batch.set_column(idx, "meta", new_meta)
    return pa.RecordBatch.from_arrays(
        [new_meta if i == idx else batch.column(i) for i in range(batch.num_columns)],
        names=batch.schema.names)


def first_turn(messages: Sequence[Mapping[str, str]], role: str) -> str:
    """Content of the first message with `role`, or ''."""
    for m in messages:
        if m["role"] == role:
            return m["content"]
    return ""
