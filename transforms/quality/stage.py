"""QualityStage: heuristic signals → optional LLM ratings / IFD → composite score → filters
→ optional diverse top-K selection.

Reads Example batches. Writes q_* signals and quality_score into meta. Kept rows → MAIN;
rows matched by a filter rule → REJECTED with the rule's reason (counter dropped_<reason>);
rows not selected → REJECTED `not_selected`; a batch that fails is retried row by row and
only the failing rows → DEADLETTER (ApplyBatchFn).
With judge / IFD enabled: heuristic filters first, then the LLM ratings (judge.py) and IFD
(ifd.py), then the composite score and the filters on those scores. A failed judge call keeps
its row (null score, meta.q_judge_note); its dead-letter entry (stage `quality.judge`) is
passed on to DEADLETTER; a rating that cannot be read rejects its row (`judge_unparseable`).
REPORT: one dict with row counts and mean signals of the kept rows.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import apache_beam as beam
import pyarrow as pa

from transforms.base import DEADLETTER, MAIN, REJECTED, REPORT, ApplyBatchFn, RunContext
from transforms.kit import RejectRows, merge_combine
from transforms.quality import report
from transforms.quality.config import QualityConfig
from transforms.quality.core import STAGE, filter_batch, heuristic_batch, signals_batch
from transforms.quality.filters import OPTIONAL_SIGNALS
from transforms.quality.selection import DiverseTopK


def _late_filters(batch: pa.RecordBatch, config: QualityConfig) -> Any:
    rules = [r for r in config.filters if r.signal in OPTIONAL_SIGNALS]
    return filter_batch(batch, config, rules)


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
                rejected.append(judged[REJECTED] | "JudgeRejected" >> RejectRows(STAGE))
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
        all_rejected = tuple(rejected) | "FlattenRejected" >> beam.Flatten()
        summaries = (kept | "Summarize" >> beam.Map(report.batch_summary),
                     all_rejected | "SummarizeDrops" >> beam.Map(report.rejected_summary))
        summary = (summaries | "FlattenSummaries" >> beam.Flatten()
                   | "Report" >> beam.CombineGlobally(merge_combine(
                       report.empty, report.add, report.merge, report.finish)))
        return {
            MAIN: kept,
            REJECTED: all_rejected,
            DEADLETTER: tuple(dead) | "FlattenDeadletter" >> beam.Flatten(),
            REPORT: summary,
        }
