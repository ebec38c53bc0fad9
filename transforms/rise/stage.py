"""RiseStage: error-injected preference pairs (RISE, arXiv 2410.06638) from math problems.

Reads Example batches (prompt messages, optionally a reference solution; gold answer in
meta.answer or the solution's `#### N` / `\\boxed{}`). With `sampled` / `self_edit` the policy
samples its own solutions and the editor edits them (paper_path.SelfSampleAndEdit); with
`rule_edit` alone the gold solutions are rule-edited (no model). Writes PAIRS (PreferencePair
batches, meta.method rule_edit / self_edit / sampled, meta.pair_kind full / step), STEP_PAIRS
(the step pairs again in RISE's trainer layout, schemas/step_pairs.py), REJECTED (one row per
problem that yields no pair, with its reason: no_solution, no_gold_answer, no_correct_sample,
no_applicable_step, edits_rejected, ...), DEADLETTER (one entry per problem that raised or whose
model calls failed), and one REPORT dict (report.py: empty/add/merge/finish; in = paired +
rejected + dead).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import apache_beam as beam
import pyarrow as pa

from schemas.records import pairs_to_batch
from transforms.base import (
    DEADLETTER,
    MAIN,
    PAIRS,
    REJECTED,
    REPORT,
    STEP_PAIRS,
    ApplyBatchFn,
    BatchResult,
    RunContext,
    deadletter_entry,
    reject_rows,
)
from transforms.kit import merge_combine
from transforms.rise import report
from transforms.rise.config import RiseConfig
from transforms.rise.pairs import STAGE, Problem, read_problem
from transforms.rise.report import merge_counts, summarize_pairs, summarize_rejected
from transforms.rise.rule_pairs import rule_edit_pairs
from transforms.rise.step_pairs import step_rows_batch

__all__ = ["STEP_PAIRS", "RiseStage", "prepare_batch", "rule_edit_batch"]


def _rejected_batch(batch: pa.RecordBatch, idx: list[int], reasons: list[str],
                    details: list[dict]) -> pa.RecordBatch | None:
    if not idx:
        return None
    return reject_rows(batch.take(pa.array(idx, pa.int64())), STAGE, reasons, details)


def _read(row: dict[str, Any], cfg: RiseConfig) -> Problem | str:
    sampling = cfg.samples_solutions
    return read_problem(row, require_correct=cfg.require_correct_solution and not sampling,
                        need_solution=not sampling)


def prepare_batch(batch: pa.RecordBatch, cfg: RiseConfig) -> BatchResult:
    """Keep rows that hold a usable problem; reject the others with their reason."""
    keep, idx, reasons, details, dead = [], [], [], [], []
    for i, row in enumerate(batch.to_pylist()):
        try:
            problem = _read(row, cfg)
        except Exception as e:  # malformed row: dead letter with the payload
            dead.append(deadletter_entry(STAGE, f"{type(e).__name__}: {e}", row,
                                         record_id=row.get("id")))
            continue
        if isinstance(problem, str):
            idx.append(i)
            reasons.append(problem)
            details.append({"method": "input"})
        else:
            keep.append(i)
    kept = batch.take(pa.array(keep, pa.int64()))
    return BatchResult(kept=kept, rejected=_rejected_batch(batch, idx, reasons, details),
                       deadletter=dead)


def rule_edit_batch(batch: pa.RecordBatch, cfg: RiseConfig, seed: int) -> BatchResult:
    """Rule-edit the gold solution of every problem of a prepared batch (no model)."""
    pairs, idx, reasons, details, dead = [], [], [], [], []
    for i, row in enumerate(batch.to_pylist()):
        try:
            problem = read_problem(row, require_correct=False)
            assert isinstance(problem, Problem)
            res = rule_edit_pairs(problem, problem.solution, problem.prompt, "gold", cfg, seed)
            if isinstance(res, str):
                idx.append(i)
                reasons.append(res)
                details.append({"method": "rule_edit"})
            else:
                pairs.append(res)
        except Exception as e:
            dead.append(deadletter_entry(STAGE, f"{type(e).__name__}: {e}", row,
                                         record_id=row.get("id")))
    kept = pairs_to_batch(pairs) if pairs else None
    return BatchResult(kept=kept, rejected=_rejected_batch(batch, idx, reasons, details),
                       deadletter=dead)


def _pair_summary(batch: pa.RecordBatch) -> dict[str, Any]:
    rows = batch.to_pylist()
    return merge_counts(summarize_pairs(rows),
                        {"problems_paired": len({r["meta"]["parent_id"] for r in rows})})


class RiseStage(beam.PTransform):
    """Example batches → {PAIRS, STEP_PAIRS, REJECTED, DEADLETTER, REPORT}; see the module
    docstring. Model roles: `policy` samples, `editor` edits (each the run's llm unless the
    config's `roles` names a block)."""

    def __init__(self, config: RiseConfig, ctx: RunContext, *, label: str | None = None):
        super().__init__(label)
        self.config, self.ctx = config, ctx

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg, seed = self.config, self.ctx.seed
        prep = batches | "Prepare" >> ApplyBatchFn(STAGE, partial(prepare_batch, cfg=cfg),
                                                   label="Prepare")
        summaries = [batches | "CountIn" >> beam.Map(lambda b: {"problems_in": b.num_rows})]
        if cfg.samples_solutions:
            from transforms.rise.paper_path import SelfSampleAndEdit

            path = prep[MAIN] | "SelfSampleAndEdit" >> SelfSampleAndEdit(cfg, self.ctx)
            summaries.append(path["summary"])
        else:
            path = prep[MAIN] | "RuleEdit" >> ApplyBatchFn(
                STAGE, partial(rule_edit_batch, cfg=cfg, seed=seed), label="RuleEdit")
            summaries.append(path[MAIN] | "SummarizeRulePairs" >> beam.Map(_pair_summary))
        pairs = path[MAIN]
        out_rej = (prep[REJECTED], path[REJECTED]) | "FlattenRejected" >> beam.Flatten()
        out_dead = (prep[DEADLETTER], path[DEADLETTER]) | "FlattenDead" >> beam.Flatten()
        summaries.append(out_rej | "SummarizeRejected" >> beam.Map(
            lambda b: summarize_rejected(b.column("reject_reason").to_pylist())))
        summaries.append(out_dead | "SummarizeDead" >> beam.Map(lambda _: {"deadletter": 1}))
        rep = (tuple(summaries) | "FlattenSummaries" >> beam.Flatten()
               | "MergeSummaries" >> beam.CombineGlobally(
                   merge_combine(report.empty, report.add, report.merge, report.finish)))
        steps = pairs | "StepLayout" >> beam.FlatMap(
            lambda b: [s] if (s := step_rows_batch(b)) is not None else [])
        return {PAIRS: pairs, STEP_PAIRS: steps, REJECTED: out_rej, DEADLETTER: out_dead,
                REPORT: rep}
