"""schemas.records (row builders, meta helpers) and schemas.unify (schema unification)."""

from __future__ import annotations

import itertools

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.records import (
    EXAMPLE_SCHEMA,
    PAIR_SCHEMA,
    example_row,
    examples_to_batch,
    first_turn,
    meta_field,
    pair_row,
    pairs_to_batch,
    with_meta,
)
from schemas.unify import canonical_schema, concat_unified, conform, unify_schemas, unify_type
from tests._hypothesis import examples

MSGS = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]


def _batch(n: int = 3, **meta) -> pa.RecordBatch:
    return examples_to_batch([example_row(f"id{i}", MSGS, **meta) for i in range(n)])


def test_examples_to_batch_has_canonical_schema() -> None:
    batch = _batch()
    assert batch.schema.equals(EXAMPLE_SCHEMA)
    assert batch.num_rows == 3
    assert batch.column("messages")[0].as_py() == MSGS


def test_rows_carry_their_content_hash_filled_in_where_missing() -> None:
    from schemas.ids import example_id, pair_id

    assert example_row("x", MSGS)["content_hash"] == example_id(MSGS)
    bare = {k: v for k, v in example_row("y", MSGS).items() if k != "content_hash"}
    batch = examples_to_batch([example_row("x", MSGS), bare])
    assert batch.column("content_hash").to_pylist() == [example_id(MSGS)] * 2
    assert batch.column("id").to_pylist() == ["x", "y"]
    good, bad = [{"role": "assistant", "content": "good"}], [{"role": "assistant", "content": "bad"}]
    pair = {k: v for k, v in pair_row("p", MSGS[:1], good, bad).items() if k != "content_hash"}
    assert pairs_to_batch([pair]).column("content_hash").to_pylist() == [
        pair_id(MSGS[:1], good, bad)]


def test_extra_meta_keys_become_meta_fields() -> None:
    batch = examples_to_batch([example_row("a", MSGS, quality_score=0.5, category="x")])
    meta_type = batch.schema.field("meta").type
    names = [meta_type.field(i).name for i in range(meta_type.num_fields)]
    assert names[:6] == ["tags", "category", "context", "answer", "extra", "lineage"]
    assert names[6:] == ["quality_score"]
    assert meta_field(batch, "quality_score").to_pylist() == [0.5]
    assert meta_field(batch, "category").to_pylist() == ["x"]


def test_pairs_to_batch_has_pair_schema() -> None:
    row = pair_row("p", MSGS[:1], [{"role": "assistant", "content": "good"}],
                   [{"role": "assistant", "content": "bad"}], method="ingest")
    batch = pairs_to_batch([row])
    assert batch.schema.equals(PAIR_SCHEMA)
    assert meta_field(batch, "method").to_pylist() == ["ingest"]


def test_with_meta_adds_and_replaces_fields_and_keeps_other_columns() -> None:
    batch = _batch(3)
    out = with_meta(batch, score=pa.array([1.0, 2.0, 3.0]), category=["a", "b", "c"])
    assert meta_field(out, "score").to_pylist() == [1.0, 2.0, 3.0]
    assert meta_field(out, "category").to_pylist() == ["a", "b", "c"]
    assert meta_field(out, "tags").to_pylist() == [[], [], []]
    assert out.column("id").to_pylist() == batch.column("id").to_pylist()
    assert out.schema.names == batch.schema.names
    table = pa.Table.from_batches([batch, batch])
    assert meta_field(table, "category").to_pylist() == [None] * 6


def test_with_meta_on_a_table() -> None:
    batch = _batch(3)
    table = pa.Table.from_batches([batch, batch])
    out_table = with_meta(table, score=pa.array([0.0] * 6))
    assert meta_field(out_table, "score").to_pylist() == [0.0] * 6


def test_first_turn() -> None:
    assert first_turn(MSGS, "assistant") == "A"
    assert first_turn(MSGS, "system") == ""


def test_unify_type_rules() -> None:
    a = pa.struct([("x", pa.int64())])
    b = pa.struct([("y", pa.string()), ("x", pa.float64())])
    assert unify_type(a, b) == pa.struct([("x", pa.float64()), ("y", pa.string())])
    assert unify_type(pa.null(), pa.string()) == pa.string()
    assert unify_type(pa.string(), pa.null()) == pa.string()
    assert unify_type(pa.int32(), pa.int64()) == pa.int64()
    assert unify_type(pa.list_(pa.null()), pa.list_(pa.string())) == pa.list_(pa.string())


def test_conform_fills_missing_fields_and_drops_extra_columns() -> None:
    scored = with_meta(_batch(2), score=[0.1, 0.2])
    plain = _batch(1)
    schema = unify_schemas([scored.schema, plain.schema])
    t = conform(plain.append_column("junk", pa.array([1])), schema)
    assert t.schema.equals(schema)
    assert meta_field(t, "score").to_pylist() == [None]
    assert "junk" not in t.column_names
    both = concat_unified([plain, scored])
    assert both.num_rows == 3
    assert meta_field(both, "score").to_pylist() == [None, 0.1, 0.2]
    with pytest.raises(ValueError):
        concat_unified([])


_EXTRA_FIELDS = st.lists(
    st.tuples(st.sampled_from(["score", "dup_cluster", "zeta", "alpha", "lang"]),
              st.sampled_from([pa.float64(), pa.int64(), pa.string()])),
    max_size=3, unique_by=lambda t: t[0])


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(_EXTRA_FIELDS, min_size=1, max_size=4))
def test_canonical_schema_does_not_depend_on_batch_order(extras: list) -> None:
    batches = []
    for fields in extras:
        b = _batch(1)
        cols = {}
        for name, typ in fields:
            cols[name] = pa.nulls(1, typ) if typ != pa.string() else pa.array(["v"])
        batches.append(with_meta(b, **cols) if cols else b)
    # a field whose type differs between batches widens the same way in either order only when
    # numeric; keep the property to consistent types per name
    types: dict[str, set] = {}
    for fields in extras:
        for name, typ in fields:
            types.setdefault(name, set()).add(str(typ))
    if any(len(v) > 1 and "string" in v for v in types.values()):
        return
    seen = set()
    for perm in itertools.islice(itertools.permutations(batches), 24):
        schema = canonical_schema(unify_schemas([EXAMPLE_SCHEMA, *[b.schema for b in perm]]),
                                  EXAMPLE_SCHEMA)
        seen.add(schema.to_string())
        table = pa.concat_tables([conform(b, schema) for b in perm])
        assert table.num_rows == len(batches)
    assert len(seen) == 1
    schema = unify_schemas([EXAMPLE_SCHEMA, *[b.schema for b in batches]])
    canon = canonical_schema(schema, EXAMPLE_SCHEMA)
    assert canon.names == EXAMPLE_SCHEMA.names
    meta = canon.field("meta").type
    names = [meta.field(i).name for i in range(meta.num_fields)]
    assert names[:6] == ["tags", "category", "context", "answer", "extra", "lineage"]
    assert names[6:] == sorted(names[6:])
