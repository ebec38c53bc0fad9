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
from apache_beam.utils.windowed_value import WindowedValue

from schemas.unify import canonical_schema, conform, unify_schemas
from transforms.io._threads import InFlight
from transforms.io.config import EmitConfig
from transforms.io.files import delete_tree, read_arrow_batches, write_bytes
from transforms.io.shards import (
    concat_rows,
    id_prefix,
    jsonl_bytes,
    origin_counts,
    parquet_bytes,
    rows_by_shard,
    sha256,
    shard_count,
    shard_name,
    sort_rows,
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


def plan_shards(spilled: Iterable[Spilled], base: pa.Schema, emit: EmitConfig
                ) -> list[tuple[int, tuple[pa.Schema, int, list[tuple[str, np.ndarray]]]]]:
    """Every Spilled tuple → (shard, (schema, shard count, [(spill path, row indices)])) for
    every shard 0..n-1, empty ones included. The schema is the canonical union of all batch
    schemas (taken in a fixed order, so it does not depend on arrival order)."""
    spilled = list(spilled)
    schemas = {s[2].to_string(show_schema_metadata=False): s[2] for s in spilled}
    schema = canonical_schema(unify_schemas([base, *(schemas[k] for k in sorted(schemas))]), base)
    n = shard_count(sum(s[1] for s in spilled), emit.num_shards, emit.rows_per_shard)
    parts: list[list[tuple[str, np.ndarray]]] = [[] for _ in range(n)]
    for path, rows, _, prefix in spilled:
        if rows:
            for shard, idx in rows_by_shard(prefix, n):
                parts[shard].append((path, idx))
    return [(i, (schema, n, parts[i])) for i in range(n)]


def gather(parts: Iterable[tuple[str, np.ndarray]], schema: pa.Schema) -> pa.Table:
    """(spill path, row indices) pairs → one table of those rows in `schema`, sorted by
    `sort_rows` (ties keep the order of the parts by path, then indices, so the result does
    not depend on the order of `parts`). A path named twice is read once, used twice. Each
    part is taken from its memory-mapped spill, so a shard copies only its own rows
    (Arrow's take over chunks would first concatenate every spill, for every shard)."""
    loaded: dict[str, pa.Table] = {}
    taken = []
    for path, idx in sorted(parts, key=lambda p: (p[0], p[1].tobytes())):
        if path not in loaded:
            loaded[path] = conform(pa.Table.from_batches(read_arrow_batches(path)), schema)
        taken.append(loaded[path].take(pa.array(idx)))
    rows = concat_rows(taken, schema)
    del taken, loaded  # their memory serves the sorted copy
    return sort_rows(rows)


class _WriteShard(beam.DoFn):
    """(shard, [plan]) → its files and info dicts; two shards are written at once (see
    _threads.py)."""

    def __init__(self, dataset: str, directory: str, emit: EmitConfig, jsonl_directory: str):
        self._dataset, self._dir, self._emit = dataset, directory, emit
        self._jsonl_dir = jsonl_directory

    def setup(self) -> None:
        self._flight = InFlight(self._write)

    def teardown(self) -> None:
        self._flight.close()

    def start_bundle(self) -> None:
        self._flight.reset()

    def process(self, item: tuple[int, Iterable[tuple[pa.Schema, int, list]]],
                timestamp: Any = beam.DoFn.TimestampParam, window: Any = beam.DoFn.WindowParam
                ) -> Iterable[WindowedValue]:
        index, plans = item
        for infos, ts, win in self._flight.put((index, list(plans)), timestamp, window):
            yield from (WindowedValue(info, ts, [win]) for info in infos)

    def finish_bundle(self) -> Iterable[WindowedValue]:
        for infos, ts, win in self._flight.drain():
            yield from (WindowedValue(info, ts, [win]) for info in infos)

    def _write(self, item: tuple[int, list[tuple[pa.Schema, int, list]]]) -> list[dict]:
        index, [(schema, n, parts)] = item
        table = gather(parts, schema)
        expected = sum(len(idx) for _, idx in parts)
        if table.num_rows != expected:
            raise RuntimeError(f"shard {index}: gathered {table.num_rows} rows, expected {expected}")
        data = parquet_bytes(table, self._emit.compression)
        path = f"{self._dir}/{shard_name(self._emit.split, index, n)}"
        write_bytes(path, data)
        info = {"dataset": self._dataset, "path": path, "rows": table.num_rows,
                "sha256": sha256(data), "format": "parquet"}
        origins = origin_counts(table)  # for the manifest, which need not read the shard back
        if origins is not None:
            info["origins"] = origins
        if not self._emit.jsonl:
            return [info]
        jpath = f"{self._jsonl_dir}/{shard_name(self._emit.split, index, n, 'jsonl')}"
        jdata = jsonl_bytes(table)
        write_bytes(jpath, jdata)
        return [info, {**info, "path": jpath, "sha256": sha256(jdata), "format": "jsonl"}]


class WriteShards(beam.PTransform):
    """Batches → sharded files under `directory`; returns a PCollection of shard info dicts.
    `spill_directory` (default `<directory>/_spill`) holds the spill files; it is deleted at
    the end unless `cleanup=False` (then the caller deletes it, e.g. with its staging dir)."""

    def __init__(self, dataset: str, directory: str, emit: EmitConfig, base: pa.Schema,
                 jsonl_directory: str | None = None, label: str | None = None,
                 spill_directory: str | None = None, cleanup: bool = True):
        super().__init__(label)
        self._dataset, self._dir, self._emit, self._base = dataset, directory, emit, base
        self._jsonl_dir = jsonl_directory or f"{directory}/jsonl"
        self._spill_dir = spill_directory or f"{directory}/_spill"
        self._cleanup = cleanup

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        # Few DoFns on purpose: each costs the DirectRunner tens of ms of signature inspection.
        spilled = batches | "Spill" >> beam.ParDo(_Spill(self._spill_dir))
        start = beam.pvalue.PBegin(batches.pipeline) | "Start" >> beam.Impulse()
        base, emit = self._base, self._emit
        infos = (
            start
            | "Plan" >> beam.FlatMap(lambda _, sp: plan_shards(sp, base, emit),
                                     sp=beam.pvalue.AsList(spilled))
            | "Group" >> beam.GroupByKey()  # spreads the shards over workers
            | "Write" >> beam.ParDo(_WriteShard(self._dataset, self._dir, self._emit,
                                                self._jsonl_dir))
        )
        if self._cleanup:
            spill_dir = self._spill_dir
            # waiting on every info as a side input makes this run after the last shard
            _ = start | "Cleanup" >> beam.Map(lambda _, done: delete_tree(spill_dir),
                                              done=beam.pvalue.AsList(infos))
        return infos
