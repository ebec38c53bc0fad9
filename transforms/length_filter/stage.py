"""LengthFilterStage: the example stage of docs/DEVELOPING.md (a complete, registered stage).

Reads Example batches; writes MAIN (rows whose first assistant answer has at least `min_chars`
characters, with meta.answer_chars), REJECTED (reason `too_short`), DEADLETTER (empty: nothing
here fails per row) and REPORT ({stage, rows_kept}). Counters in refinery.length_filter.
"""

from __future__ import annotations

from functools import partial

import apache_beam as beam
import pyarrow as pa

from schemas.records import first_turn, with_meta
from transforms.base import MAIN, REPORT, ApplyBatchFn, BatchResult, RunContext, split_by_mask
from transforms.length_filter.config import LengthFilterConfig

STAGE = "length_filter"


def filter_batch(batch: pa.RecordBatch, config: LengthFilterConfig) -> BatchResult:
    """Pure core: answer lengths into meta, short rows rejected with reason `too_short`."""
    chars = [len(first_turn(m, "assistant")) for m in batch.column("messages").to_pylist()]
    batch = with_meta(batch, answer_chars=pa.array(chars, pa.int64()))
    keep = [n >= config.min_chars for n in chars]
    return split_by_mask(batch, keep, STAGE, [None if k else "too_short" for k in keep])


class LengthFilterStage(beam.PTransform):
    """Example batches → {MAIN, REJECTED, DEADLETTER, REPORT}; see the module docstring."""

    def __init__(self, config: LengthFilterConfig, ctx: RunContext, *, label: str | None = None):
        super().__init__(label)
        self.config, self.ctx = config, ctx

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        out = batches | "Filter" >> ApplyBatchFn(STAGE, partial(filter_batch, config=self.config))
        report = (out[MAIN] | "Rows" >> beam.Map(lambda b: b.num_rows)
                  | "Sum" >> beam.CombineGlobally(sum)
                  | "Report" >> beam.Map(lambda n: {"stage": STAGE, "rows_kept": n}))
        return {**out, REPORT: report}
