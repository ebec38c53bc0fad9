"""DecontamStage: drops training rows that overlap benchmark items.

Reads Example batches; writes MAIN (clean rows, unchanged), REJECTED (contaminated rows, reason
`contaminated_<rule>` or `contaminated_paraphrase`, detail with benchmark, item id, overlap and
matched span), DEADLETTER (rows whose check failed) and one REPORT dict per run. Benchmarks are
loaded when the graph is built (a bad path or an unreachable Hugging Face dataset fails there,
with the benchmark's name); their items travel with the DoFn and each worker builds the n-gram
index once in `setup` (cached per process).
"""

from __future__ import annotations

import functools
from typing import Any

import apache_beam as beam

from transforms.base import DEADLETTER, MAIN, REJECTED, REPORT, ApplyBatchFn, RunContext
from transforms.decontam import report
from transforms.decontam.benchmarks import BenchmarkItems, load_benchmarks
from transforms.decontam.config import DecontamConfig
from transforms.decontam.detect import STAGE, cached_detector, detect_batch
from transforms.decontam.report import dead_partial, kept_partial, rejected_partial
from transforms.kit import merge_combine


class DecontamStage(beam.PTransform):
    """Example batches → {MAIN, REJECTED, DEADLETTER, REPORT}."""

    def __init__(self, config: DecontamConfig, ctx: RunContext, *, label: str | None = None):
        super().__init__(label)
        self.config = config
        self.ctx = ctx
        self._items: BenchmarkItems | None = None

    def items(self) -> BenchmarkItems:
        """The benchmark items (loaded once, on first use)."""
        if self._items is None:
            self._items = load_benchmarks(self.config.benchmarks)
        return self._items

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        items = self.items()
        embeddings = self.ctx.embeddings
        setup = functools.partial(
            cached_detector, self.config.model_dump_json(), items,
            embeddings.model_dump_json())
        out = batches | "Detect" >> ApplyBatchFn(STAGE, detect_batch, setup=setup)
        settings: dict[str, Any] = {
            "rules": [r.model_dump() for r in self.config.rules],
            "scope": self.config.scope,
            "mask_numbers": self.config.mask_numbers,
            "paraphrase": self.config.paraphrase.model_dump(),
        }
        partials = (
            out[MAIN] | "KeptCounts" >> beam.Map(kept_partial),
            out[REJECTED] | "RejectedCounts" >> beam.Map(rejected_partial),
            out[DEADLETTER] | "DeadCounts" >> beam.Map(dead_partial),
        )
        n_samples = self.config.sample_pairs
        summary = (
            partials
            | "AllPartials" >> beam.Flatten()
            | "Report" >> beam.CombineGlobally(merge_combine(
                report.empty, functools.partial(report.add, sample_pairs=n_samples),
                functools.partial(report.merge, sample_pairs=n_samples),
                functools.partial(report.finish, totals=items.counts(), skipped=items.skipped,
                                  settings=settings)))
        )
        return {MAIN: out[MAIN], REJECTED: out[REJECTED], DEADLETTER: out[DEADLETTER],
                REPORT: summary}
