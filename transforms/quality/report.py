"""The quality stage's REPORT as pure functions (combined by `transforms.kit.merge_combine`).

Reads kept Example batches; writes {stage, rows_kept, signal_means}: the row count and the mean
of each report signal over the kept rows that have it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from transforms.quality.core import STAGE

REPORT_SIGNALS = ("quality_score", "q_response_words", "q_dup_line_frac", "q_top2gram_frac",
                  "q_dup5gram_frac", "q_non_alnum_frac", "q_judge_quality",
                  "q_judge_complexity", "q_ifd")
Acc = dict[str, Any]  # {"rows": int, "sums": {signal: (sum, non-null count)}}


def batch_summary(batch: pa.RecordBatch) -> Acc:
    """Row count and per-signal (sum, non-null count) of one kept batch."""
    meta = batch.column("meta")
    names = {meta.type.field(i).name for i in range(meta.type.num_fields)}
    sums = {}
    for name in REPORT_SIGNALS:
        if name in names:
            col = meta.field(name).cast(pa.float64())
            sums[name] = (pc.sum(col).as_py() or 0.0, len(col) - col.null_count)
    return {"rows": batch.num_rows, "sums": sums}


def empty() -> Acc:
    return {"rows": 0, "sums": {}}


def add(acc: Acc, item: Acc) -> Acc:
    sums = dict(acc["sums"])
    for name, (s, c) in item["sums"].items():
        s0, c0 = sums.get(name, (0.0, 0))
        sums[name] = (s0 + s, c0 + c)
    return {"rows": acc["rows"] + item["rows"], "sums": sums}


def merge(accs: Iterable[Acc]) -> Acc:
    out = empty()
    for acc in accs:
        out = add(out, acc)
    return out


def finish(acc: Acc) -> dict[str, Any]:
    means = {n: s / c for n, (s, c) in sorted(acc["sums"].items()) if c}
    return {"stage": STAGE, "rows_kept": acc["rows"], "signal_means": means}
