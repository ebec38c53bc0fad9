"""The quality stage's REPORT as pure functions (combined by `transforms.kit.merge_combine`).

Reads kept Example batches; writes {stage, rows_kept, signal_means, drops}: the row count, the
mean of each report signal over the kept rows that have it, and (from the rejected batches)
every filter's drops per source dataset, so a user sees where a filter bites.
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


def rejected_summary(batch: pa.RecordBatch) -> Acc:
    """Drops of one rejected batch: {reason: {source dataset: rows}}."""
    drops: dict[str, dict[str, int]] = {}
    sources = batch.column("source").field("dataset").to_pylist()
    for reason, src in zip(batch.column("reject_reason").to_pylist(), sources, strict=True):
        per = drops.setdefault(reason or "unknown", {})
        per[src or "unknown"] = per.get(src or "unknown", 0) + 1
    return {"rows": 0, "sums": {}, "drops": drops}


def empty() -> Acc:
    return {"rows": 0, "sums": {}, "drops": {}}


def add(acc: Acc, item: Acc) -> Acc:
    sums = dict(acc["sums"])
    for name, (s, c) in item["sums"].items():
        s0, c0 = sums.get(name, (0.0, 0))
        sums[name] = (s0 + s, c0 + c)
    drops = {r: dict(per) for r, per in acc.get("drops", {}).items()}
    for r, per in item.get("drops", {}).items():
        mine = drops.setdefault(r, {})
        for src, n in per.items():
            mine[src] = mine.get(src, 0) + n
    return {"rows": acc["rows"] + item["rows"], "sums": sums, "drops": drops}


def merge(accs: Iterable[Acc]) -> Acc:
    out = empty()
    for acc in accs:
        out = add(out, acc)
    return out


def finish(acc: Acc) -> dict[str, Any]:
    means = {n: s / c for n, (s, c) in sorted(acc["sums"].items()) if c}
    drops = {r: dict(sorted(per.items())) for r, per in sorted(acc.get("drops", {}).items())}
    return {"stage": STAGE, "rows_kept": acc["rows"], "signal_means": means, "drops": drops}
