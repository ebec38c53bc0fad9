"""Bring record batches whose meta structs differ to one schema (for shards and rejected/)."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa


def unify_type(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """The type both `a` and `b` cast to: structs merge their fields (sorted after the
    fields of `a`), null yields to anything, ints widen to float, else `a` wins."""
    if a.equals(b) or pa.types.is_null(b):
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_struct(a) and pa.types.is_struct(b):
        fields = {a.field(i).name: a.field(i).type for i in range(a.num_fields)}
        for i in range(b.num_fields):
            f = b.field(i)
            fields[f.name] = unify_type(fields[f.name], f.type) if f.name in fields else f.type
        return pa.struct(list(fields.items()))
    if pa.types.is_list(a) and pa.types.is_list(b):
        return pa.list_(unify_type(a.value_type, b.value_type))
    if (pa.types.is_integer(a) or pa.types.is_floating(a)) and (
        pa.types.is_integer(b) or pa.types.is_floating(b)
    ):
        return pa.float64() if (pa.types.is_floating(a) or pa.types.is_floating(b)) else pa.int64()
    return a


def unify_schemas(schemas: Sequence[pa.Schema]) -> pa.Schema:
    """One schema every input schema casts to; top-level column order of first appearance."""
    fields: dict[str, pa.DataType] = {}
    for schema in schemas:
        for f in schema:
            fields[f.name] = unify_type(fields[f.name], f.type) if f.name in fields else f.type
    return pa.schema(list(fields.items()))


def cast_array(arr: pa.Array, target: pa.DataType) -> pa.Array:
    """Cast `arr` to `target`, filling struct fields it lacks with nulls."""
    if arr.type.equals(target):
        return arr
    if pa.types.is_struct(target) and pa.types.is_struct(arr.type):
        have = {arr.type.field(i).name for i in range(arr.type.num_fields)}
        children = []
        for i in range(target.num_fields):
            f = target.field(i)
            if f.name in have:
                children.append(cast_array(arr.field(f.name), f.type))
            else:
                children.append(pa.nulls(len(arr), f.type))
        mask = arr.is_null() if arr.null_count else None
        return pa.StructArray.from_arrays(children, fields=list(target), mask=mask)
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), target)
    return arr.cast(target)


def conform(batch: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.Table:
    """`batch` as a table of exactly `schema` (missing columns null, extra columns dropped)."""
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    table = table.combine_chunks()
    cols = []
    for f in schema:
        if f.name in table.column_names:
            col = table.column(f.name)
            arr = col.chunk(0) if col.num_chunks == 1 else pa.concat_arrays(col.chunks) \
                if col.num_chunks else pa.array([], f.type)
            cols.append(cast_array(arr, f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def concat_unified(batches: Sequence[pa.RecordBatch | pa.Table]) -> pa.Table:
    """Concatenate batches with differing (compatible) schemas into one table."""
    if not batches:
        raise ValueError("no batches to concatenate")
    schema = unify_schemas([b.schema for b in batches])
    return pa.concat_tables([conform(b, schema) for b in batches])


def _sorted_struct(t: pa.DataType) -> pa.DataType:
    if pa.types.is_struct(t):
        fields = sorted((t.field(i) for i in range(t.num_fields)), key=lambda f: f.name)
        return pa.struct([pa.field(f.name, _sorted_struct(f.type)) for f in fields])
    if pa.types.is_list(t):
        return pa.list_(_sorted_struct(t.value_type))
    return t


def _ordered(t: pa.DataType, base: pa.DataType | None) -> pa.DataType:
    """Fields of `base` first in its order, then the others sorted by name (recursively)."""
    if not pa.types.is_struct(t):
        return t if base is not None else _sorted_struct(t)
    base_fields = ({base.field(i).name: base.field(i).type for i in range(base.num_fields)}
                   if base is not None and pa.types.is_struct(base) else {})
    have = {t.field(i).name: t.field(i).type for i in range(t.num_fields)}
    names = [n for n in base_fields if n in have] + sorted(n for n in have if n not in base_fields)
    return pa.struct([pa.field(n, _ordered(have[n], base_fields.get(n))) for n in names])


def canonical_schema(schema: pa.Schema, base: pa.Schema) -> pa.Schema:
    """`schema` with a field order that does not depend on which batch came first: the base
    schema's columns and struct fields in their order, everything else sorted by name."""
    base_types = {f.name: f.type for f in base}
    have = {f.name: f.type for f in schema}
    names = [n for n in base_types if n in have] + sorted(n for n in have if n not in base_types)
    return pa.schema([pa.field(n, _ordered(have[n], base_types.get(n))) for n in names])
