"""The decontam report: per benchmark, training rows flagged, items hit, share of the benchmark
overlapped and sample (row, item) pairs with the matched span.

Built from the stage's own outputs: kept batches add to `rows_checked`; rejected batches add
their rows and the matches listed in each row's reject_detail. Partials merge with pure
functions (`empty`, `add`, `merge`, `finish`; combined by `transforms.kit.merge_combine`),
so the report is the same on every runner; samples are the smallest row ids (deterministic).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from transforms.decontam.detect import EXCERPT, STAGE

MAX_IDS_LISTED = 500


def _bench_acc() -> dict[str, Any]:
    return {"rows": 0, "items": set(), "samples": []}


def _partial(rows: int = 0, dead: int = 0) -> dict[str, Any]:
    return {"rows": rows, "flagged": 0, "dead": dead, "reasons": {}, "bench": {}}


def kept_partial(batch: pa.RecordBatch) -> dict[str, Any]:
    return _partial(rows=batch.num_rows)


def dead_partial(entry: dict[str, Any]) -> dict[str, Any]:
    return _partial(dead=1)


def _excerpt(messages: list[dict[str, str]] | None) -> str:
    for m in messages or []:
        if m.get("role") == "user":
            return (m.get("content") or "")[:EXCERPT]
    return ((messages or [{}])[0].get("content") or "")[:EXCERPT]


def rejected_partial(batch: pa.RecordBatch) -> dict[str, Any]:
    """Counts and matches of the rows this stage rejected."""
    part = _partial()
    for row in batch.select(["id", "messages", "reject_stage", "reject_reason",
                             "reject_detail"]).to_pylist():
        if row["reject_stage"] != STAGE:
            continue
        part["rows"] += 1
        part["flagged"] += 1
        part["reasons"][row["reject_reason"]] = part["reasons"].get(row["reject_reason"], 0) + 1
        detail = json.loads(row["reject_detail"] or "{}")
        seen_bench: set[str] = set()
        for m in detail.get("matches", []):
            acc = part["bench"].setdefault(m["benchmark"], _bench_acc())
            acc["items"].add(m["item_id"])
            if m["benchmark"] in seen_bench:
                continue
            seen_bench.add(m["benchmark"])
            acc["rows"] += 1
            acc["samples"].append({"row_id": row["id"], "rule": m["rule"],
                                   "item_id": m["item_id"], "overlap": m["overlap"],
                                   "span": m["span"], "row_excerpt": _excerpt(row["messages"])})
    return part


def empty() -> dict[str, Any]:
    return _partial()


def add(acc: dict[str, Any], part: dict[str, Any], sample_pairs: int) -> dict[str, Any]:
    """`acc` with one partial added (a new dict; samples: the smallest (row, item) pairs)."""
    out = {"rows": acc["rows"] + part["rows"], "flagged": acc["flagged"] + part["flagged"],
           "dead": acc["dead"] + part["dead"], "reasons": dict(acc["reasons"]),
           "bench": dict(acc["bench"])}
    for reason, count in part["reasons"].items():
        out["reasons"][reason] = out["reasons"].get(reason, 0) + count
    for name, b in part["bench"].items():
        mine = out["bench"].get(name, _bench_acc())
        samples = sorted(mine["samples"] + b["samples"], key=lambda s: (s["row_id"], s["item_id"]))
        out["bench"][name] = {"rows": mine["rows"] + b["rows"],
                              "items": mine["items"] | set(b["items"]),
                              "samples": samples[:sample_pairs]}
    return out


def merge(accs: Iterable[dict[str, Any]], sample_pairs: int) -> dict[str, Any]:
    out = empty()
    for acc in accs:
        out = add(out, acc, sample_pairs)
    return out


def finish(acc: dict[str, Any], totals: dict[str, int], skipped: dict[str, int],
           settings: dict[str, Any]) -> dict[str, Any]:
    """The REPORT dict: every benchmark of `totals`, hit or not."""
    benchmarks = {}
    for name, total in totals.items():
        b = acc["bench"].get(name, _bench_acc())
        hit = sorted(b["items"])
        benchmarks[name] = {
            "items": total,
            "items_skipped_empty": skipped.get(name, 0),
            "rows_flagged": b["rows"],
            "items_hit": len(hit),
            "share_overlapped": round(len(hit) / total, 6) if total else 0.0,
            "item_ids_hit": hit[:MAX_IDS_LISTED],
            "item_ids_truncated": len(hit) > MAX_IDS_LISTED,
            "samples": b["samples"],
        }
    return {"stage": STAGE, **settings, "rows_checked": acc["rows"],
            "rows_flagged": acc["flagged"], "rows_deadlettered": acc["dead"],
            "reasons": dict(sorted(acc["reasons"].items())),
            "benchmarks": benchmarks}
