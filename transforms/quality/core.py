"""Pure batch functions of the quality stage (no Beam).

`score_batch`: reads messages, writes every heuristic signal (q_*) to meta, redacts PII when
configured. `filter_batch`: writes meta.quality_score, then drops rows matched by a filter
rule (rejected with the rule's reason). `heuristic_batch` does both; a batch that raises goes
row by row to the dead letter with the error and the row as payload.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from schemas.records import with_meta
from transforms.base import BatchResult, split_by_mask
from transforms.quality.composite import composite_score
from transforms.quality.config import FilterRule, QualityConfig
from transforms.quality.filters import check_rules, evaluate
from transforms.quality.pii import redact_messages
from transforms.quality.signals import compute_signals

STAGE = "quality"


def meta_names(batch: pa.RecordBatch) -> set[str]:
    meta = batch.schema.field("meta").type
    return {meta.field(i).name for i in range(meta.num_fields)}


def score_batch(batch: pa.RecordBatch, config: QualityConfig) -> pa.RecordBatch:
    """`batch` with the heuristic signals in meta (and PII redacted when configured)."""
    out = with_meta(batch, **compute_signals(batch))
    if config.pii.redact:
        out = redact_messages(out, tuple(config.pii.kinds))
    return out


def filter_batch(batch: pa.RecordBatch, config: QualityConfig,
                 rules: Sequence[FilterRule] | None = None, with_score: bool = True
                 ) -> BatchResult:
    """quality_score written, then rows matched by `rules` (default: all config filters
    usable on this batch) rejected with their reasons."""
    if with_score:
        batch = with_meta(batch, quality_score=composite_score(batch, config.composite))
    usable = check_rules(config.filters if rules is None else rules, meta_names(batch))
    keep, reasons, details = evaluate(batch, usable)
    return split_by_mask(batch, keep, STAGE, reasons, details)


def heuristic_batch(batch: pa.RecordBatch, config: QualityConfig) -> BatchResult:
    """Signals, composite score and filters of one batch. A failure propagates to
    ApplyBatchFn, which retries the batch row by row and dead-letters only the failing rows."""
    return filter_batch(score_batch(batch, config), config)


def signals_batch(batch: pa.RecordBatch, config: QualityConfig) -> BatchResult:
    """Signals and the filters on heuristic signals only (before the LLM scores)."""
    scored = score_batch(batch, config)
    return filter_batch(scored, config, rules=check_rules(config.filters, meta_names(scored)),
                        with_score=False)
