"""WriteShards: record batches → `<dir>/<split>-0000i-of-0000N.parquet` (+ optional JSONL in
a separate directory, so `load_dataset("parquet", data_dir=<dir>)` sees only Parquet).

Reads Example or PreferencePair batches. Shard = hash of id modulo N (N fixed or from the row
count); rows sorted by id (then source file and row) within a shard; one schema for all shards
(differing meta structs unified, fields in canonical order). Same input and config →
byte-identical files on every runner. Writes one info dict per shard {dataset, path, rows,
sha256, format}; drops nothing.

Rows do not travel through the shuffle: right after the producing step each batch is written
once to an Arrow IPC spill file (named by its content hash, under `<dir>/_spill` unless told
otherwise), and only (path, row indices) per shard go through the GroupByKey. A shard's writer
memory-maps its spills, gathers and sorts its rows and writes the Parquet file; the spill
directory is deleted once every shard is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa

from schemas.unify import canonical_schema, unify_schemas
from transforms.io.files import delete_tree, read_arrow_batches, write_bytes
from transforms.io.shards import (
    build_table,
    id_prefix,
    jsonl_bytes,
    parquet_bytes,
    rows_by_shard,
    sha256,
    shard_count,
    shard_name,
    spill_bytes,
    spill_name,
)

# What _Spill emits per batch: (spill path or None when empty, rows, schema, id prefixes).
Spilled = tuple[str | None, int, pa.Schema, np.ndarray]


class _Spill(beam.DoFn):
    """Batch → an IPC file in the spill directory; emits a Spilled tuple (a few bytes per row)."""

    def __init__(self, directory: str):
        self._dir = directory

    def process(self, batch: Any) -> Iterable[Spilled]:
        if not batch.num_rows:
            yield None, 0, batch.schema, np.zeros(0, np.int64)
            return
        data = spill_bytes(batch)
        path = f"{self._dir}/{spill_name(data)}"
        write_bytes(path, data)  # same content → same name: a retried bundle adds no file
        yield path, batch.num_rows, batch.schema, id_prefix(batch.column("id"))


class _Stats(beam.CombineFn):
    """Spilled tuples → (unified canonical schema, shard count), in one combine (lifted before
    the shuffle, so only (schema, rows) accumulators move)."""

    def __init__(self, base: pa.Schema, emit: Any):
        self._base, self._emit = base, emit

    def create_accumulator(self) -> tuple[pa.Schema, int]:
        return self._base, 0

    def add_input(self, acc: tuple[pa.Schema, int], spilled: Spilled) -> tuple[pa.Schema, int]:
        return unify_schemas([acc[0], spilled[2]]), acc[1] + spilled[1]

    def merge_accumulators(self, accs: Iterable[tuple[pa.Schema, int]]) -> tuple[pa.Schema, int]:
        accs = list(accs)
        return unify_schemas([a[0] for a in accs]), sum(a[1] for a in accs)

    def extract_output(self, acc: tuple[pa.Schema, int]) -> tuple[pa.Schema, int]:
        return (canonical_schema(acc[0], self._base),
                shard_count(acc[1], self._emit.num_shards, self._emit.rows_per_shard))


def _assign(spilled: Spilled, stats: tuple[pa.Schema, int]
            ) -> Iterable[tuple[int, tuple[str, np.ndarray]]]:
    path, rows, _, prefix = spilled
    if rows:
        for shard, idx in rows_by_shard(prefix, stats[1]):
            yield shard, (path, idx)


def gather(parts: Iterable[tuple[str, np.ndarray]]) -> list[pa.RecordBatch | pa.Table]:
    """(spill path, row indices) pairs → those rows, in an order that does not depend on the
    order of `parts` (by path, then indices); a path named twice is read once, used twice."""
    loaded: dict[str, pa.RecordBatch | pa.Table] = {}
    out = []
    for path, idx in sorted(parts, key=lambda p: (p[0], p[1].tobytes())):
        if path not in loaded:
            batches = read_arrow_batches(path)
            loaded[path] = batches[0] if len(batches) == 1 else pa.Table.from_batches(batches)
        out.append(loaded[path].take(pa.array(idx)))
    return out


class _WriteShard(beam.DoFn):
    def __init__(self, dataset: str, directory: str, emit: Any, base: pa.Schema,
                 jsonl_directory: str):
        self._dataset, self._dir, self._emit, self._base = dataset, directory, emit, base
        self._jsonl_dir = jsonl_directory

    def process(self, item: tuple[int, Iterable[Any]], stats: tuple[pa.Schema, int]
                ) -> Iterable[dict]:
        index, parts = item
        schema, n = stats
        parts = [p for p in parts if p is not None]
        table = build_table(gather(parts), self._base, schema)
        expected = sum(len(idx) for _, idx in parts)
        if table.num_rows != expected:
            raise RuntimeError(f"shard {index}: gathered {table.num_rows} rows, expected {expected}")
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
    """Batches → sharded files under `directory`; returns a PCollection of shard info dicts.
    `spill_directory` (default `<directory>/_spill`) holds the spill files; it is deleted at
    the end unless `cleanup=False` (then the caller deletes it, e.g. with its staging dir)."""

    def __init__(self, dataset: str, directory: str, emit: Any, base: pa.Schema,
                 jsonl_directory: str | None = None, label: str | None = None,
                 spill_directory: str | None = None, cleanup: bool = True):
        super().__init__(label)
        self._dataset, self._dir, self._emit, self._base = dataset, directory, emit, base
        self._jsonl_dir = jsonl_directory or f"{directory}/jsonl"
        self._spill_dir = spill_directory or f"{directory}/_spill"
        self._cleanup = cleanup

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        spilled = batches | "Spill" >> beam.ParDo(_Spill(self._spill_dir))
        stats = spilled | "Stats" >> beam.CombineGlobally(_Stats(self._base, self._emit))
        keyed = spilled | "Assign" >> beam.FlatMap(_assign, stats=beam.pvalue.AsSingleton(stats))
        every = stats | "Every" >> beam.FlatMap(lambda st: [(i, None) for i in range(st[1])])
        infos = (
            (keyed, every)
            | "Merge" >> beam.Flatten()
            | "Group" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(_WriteShard(self._dataset, self._dir, self._emit, self._base,
                                                self._jsonl_dir),
                                    stats=beam.pvalue.AsSingleton(stats))
        )
        if self._cleanup:
            spill_dir = self._spill_dir
            # stats is a singleton; waiting on every info as a side input makes this run last
            _ = stats | "Cleanup" >> beam.Map(lambda _, done: delete_tree(spill_dir),
                                              done=beam.pvalue.AsList(infos))
        return infos
