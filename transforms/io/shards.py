"""Pure core of emit: shard assignment, deterministic row order, Parquet/JSONL bytes."""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas.unify import canonical_schema, conform, unify_schemas

ROW_GROUP_ROWS = 50_000


def shard_count(total_rows: int, num_shards: int | None, rows_per_shard: int) -> int:
    return num_shards or max(1, math.ceil(total_rows / rows_per_shard))


_HEX = np.full(256, -1, np.int64)
_HEX[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16)
_HEX[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)
_SHIFTS = np.arange(28, -1, -4, dtype=np.int64)


def shard_of(ids: pa.Array | pa.ChunkedArray, n: int) -> pa.Array:
    """Shard index of each (hex) id: its first 8 hex digits modulo n. Stable everywhere.
    32-character hex ids (all ids from schemas.ids) are parsed with numpy from the buffers."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if len(ids) and not ids.null_count and pa.types.is_string(ids.type):
        offs = np.frombuffer(ids.buffers()[1], np.int32)[ids.offset:ids.offset + len(ids) + 1]
        if (np.diff(offs) == 32).all():
            data = np.frombuffer(ids.buffers()[2], np.uint8)[offs[0]:offs[-1]]
            digits = _HEX[data.reshape(-1, 32)[:, :8]]
            if (digits >= 0).all():
                return pa.array((digits << _SHIFTS).sum(axis=1) % n, pa.int64())
    return pa.array([int(i[:8], 16) % n for i in ids.to_pylist()], pa.int64())


def split_by_shard(batch: pa.RecordBatch, n: int) -> list[tuple[int, pa.RecordBatch]]:
    """(shard, sub-batch) for every shard that has rows of `batch`."""
    shards = shard_of(batch.column("id"), n)
    out = []
    for s in pc.unique(shards).to_pylist():
        out.append((s, batch.filter(pc.equal(shards, s))))
    return out


def shard_name(split: str, index: int, n: int, suffix: str = "parquet") -> str:
    return f"{split}-{index:05d}-of-{n:05d}.{suffix}"


def sort_rows(table: pa.Table, extra_keys: Sequence[str] = ()) -> pa.Table:
    """Rows ordered by id, then source file and row, then `extra_keys` (top-level columns)."""
    if table.num_rows == 0:
        return table
    keys = {"__id": table.column("id")}
    if "source" in table.column_names:
        src = table.column("source").combine_chunks()
        keys["__file"] = src.field("file")
        keys["__row"] = src.field("row")
    for k in extra_keys:
        keys[f"__{k}"] = table.column(k)
    order = pc.sort_indices(pa.table(keys), sort_keys=[(k, "ascending") for k in keys])
    return table.take(order)


def build_table(batches: Sequence[pa.RecordBatch | pa.Table], base: pa.Schema,
                schema: pa.Schema | None = None, extra_keys: Sequence[str] = ()) -> pa.Table:
    """Batches → one sorted table in a canonical schema (base fields first)."""
    schema = schema or canonical_schema(unify_schemas([base, *[b.schema for b in batches]]), base)
    tables = [conform(b, schema) for b in batches if b.num_rows]
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return sort_rows(table, extra_keys)


def parquet_bytes(table: pa.Table, compression: str) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression=None if compression == "none" else compression,
                   row_group_size=ROW_GROUP_ROWS, write_statistics=True)
    return buf.getvalue()


def jsonl_bytes(table: pa.Table) -> bytes:
    return b"".join(
        json.dumps(r, ensure_ascii=False, sort_keys=True, default=str).encode() + b"\n"
        for r in table.to_pylist())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
