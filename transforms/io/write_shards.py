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


class _Stats(beam.CombineFn):
    """Batches → (unified canonical schema, shard count), in one combine (lifted before the
    shuffle, so only (schema, rows) accumulators move)."""

    def __init__(self, base: pa.Schema, emit: Any):
        self._base, self._emit = base, emit

    def create_accumulator(self) -> tuple[pa.Schema, int]:
        return self._base, 0

    def add_input(self, acc: tuple[pa.Schema, int], batch: Any) -> tuple[pa.Schema, int]:
        return unify_schemas([acc[0], batch.schema]), acc[1] + batch.num_rows

    def merge_accumulators(self, accs: Iterable[tuple[pa.Schema, int]]) -> tuple[pa.Schema, int]:
        accs = list(accs)
        return unify_schemas([a[0] for a in accs]), sum(a[1] for a in accs)

    def extract_output(self, acc: tuple[pa.Schema, int]) -> tuple[pa.Schema, int]:
        return (canonical_schema(acc[0], self._base),
                shard_count(acc[1], self._emit.num_shards, self._emit.rows_per_shard))


class _WriteShard(beam.DoFn):
    def __init__(self, dataset: str, directory: str, emit: Any, base: pa.Schema,
                 jsonl_directory: str):
        self._dataset, self._dir, self._emit, self._base = dataset, directory, emit, base
        self._jsonl_dir = jsonl_directory

    def process(self, item: tuple[int, Iterable[Any]], stats: tuple[pa.Schema, int]
                ) -> Iterable[dict]:
        index, batches = item
        schema, n = stats
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
        stats = batches | "Stats" >> beam.CombineGlobally(_Stats(self._base, self._emit))
        keyed = batches | "Assign" >> beam.FlatMap(
            lambda b, st: split_by_shard(b, st[1]), st=beam.pvalue.AsSingleton(stats))
        every = stats | "Every" >> beam.FlatMap(lambda st: [(i, None) for i in range(st[1])])
        return (
            (keyed, every)
            | "Merge" >> beam.Flatten()
            | "Group" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(_WriteShard(self._dataset, self._dir, self._emit, self._base,
                                                self._jsonl_dir),
                                    stats=beam.pvalue.AsSingleton(stats))
        )
