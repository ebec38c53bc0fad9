"""RiseStage: error-injected preference pairs (RISE) from correct step-by-step math solutions.

Reads Example batches (prompt messages + assistant solution; gold answer in meta.answer or the
solution's `#### N` / `\\boxed{}`). Writes PAIRS (PreferencePair batches, meta.method in
rule_edit / self_edit / sampled), REJECTED (input rows with reason: no_solution, no_gold_answer,
solution_disagrees_with_gold, no_applicable_step, a filter's reason, ...; detail.method says
which method), DEADLETTER (rows that raised), and one REPORT dict (counts, error-type
distribution, mean edit distance, self-edit filter pass count).
"""

from __future__ import annotations

import random
from functools import partial
from typing import Any

import apache_beam as beam
import pyarrow as pa

from schemas.records import examples_to_batch, pairs_to_batch
from transforms.base import (
    DEADLETTER,
    MAIN,
    METRICS_NAMESPACE,
    PAIRS,
    REJECTED,
    REPORT,
    ApplyBatchFn,
    BatchResult,
    RunContext,
    deadletter_entry,
    reject_rows,
)
from transforms.kit import GenerateStep
from transforms.rise.config import RiseConfig
from transforms.rise.pairs import (
    STAGE,
    Problem,
    finalize_report,
    make_pair,
    merge_counts,
    read_problem,
    summarize_pairs,
    summarize_rejected,
)
from transforms.rise.rule_editor import rule_edit


def _rejected_batch(batch: pa.RecordBatch, idx: list[int], reasons: list[str],
                    details: list[dict]) -> pa.RecordBatch | None:
    if not idx:
        return None
    return reject_rows(batch.take(pa.array(idx, pa.int64())), STAGE, reasons, details)


def prepare_batch(batch: pa.RecordBatch, cfg: RiseConfig) -> BatchResult:
    """Keep rows that hold a usable problem; reject the others with their reason."""
    keep, idx, reasons, details, dead = [], [], [], [], []
    for i, row in enumerate(batch.to_pylist()):
        try:
            problem = read_problem(row, cfg.require_correct_solution)
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


def _prepared_problem(row: dict[str, Any]) -> Problem:
    """The problem of a row that `prepare_batch` kept (raises if it no longer reads as one)."""
    problem = read_problem(row, require_correct=False)
    if isinstance(problem, str):
        raise ValueError(f"prepared row {row.get('id')} has no problem: {problem}")
    return problem


def rule_edit_batch(batch: pa.RecordBatch, cfg: RiseConfig, seed: int) -> BatchResult:
    """Rule-edit every problem of a prepared batch: pairs out, failures rejected."""
    pairs, idx, reasons, details, dead = [], [], [], [], []
    for i, row in enumerate(batch.to_pylist()):
        try:
            problem = _prepared_problem(row)
            rng = random.Random(f"{seed}:{problem.id}:rule_edit")
            res = rule_edit(problem.solution, problem.question, rng, cfg.max_edit_distance,
                            cfg.max_attempts, cfg.error_types)
            if isinstance(res, str):
                idx.append(i)
                reasons.append(res)
                details.append({"method": "rule_edit"})
                continue
            end_new = res.step.end + len(res.edited) - len(problem.solution)
            chosen, rejected = ((problem.solution, res.edited) if cfg.scope == "full"
                                else (problem.solution[:res.step.end], res.edited[:end_new]))
            pairs.append(make_pair(
                problem, chosen, rejected, "rule_edit", res.error_type, res.step.index,
                cfg.strip_boxed_rejected, edit_distance=res.edit_distance,
                extra={"equation_before": res.equation_before,
                       "equation_after": res.equation_after, "edit": res.detail}))
        except Exception as e:
            dead.append(deadletter_entry(STAGE, f"{type(e).__name__}: {e}", row,
                                         record_id=row.get("id")))
    kept = pairs_to_batch(pairs) if pairs else None
    return BatchResult(kept=kept, rejected=_rejected_batch(batch, idx, reasons, details),
                       deadletter=dead)


class _PlanLLM(beam.DoFn):
    """Prepared batch → ChatRequests (self_edit, sampled); problems with no step to edit go
    out tagged REJECTED as (row, reason, detail)."""

    def __init__(self, cfg: RiseConfig, seed: int):
        self.cfg, self.seed = cfg, seed

    def process(self, batch: pa.RecordBatch):
        from transforms.rise.self_edit import plan_sampled, plan_self_edit

        for row in batch.to_pylist():
            problem = _prepared_problem(row)
            if "self_edit" in self.cfg.methods:
                req = plan_self_edit(problem, self.cfg, self.seed)
                if isinstance(req, str):
                    yield beam.pvalue.TaggedOutput(
                        REJECTED, (row, req, {"method": "self_edit"}))
                else:
                    yield _with_row(req, row)
            if "sampled" in self.cfg.methods:
                yield _with_row(plan_sampled(problem, self.cfg, self.seed), row)


def _with_row(req: Any, row: dict) -> Any:
    import dataclasses

    return dataclasses.replace(req, payload={**req.payload, "row": row})


class _Outcome(beam.DoFn):
    """ChatResult → pair rows (MAIN), (row, reason, detail) (REJECTED), a summary ('summary')."""

    def __init__(self, cfg: RiseConfig, seed: int):
        self.cfg, self.seed = cfg, seed

    def process(self, result: Any):
        from transforms.rise.self_edit import sampled_outcome, self_edit_outcome

        method = result.key.rsplit(":", 1)[1]
        row = result.payload["row"]
        try:
            if method == "self_edit":
                pair, reason, detail = self_edit_outcome(result, self.cfg)
                rows = [pair] if pair is not None else []
            else:
                rows, reason, detail = sampled_outcome(result, self.cfg, self.seed)
        except Exception as e:
            yield beam.pvalue.TaggedOutput(DEADLETTER, deadletter_entry(
                STAGE, f"{type(e).__name__}: {e}", row, record_id=row.get("id")))
            return
        ns = f"{METRICS_NAMESPACE}.{STAGE}"
        if reason is not None:
            beam.metrics.Metrics.counter(ns, f"dropped_{reason}").inc()
            yield beam.pvalue.TaggedOutput(REJECTED, (row, reason, {"method": method, **detail}))
            return
        beam.metrics.Metrics.counter(ns, f"pairs_{method}").inc(len(rows))
        yield beam.pvalue.TaggedOutput("summary", summarize_pairs(rows))
        yield from rows


def _dead_to_example(entry: dict[str, Any]) -> dict[str, Any]:
    """A serving-layer dead-letter entry keyed by the example id (request key minus method)."""
    key = entry.get("record_id") or ""
    return {**entry, "record_id": key.rsplit(":", 1)[0] if ":" in key else key}


def _rows_to_rejected(items: list[tuple[dict, str, dict]]) -> pa.RecordBatch:
    batch = examples_to_batch([it[0] for it in items])
    return reject_rows(batch, STAGE, [it[1] for it in items], [it[2] for it in items])


class _MergeCounts(beam.CombineFn):
    def create_accumulator(self) -> dict[str, Any]:
        return {}

    def add_input(self, acc: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        return merge_counts(acc, item)

    def merge_accumulators(self, accs):
        out: dict[str, Any] = {}
        for a in accs:
            out = merge_counts(out, a)
        return out

    def extract_output(self, acc: dict[str, Any]) -> dict[str, Any]:
        return acc


def _rejected_summary(batch: pa.RecordBatch) -> dict[str, Any]:
    return summarize_rejected(batch.column("reject_detail").to_pylist(),
                              batch.column("reject_reason").to_pylist())


class RiseStage(beam.PTransform):
    """Example batches → {PAIRS, REJECTED, DEADLETTER, REPORT}; see the module docstring."""

    def __init__(self, config: RiseConfig, ctx: RunContext, *, label: str | None = None):
        super().__init__(label)
        self.config, self.ctx = config, ctx

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg, seed = self.config, self.ctx.seed
        prep = batches | "Prepare" >> ApplyBatchFn(STAGE, partial(prepare_batch, cfg=cfg),
                                                   label="Prepare")
        pairs, rejected, dead = [], [prep[REJECTED]], [prep[DEADLETTER]]
        summaries = [batches | "CountIn" >> beam.Map(lambda b: {"examples_in": b.num_rows})]
        if "rule_edit" in cfg.methods:
            rule = prep[MAIN] | "RuleEdit" >> ApplyBatchFn(
                STAGE, partial(rule_edit_batch, cfg=cfg, seed=seed), label="RuleEdit")
            pairs.append(rule[MAIN])
            rejected.append(rule[REJECTED])
            dead.append(rule[DEADLETTER])
            summaries.append(rule[MAIN] | "SummarizeRulePairs" >> beam.Map(
                lambda b: summarize_pairs(b.to_pylist())))
        if any(m in cfg.methods for m in ("self_edit", "sampled")):
            pairs_llm, rej_llm, dead_llm, summ_llm = self._llm_paths(prep[MAIN])
            pairs.append(pairs_llm)
            rejected.append(rej_llm)
            dead.extend(dead_llm)
            summaries.append(summ_llm)
        out_pairs = tuple(pairs) | "FlattenPairs" >> beam.Flatten()
        out_rej = tuple(rejected) | "FlattenRejected" >> beam.Flatten()
        out_dead = tuple(dead) | "FlattenDead" >> beam.Flatten()
        summaries.append(out_rej | "SummarizeRejected" >> beam.Map(_rejected_summary))
        summaries.append(out_dead | "SummarizeDead" >> beam.Map(lambda _: {"deadletter": 1}))
        report = (tuple(summaries) | "FlattenSummaries" >> beam.Flatten()
                  | "MergeSummaries" >> beam.CombineGlobally(_MergeCounts())
                  | "FinalizeReport" >> beam.Map(finalize_report))
        return {PAIRS: out_pairs, REJECTED: out_rej, DEADLETTER: out_dead, REPORT: report}

    def _llm_paths(self, prepared: beam.PCollection):
        cfg, seed = self.config, self.ctx.seed
        planned = prepared | "PlanLLM" >> beam.ParDo(_PlanLLM(cfg, seed)).with_outputs(
            REJECTED, main="requests")
        gen = planned["requests"] | "Generate" >> GenerateStep(
            self.ctx, stage=STAGE, step="generate", role="policy")
        gen_dead = gen[DEADLETTER] | "DeadToExample" >> beam.Map(_dead_to_example)
        outcome = gen[MAIN] | "Outcome" >> beam.ParDo(_Outcome(cfg, seed)).with_outputs(
            REJECTED, DEADLETTER, "summary", main="pairs")
        size = cfg.batch_rows
        pair_batches = (outcome["pairs"]
                        | "BatchPairs" >> beam.BatchElements(min_batch_size=1,
                                                             max_batch_size=size)
                        | "PairsToBatch" >> beam.Map(pairs_to_batch))
        rej = ((planned[REJECTED], outcome[REJECTED]) | "FlattenLLMRejected" >> beam.Flatten()
               | "BatchRejected" >> beam.BatchElements(min_batch_size=1, max_batch_size=size)
               | "RejectedToBatch" >> beam.Map(_rows_to_rejected))
        return pair_batches, rej, [gen_dead, outcome[DEADLETTER]], outcome["summary"]

