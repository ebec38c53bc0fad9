"""Filter rules over meta signals, vectorized with polars.

Reads the meta fields named by the rules; returns a keep mask and, for each dropped row, the
reason of the first matching rule (in config order) and a detail dict. A null signal never
matches; a rule whose signal is absent from the batch is an error unless it is optional.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import polars as pl
import pyarrow as pa

from transforms.quality.config import FilterRule

OP_NAMES = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}
# Signals produced only by optional stages: rules and terms on them are skipped when absent.
OPTIONAL_SIGNALS = frozenset({"q_judge_quality", "q_judge_complexity", "q_ifd", "quality_score"})


def rule_reason(rule: FilterRule) -> str:
    """The rule's reason, or `<signal>_<op>_<value>` made counter-safe."""
    if rule.reason:
        return rule.reason
    raw = f"{rule.signal}_{OP_NAMES[rule.op]}_{rule.value}".lower()
    return re.sub("[^a-z0-9_]+", "_", raw).strip("_")


def _compare(col: pl.Expr, op: str, lit: pl.Expr) -> pl.Expr:
    return {"<": col < lit, "<=": col <= lit, ">": col > lit, ">=": col >= lit,
            "==": col == lit, "!=": col != lit}[op]


def meta_frame(batch: pa.RecordBatch, names: Sequence[str]) -> pl.DataFrame:
    """The named meta fields (those present) as a polars frame."""
    meta = batch.column("meta")
    present = {meta.type.field(i).name for i in range(meta.type.num_fields)}
    cols = {n: meta.field(n) for n in names if n in present}
    return pl.from_arrow(pa.table(cols)) if cols else pl.DataFrame(height=batch.num_rows)


def check_rules(rules: Sequence[FilterRule], available: set[str]) -> list[FilterRule]:
    """Rules that can run on a batch with `available` meta fields; raises on unknown signals."""
    usable = []
    for rule in rules:
        if rule.signal in available:
            usable.append(rule)
        elif rule.signal not in OPTIONAL_SIGNALS:
            raise ValueError(f"filter on unknown signal {rule.signal!r}")
    return usable


def evaluate(batch: pa.RecordBatch, rules: Sequence[FilterRule]
             ) -> tuple[pa.Array, list[str | None], list[dict[str, Any] | None]]:
    """(keep mask, reason per row, detail per row) for `rules` on `batch`."""
    n = batch.num_rows
    if not rules or n == 0:
        return pa.array([True] * n, pa.bool_()), [None] * n, [None] * n
    names = sorted({r.signal for r in rules} | {"q_response_words", "q_kind"})
    frame = meta_frame(batch, names)
    kinds = "q_kind" in frame.columns
    hits = []
    for i, rule in enumerate(rules):
        thr, applies = pl.lit(rule.value), pl.lit(True)
        for k, v in (rule.by_kind.items() if kinds else ()):
            if v is None:
                applies = applies & (pl.col("q_kind") != k).fill_null(True)
            else:
                thr = pl.when(pl.col("q_kind") == k).then(pl.lit(v)).otherwise(thr)
        hit = (_compare(pl.col(rule.signal), rule.op, thr) & applies).fill_null(False)
        if rule.min_response_words and "q_response_words" in frame.columns:
            hit = hit & (pl.col("q_response_words") >= rule.min_response_words).fill_null(False)
        hits.append(hit.alias(f"_r{i}"))
    first = pl.lit(None, dtype=pl.Int32)
    for i in reversed(range(len(rules))):
        first = pl.when(pl.col(f"_r{i}")).then(pl.lit(i, dtype=pl.Int32)).otherwise(first)
    which = frame.with_columns(hits).select(first.alias("rule"))["rule"]
    keep = which.is_null()
    reasons: list[str | None] = [None] * n
    details: list[dict[str, Any] | None] = [None] * n
    dropped = (~keep).arg_true().to_list()
    if dropped:
        rule_idx = which.gather(dropped).to_list()
        for row, ri in zip(dropped, rule_idx, strict=False):
            rule = rules[ri]
            reasons[row] = rule_reason(rule)
            kind = frame["q_kind"][row] if kinds else None
            details[row] = {"signal": rule.signal, "op": rule.op,
                            "threshold": rule.by_kind.get(kind, rule.value),
                            "value": frame[rule.signal][row]}
            if kind is not None and rule.by_kind:
                details[row]["kind"] = kind
    return keep.to_arrow(), reasons, details
