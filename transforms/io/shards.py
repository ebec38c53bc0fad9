"""Pure core of emit: shard assignment, spill files, deterministic row order, Parquet/JSONL bytes."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas.unify import canonical_schema, conform, unify_schemas

ROW_GROUP_ROWS = 50_000
# Leaf columns (by last name) holding long or unique texts: no dictionary encoding (it is tried
# and abandoned for them, which costs time) and no min/max statistics (useless, and bulky).
UNIQUE_TEXT = frozenset({"content", "context", "answer", "extra", "parent_id", "parent_ids",
                         "text", "prompt", "chosen", "rejected", "reject_detail"})


def shard_count(total_rows: int, num_shards: int | None, rows_per_shard: int) -> int:
    return num_shards or max(1, math.ceil(total_rows / rows_per_shard))


_HEX = np.full(256, -1, np.int64)
_HEX[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16)
_HEX[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)
_SHIFTS = np.arange(28, -1, -4, dtype=np.int64)


def id_prefix(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The first 8 hex digits of each id as an int64 array (the shard hash). 32-character hex
    ids (all ids from schemas.ids) are parsed with numpy from the buffers."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if len(ids) and not ids.null_count and pa.types.is_string(ids.type):
        offs = np.frombuffer(ids.buffers()[1], np.int32)[ids.offset:ids.offset + len(ids) + 1]
        if (np.diff(offs) == 32).all():
            data = np.frombuffer(ids.buffers()[2], np.uint8)[offs[0]:offs[-1]]
            digits = _HEX[data.reshape(-1, 32)[:, :8]]
            if (digits >= 0).all():
                return (digits << _SHIFTS).sum(axis=1)
    return np.array([int(i[:8], 16) for i in ids.to_pylist()], np.int64)


def shard_of(ids: pa.Array | pa.ChunkedArray, n: int) -> pa.Array:
    """Shard index of each (hex) id: its first 8 hex digits modulo n. Stable everywhere."""
    return pa.array(id_prefix(ids) % n, pa.int64())


def rows_by_shard(prefix: np.ndarray, n: int) -> Iterator[tuple[int, np.ndarray]]:
    """(shard, ascending row indices) for every shard that has rows, from `id_prefix` values."""
    shards = prefix % n
    order = np.argsort(shards, kind="stable").astype(np.int32)
    bounds = np.searchsorted(shards[order], np.arange(n + 1))
    for s in range(n):
        if bounds[s + 1] > bounds[s]:
            yield s, order[bounds[s]:bounds[s + 1]]


def spill_bytes(batch: pa.RecordBatch | pa.Table) -> pa.Buffer:
    """`batch` as an Arrow IPC file (random access, memory-mappable); same batch, same bytes.
    An Arrow buffer, not a `bytes` copy (written and hashed as it is)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, batch.schema) as writer:
        writer.write(batch)
    return sink.getvalue()


def spill_name(data: bytes | pa.Buffer) -> str:
    """Content-derived file name: a retried bundle rewrites the same file, never a second one."""
    return hashlib.sha256(data).hexdigest()[:40] + ".arrow"


def shard_name(split: str, index: int, n: int, suffix: str = "parquet") -> str:
    return f"{split}-{index:05d}-of-{n:05d}.{suffix}"


def sort_rows(table: pa.Table, extra_keys: Sequence[str] = ()) -> pa.Table:
    """Rows ordered by id, then source file and row, then `extra_keys` (top-level columns).
    The sort is stable, so rows equal on every key keep their order in `table`."""
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
    if any(c.num_chunks > 1 for c in table.columns):  # take is far faster on one chunk
        table = table.combine_chunks()
    return table.take(order)


def concat_rows(tables: Sequence[pa.Table], schema: pa.Schema) -> pa.Table:
    """Tables of exactly `schema` → one table with a single chunk per column."""
    batches = [b for t in tables for b in t.to_batches() if b.num_rows]
    if not batches:
        return schema.empty_table()
    if len(batches) == 1:
        return pa.Table.from_batches(batches)
    if hasattr(pa, "concat_batches"):  # pyarrow >= 19: one copy, much faster than combine_chunks
        return pa.Table.from_batches([pa.concat_batches(batches)])
    return pa.Table.from_batches(batches).combine_chunks()


def build_table(batches: Sequence[pa.RecordBatch | pa.Table], base: pa.Schema,
                schema: pa.Schema | None = None, extra_keys: Sequence[str] = ()) -> pa.Table:
    """Batches → one sorted table in a canonical schema (base fields first)."""
    schema = schema or canonical_schema(unify_schemas([base, *[b.schema for b in batches]]), base)
    tables = [conform(b, schema) for b in batches if b.num_rows]
    return sort_rows(concat_rows(tables, schema), extra_keys)


def _leaves(t: pa.DataType, path: str) -> Iterator[tuple[str, str, pa.DataType]]:
    """(Parquet column path, leaf name, type) of every leaf column under `path`."""
    if pa.types.is_struct(t):
        for i in range(t.num_fields):
            f = t.field(i)
            yield from _leaves(f.type, f"{path}.{f.name}")
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        for col, name, leaf in _leaves(t.value_type, f"{path}.list.element"):
            yield col, path.rsplit(".", 1)[-1] if name == "element" else name, leaf
    else:
        yield path, path.rsplit(".", 1)[-1], t


def column_options(schema: pa.Schema) -> tuple[list[str], list[str]]:
    """(columns to dictionary-encode, columns to keep statistics for): dictionaries for short
    repetitive strings (roles, dataset/file names, lineage), none for ids and long texts;
    statistics for everything but the long texts."""
    dictionary, stats = [], []
    for f in schema:
        for col, name, t in _leaves(f.type, f.name):
            text = name in UNIQUE_TEXT
            if not text:
                stats.append(col)
            if not text and name not in ("id", "content_hash") and (
                    pa.types.is_string(t) or pa.types.is_large_string(t)):
                dictionary.append(col)
    return dictionary, stats


def parquet_bytes(table: pa.Table, compression: str) -> pa.Buffer:
    """The Parquet file of `table`, in an Arrow buffer (written and hashed as it is); an empty
    table gives a file with no row group (`datasets` fails on a row group of 0 rows, and
    skips a file without one)."""
    dictionary, stats = column_options(table.schema)
    sink = pa.BufferOutputStream()
    codec = None if compression == "none" else compression
    if not table.num_rows:
        pq.ParquetWriter(sink, table.schema, compression=codec).close()
        return sink.getvalue()
    pq.write_table(table, sink, compression=codec, row_group_size=ROW_GROUP_ROWS,
                   use_dictionary=dictionary or False, write_statistics=stats or False)
    return sink.getvalue()


def origin_counts(table: pa.Table) -> dict[str, int] | None:
    """Rows by origin: 'ingest' for input records, else the stage named in
    meta.lineage.stage (synthesized records); None when the schema has no such field."""
    try:
        stage = pc.struct_field(table.column("meta").combine_chunks(), ["lineage", "stage"])
    except (KeyError, ValueError, TypeError, pa.ArrowException):
        return None
    counts = pc.value_counts(pc.fill_null(stage, "ingest")).to_pylist()
    return {c["values"]: c["counts"] for c in counts}


def jsonl_bytes(table: pa.Table) -> bytes:
    return b"".join(
        json.dumps(r, ensure_ascii=False, sort_keys=True, default=str).encode() + b"\n"
        for r in table.to_pylist())


def sha256(data: bytes | pa.Buffer) -> str:
    return hashlib.sha256(data).hexdigest()
