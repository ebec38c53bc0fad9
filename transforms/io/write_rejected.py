"""WriteRejected: rejected batches from every stage → `<dir>/<stage>.parquet`.

Reads batches carrying reject_stage / reject_reason / reject_detail (and extra columns such as
duplicate_of). One file per stage, rows sorted by id then reason. Returns info dicts
{stage, path, rows, reasons: {reason: count}}. Drops nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from transforms.io.files import write_bytes
from transforms.io.shards import build_table, parquet_bytes, sha256


def _stage_of(batch: pa.RecordBatch) -> str:
    return batch.column("reject_stage")[0].as_py()


class _WriteStage(beam.DoFn):
    def __init__(self, directory: str):
        self._dir = directory

    def process(self, item: tuple[str, Iterable[pa.RecordBatch]]) -> Iterable[dict[str, Any]]:
        stage, batches = item
        batches = list(batches)
        base = pa.schema([batches[0].schema.field(n) for n in ("id",)])
        table = build_table(batches, base, extra_keys=("reject_reason",))
        data = parquet_bytes(table, "zstd")
        path = f"{self._dir}/{stage}.parquet"
        write_bytes(path, data)
        counts = pc.value_counts(table.column("reject_reason").combine_chunks()).to_pylist()
        yield {"stage": stage, "path": path, "rows": table.num_rows, "sha256": sha256(data),
               "reasons": {c["values"]: c["counts"] for c in counts}}


class WriteRejected(beam.PTransform):
    def __init__(self, directory: str, label: str | None = None):
        super().__init__(label)
        self._dir = directory

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        return (batches
                | "NonEmpty" >> beam.Filter(lambda b: b.num_rows > 0)
                | "ByStage" >> beam.Map(lambda b: (_stage_of(b), b))
                | "Group" >> beam.GroupByKey()
                | "Write" >> beam.ParDo(_WriteStage(self._dir)))
