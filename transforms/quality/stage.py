"""QualityStage: heuristic signals → optional LLM ratings / IFD → composite score → filters
→ optional diverse top-K selection.

Reads Example batches. Writes q_* signals and quality_score into meta. Kept rows → MAIN;
rows matched by a filter rule → REJECTED with the rule's reason (counter dropped_<reason>);
rows not selected → REJECTED `not_selected`; batches that fail → DEADLETTER per row.
With judge / IFD enabled: heuristic filters first, then the LLM ratings (judge.py) and IFD
(ifd.py), then the composite score and the filters on those scores. A failed rating keeps its
row (null score, meta.q_judge_note); its LLM dead-letter entry (stage `quality.judge`) is
passed on to DEADLETTER.
REPORT: one dict with row counts and mean signals of the kept rows.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from transforms.base import DEADLETTER, MAIN, REJECTED, REPORT, ApplyBatchFn, RunContext
from transforms.quality.config import QualityConfig
from transforms.quality.core import STAGE, filter_batch, guarded, heuristic_batch, signals_batch
from transforms.quality.filters import OPTIONAL_SIGNALS
from transforms.quality.selection import DiverseTopK

REPORT_SIGNALS = ("quality_score", "q_response_words", "q_dup_line_frac", "q_top2gram_frac",
                  "q_dup5gram_frac", "q_non_alnum_frac", "q_judge_quality",
                  "q_judge_complexity", "q_ifd")


def _late_filters(batch: pa.RecordBatch, config: QualityConfig) -> Any:
    rules = [r for r in config.filters if r.signal in OPTIONAL_SIGNALS]
    return guarded(filter_batch, batch, config, rules)


def batch_summary(batch: pa.RecordBatch) -> dict[str, Any]:
    """Row count and per-signal (sum, non-null count) of one kept batch."""
    meta = batch.column("meta")
    names = {meta.type.field(i).name for i in range(meta.type.num_fields)}
    sums = {}
    for name in REPORT_SIGNALS:
        if name in names:
            col = meta.field(name).cast(pa.float64())
            sums[name] = (pc.sum(col).as_py() or 0.0, len(col) - col.null_count)
    return {"rows": batch.num_rows, "sums": sums}


class _MergeSummaries(beam.CombineFn):
    def create_accumulator(self) -> dict[str, Any]:
        return {"rows": 0, "sums": {}}

    def add_input(self, acc: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        acc["rows"] += item["rows"]
        for name, (s, c) in item["sums"].items():
            s0, c0 = acc["sums"].get(name, (0.0, 0))
            acc["sums"][name] = (s0 + s, c0 + c)
        return acc

    def merge_accumulators(self, accs: Any) -> dict[str, Any]:
        out = self.create_accumulator()
        for acc in accs:
            self.add_input(out, acc)
        return out

    def extract_output(self, acc: dict[str, Any]) -> dict[str, Any]:
        means = {n: s / c for n, (s, c) in sorted(acc["sums"].items()) if c}
        return {"stage": STAGE, "rows_kept": acc["rows"], "signal_means": means}


class QualityStage(beam.PTransform):
    """The quality stage; returns {MAIN, REJECTED, DEADLETTER, REPORT}."""

    def __init__(self, config: QualityConfig, ctx: RunContext, *, label: str | None = None):
        super().__init__(label)
        self.config, self.ctx = config, ctx

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg = self.config
        rejected, dead = [], []
        if cfg.judge.enabled or cfg.ifd.enabled:
            first = batches | "Signals" >> ApplyBatchFn(STAGE, partial(signals_batch, config=cfg))
            rejected.append(first[REJECTED])
            dead.append(first[DEADLETTER])
            scored = first[MAIN]
            if cfg.judge.enabled:
                from transforms.quality.judge import JudgeScores

                judged = scored | "Judge" >> JudgeScores(cfg.judge, self.ctx)
                dead.append(judged[DEADLETTER])
                scored = judged[MAIN]
            if cfg.ifd.enabled:
                from transforms.quality.ifd import IFDScores

                ifd = scored | "IFD" >> IFDScores(cfg.ifd, self.ctx)
                dead.append(ifd[DEADLETTER])
                scored = ifd[MAIN]
            # own metrics namespace: refinery.quality counts rows_in once (at "Signals")
            last = scored | "ScoreFilter" >> ApplyBatchFn(
                f"{STAGE}.scores", partial(_late_filters, config=cfg))
        else:
            last = batches | "Heuristics" >> ApplyBatchFn(
                STAGE, partial(heuristic_batch, config=cfg))
        rejected.append(last[REJECTED])
        dead.append(last[DEADLETTER])
        kept = last[MAIN]
        if cfg.selection.enabled:
            sel = kept | "Select" >> DiverseTopK(cfg.selection, self.ctx.embeddings)
            rejected.append(sel[REJECTED])
            kept = sel[MAIN]
        report = (kept | "Summarize" >> beam.Map(batch_summary)
                  | "Report" >> beam.CombineGlobally(_MergeSummaries()))
        return {
            MAIN: kept,
            REJECTED: tuple(rejected) | "FlattenRejected" >> beam.Flatten(),
            DEADLETTER: tuple(dead) | "FlattenDeadletter" >> beam.Flatten(),
            REPORT: report,
        }
