"""WriteShards: record batches → `<dir>/<split>-0000i-of-0000N.parquet` (+ optional JSONL in
a separate directory, so `load_dataset("parquet", data_dir=<dir>)` sees only Parquet).

Reads Example or PreferencePair batches. Shard = hash of id modulo N (N fixed or from the row
count); rows sorted by id within a shard; one schema for all shards (differing meta structs
unified, fields in canonical order). Same input and config → byte-identical files on every
runner. Writes one info dict per shard {dataset, path, rows, sha256}; drops nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa

from schemas.unify import canonical_schema, unify_schemas
from transforms.io.files import write_bytes
from transforms.io.shards import (
    build_table,
    jsonl_bytes,
    parquet_bytes,
    sha256,
    shard_count,
    shard_name,
    split_by_shard,
)


class _UnifySchemas(beam.CombineFn):
    def __init__(self, base: pa.Schema):
        self._base = base

    def create_accumulator(self) -> pa.Schema:
        return self._base

    def add_input(self, acc: pa.Schema, schema: pa.Schema) -> pa.Schema:
        return unify_schemas([acc, schema])

    def merge_accumulators(self, accs: Iterable[pa.Schema]) -> pa.Schema:
        return unify_schemas(list(accs))

    def extract_output(self, acc: pa.Schema) -> pa.Schema:
        return canonical_schema(acc, self._base)


class _WriteShard(beam.DoFn):
    def __init__(self, dataset: str, directory: str, emit: Any, base: pa.Schema,
                 jsonl_directory: str):
        self._dataset, self._dir, self._emit, self._base = dataset, directory, emit, base
        self._jsonl_dir = jsonl_directory

    def process(self, item: tuple[int, Iterable[Any]], schema: pa.Schema, n: int) -> Iterable[dict]:
        index, batches = item
        table = build_table([b for b in batches if b is not None], self._base, schema)
        data = parquet_bytes(table, self._emit.compression)
        path = f"{self._dir}/{shard_name(self._emit.split, index, n)}"
        write_bytes(path, data)
        info = {"dataset": self._dataset, "path": path, "rows": table.num_rows,
                "sha256": sha256(data), "format": "parquet"}
        yield info
        if self._emit.jsonl:
            jpath = f"{self._jsonl_dir}/{shard_name(self._emit.split, index, n, 'jsonl')}"
            jdata = jsonl_bytes(table)
            write_bytes(jpath, jdata)
            yield {**info, "path": jpath, "sha256": sha256(jdata), "format": "jsonl"}


class WriteShards(beam.PTransform):
    """Batches → sharded files under `directory`; returns a PCollection of shard info dicts."""

    def __init__(self, dataset: str, directory: str, emit: Any, base: pa.Schema,
                 jsonl_directory: str | None = None, label: str | None = None):
        super().__init__(label)
        self._dataset, self._dir, self._emit, self._base = dataset, directory, emit, base
        self._jsonl_dir = jsonl_directory or f"{directory}/jsonl"

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        emit = self._emit
        schema = (batches | "Schemas" >> beam.Map(lambda b: b.schema)
                  | "Unify" >> beam.CombineGlobally(_UnifySchemas(self._base)))
        total = (batches | "Rows" >> beam.Map(lambda b: b.num_rows)
                 | "Total" >> beam.CombineGlobally(sum))
        n = total | "Count" >> beam.Map(
            lambda t: shard_count(t, emit.num_shards, emit.rows_per_shard))
        keyed = batches | "Assign" >> beam.FlatMap(
            lambda b, k: split_by_shard(b, k), k=beam.pvalue.AsSingleton(n))
        every = n | "Every" >> beam.FlatMap(lambda k: [(i, None) for i in range(k)])
        return (
            (keyed, every)
            | "Merge" >> beam.Flatten()
            | "Group" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(_WriteShard(self._dataset, self._dir, emit, self._base,
                                                self._jsonl_dir),
                                    schema=beam.pvalue.AsSingleton(schema),
                                    n=beam.pvalue.AsSingleton(n))
        )
