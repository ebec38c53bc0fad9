"""WriteRejected: rejected batches from every stage → `<dir>/<stage>.parquet`.

Reads batches carrying reject_stage / reject_reason / reject_detail (and extra columns such as
duplicate_of). One file per stage, rows sorted by id then reason. Returns info dicts
{stage, path, rows, reasons: {reason: count}}. Drops nothing. Details are texts Refinery
writes about a failure (an unreadable answer's raw text, an error): secrets in them are
redacted as in the dead letter (transforms/redact.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from transforms.io.files import write_bytes
from transforms.io.shards import build_table, parquet_bytes, sha256
from transforms.redact import Redactor, may_hold_secret


def _stage_of(batch: pa.RecordBatch) -> str:
    return batch.column("reject_stage")[0].as_py()


def redact_details(batch: pa.RecordBatch, redactor: Redactor) -> pa.RecordBatch:
    """`batch` with `reject_detail` redacted; only details a cheap Arrow regex flags are
    rewritten in Python (most details are ids and numbers)."""
    i = batch.schema.get_field_index("reject_detail")
    if i < 0 or batch.num_rows == 0:
        return batch
    details = batch.column(i)
    flagged = may_hold_secret(details, redactor.env_names)
    if not pc.any(flagged).as_py():
        return batch
    values = details.to_pylist()
    for n in pc.indices_nonzero(flagged).to_pylist():
        values[n] = redactor(values[n])
    return batch.set_column(i, batch.schema.field(i), pa.array(values, details.type))


class _WriteStage(beam.DoFn):
    def __init__(self, directory: str, redactor: Redactor):
        self._dir, self._redactor = directory, redactor

    def process(self, item: tuple[str, Iterable[pa.RecordBatch]]) -> Iterable[dict[str, Any]]:
        stage, batches = item
        batches = [redact_details(b, self._redactor) for b in batches]
        base = pa.schema([batches[0].schema.field(n) for n in ("id",)])
        table = build_table(batches, base, extra_keys=("reject_reason",))
        data = parquet_bytes(table, "zstd")
        path = f"{self._dir}/{stage}.parquet"
        write_bytes(path, data)
        counts = pc.value_counts(table.column("reject_reason").combine_chunks()).to_pylist()
        yield {"stage": stage, "path": path, "rows": table.num_rows, "sha256": sha256(data),
               "reasons": {c["values"]: c["counts"] for c in counts}}


class WriteRejected(beam.PTransform):
    def __init__(self, directory: str, secret_envs: Iterable[str] = (), label: str | None = None):
        super().__init__(label)
        self._dir, self._redactor = directory, Redactor(secret_envs)

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        return (batches
                | "NonEmpty" >> beam.Filter(lambda b: b.num_rows > 0)
                | "ByStage" >> beam.Map(lambda b: (_stage_of(b), b))
                | "Group" >> beam.GroupByKey()
                | "Write" >> beam.ParDo(_WriteStage(self._dir, self._redactor)))
