"""SelfSampleAndEdit: the RISE paper's flow on the serving layer (two roles, two model calls).

Reads prepared Example batches. Step 1 (`solve`): the `policy` role (`roles.policy`, default
the run's llm) samples k "Step k:" solutions per problem from the solve prompt (system + user
messages, which become every pair's `prompt`). Step 2: samples are graded and paired
(sampling.after_sampling); edit jobs go to step `edit`, the `editor` role (`roles.editor`,
default the run's llm). Step 3: each edit is
filtered and becomes a step pair or an edit-level rejection (self_edit.edit_outcome). Step 4:
per problem (grouped by id), a problem with no pair ends in REJECTED (its reasons) or, when its
model calls failed, in DEADLETTER; its surviving step pairs are kept there (paper mode: M random
ones, paper_steps.select_step_pairs). With `mode: paper` steps 1-3 are the authors' own
(paper_steps: prefilled solve and edit requests, their grading, filters and selection).
Returns {MAIN: pair batches, REJECTED: batches,
DEADLETTER: entries, "summary": count dicts}. Metrics: refinery.rise.solve / refinery.rise.edit
(kit.GenerateStep), refinery.rise: pairs_self_edit, edit_dropped_<reason>, dropped_<reason>.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam

from schemas.ids import derive_seed
from schemas.records import pairs_to_batch
from transforms.base import DEADLETTER, MAIN, REJECTED, RunContext, deadletter_entry
from transforms.kit import GenerateStep, Rejection, RejectRows, metrics_namespace
from transforms.llm.api import ChatRequest, ChatResult, SamplingParams
from transforms.rise import paper_steps
from transforms.rise.config import RiseConfig
from transforms.rise.pairs import STAGE, Problem, read_problem, summarize_pairs
from transforms.rise.sampling import after_sampling
from transforms.rise.self_edit import edit_outcome, edit_request
from transforms.rise.templates import solve_messages

NS = metrics_namespace(STAGE)
STATUS, EDITS, SUMMARY = "status", "edits", "summary"


def solve_request(row: dict[str, Any], cfg: RiseConfig, seed: int) -> ChatRequest:
    """The policy's request for one problem: k samples of the solve prompt."""
    problem = read_problem(row, require_correct=False, need_solution=False)
    assert isinstance(problem, Problem)
    if cfg.mode == "paper":
        return paper_steps.solve_request(problem, row, cfg, seed)
    msgs, version = solve_messages(problem.question)
    s = cfg.sampling
    sp = SamplingParams(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
                        n=s.samples, seed=derive_seed(seed, problem.id, "solve"))
    return ChatRequest(key=f"{problem.id}:solve",
                       messages=tuple((m["role"], m["content"]) for m in msgs), sampling=sp,
                       template_version=version,
                       payload={"row": row, "problem": problem.__dict__, "prompt": msgs})


def problem_id(key: str) -> str:
    """The problem id of a request key (`<id>:solve`, `<id>:edit:<k>`)."""
    return key.split(":", 1)[0]


class _AfterSampling(beam.DoFn):
    """Solve result → pair rows (MAIN), edit requests (EDITS), (id, status) (STATUS), counts."""

    def __init__(self, cfg: RiseConfig, seed: int):
        self.cfg, self.seed = cfg, seed

    def process(self, result: ChatResult) -> Iterable[Any]:
        p = result.payload
        problem, pid = Problem(**p["problem"]), problem_id(result.key)
        try:
            if self.cfg.mode == "paper":
                pairs, requests, reasons, summary = paper_steps.after_sampling(
                    problem, p["prompt"], result, self.cfg, self.seed)
                detail = dict(summary["samples"])
            else:
                out = after_sampling(problem, p["prompt"], result.texts, self.cfg, self.seed,
                                     result.model, result.template_version,
                                     result.finish_reasons)
                policy = {"model": result.model, "template_version": result.template_version}
                requests = [edit_request(problem, p["prompt"], job, self.cfg, self.seed, policy)
                            for job in out.edit_jobs]
                pairs, reasons, detail = out.pairs, out.reasons, out.detail
                summary = {**out.summary, **summarize_pairs(out.pairs)}
        except Exception as e:  # a bug or odd input: the problem goes to the dead letter
            yield beam.pvalue.TaggedOutput(STATUS, (pid, {"row": p["row"], "error": repr(e)}))
            return
        yield from pairs
        for req in requests:
            yield beam.pvalue.TaggedOutput(EDITS, req)
        yield beam.pvalue.TaggedOutput(STATUS, (pid, {
            "row": p["row"], "pairs": len(pairs), "reasons": reasons, "detail": detail}))
        yield beam.pvalue.TaggedOutput(SUMMARY, summary)


class _EditOutcome(beam.DoFn):
    """Edit result → pair row (MAIN) or an edit-level reason; (id, verdict) on EDITS."""

    def __init__(self, cfg: RiseConfig):
        self.cfg = cfg

    def process(self, result: ChatResult) -> Iterable[Any]:
        pid = problem_id(result.key)
        try:
            outcome = paper_steps.edit_outcome if self.cfg.mode == "paper" else edit_outcome
            row, reason, detail = outcome(result, self.cfg)
        except Exception as e:
            yield beam.pvalue.TaggedOutput(EDITS, (pid, {"reason": "edit_raised",
                                                         "detail": {"error": repr(e)}}))
            return
        if row is None:
            beam.metrics.Metrics.counter(NS, f"edit_dropped_{reason}").inc()
            yield beam.pvalue.TaggedOutput(EDITS, (pid, {"reason": reason, "detail": detail}))
            yield beam.pvalue.TaggedOutput(SUMMARY, {"edit_rejected": {f"self_edit:{reason}": 1}})
            return
        yield beam.pvalue.TaggedOutput(EDITS, (pid, {"reason": None, "row": row}))
        yield beam.pvalue.TaggedOutput(SUMMARY, {"edits_survived": 1})


def _dead(entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return problem_id(entry.get("record_id") or ""), entry


class _Finish(beam.DoFn):
    """(id, grouped) → its kept step pairs (MAIN; paper mode: M random survivors) and a count
    when paired, else a REJECTED (row, reason, detail) or a DEADLETTER entry for the problem."""

    def __init__(self, cfg: RiseConfig, seed: int):
        self.cfg, self.seed = cfg, seed

    def process(self, element: tuple[str, dict[str, list[Any]]]) -> Iterable[Any]:
        pid, g = element
        edits = g[EDITS]
        survivors = sorted((e["row"] for e in edits if e["reason"] is None),
                           key=lambda r: r["id"])
        kept = paper_steps.select_step_pairs(pid, survivors, self.cfg, self.seed)
        if kept:
            beam.metrics.Metrics.counter(NS, "pairs_self_edit").inc(len(kept))
            yield beam.pvalue.TaggedOutput(SUMMARY, summarize_pairs(kept))
            yield from kept
        dead = sorted(g["solve_dead"] + g["edit_dead"], key=lambda e: e.get("record_id") or "")
        status = g[STATUS][0] if g[STATUS] else None
        if status is None or "error" in status:  # the solve call failed, or planning raised
            src = dead[0] if dead else {"error": status["error"] if status else "lost",
                                        "raw": status and status["row"], "step": "plan"}
            yield beam.pvalue.TaggedOutput(DEADLETTER, deadletter_entry(
                STAGE, src["error"], src["raw"], record_id=pid, step=src.get("step")))
            return
        if g["edit_dead"]:
            yield beam.pvalue.TaggedOutput(SUMMARY, {"edit_deadletter": len(g["edit_dead"])})
        if status["pairs"] + sum(e["reason"] is None for e in edits):
            yield beam.pvalue.TaggedOutput(SUMMARY, {"problems_paired": 1})
            return
        if g["edit_dead"] and not edits:  # every edit call failed
            first = g["edit_dead"][0]
            yield beam.pvalue.TaggedOutput(DEADLETTER, deadletter_entry(
                STAGE, first["error"], first["raw"], record_id=pid, step=first.get("step")))
            return
        edit_reasons = sorted(e["reason"] for e in edits)
        reasons = (["edits_rejected"] if edits else []) + status["reasons"]
        yield beam.pvalue.TaggedOutput(REJECTED, Rejection(
            status["row"], reasons[0] if reasons else "no_pair",
            {"method": "self_sample", "reasons": reasons, "edit_reasons": edit_reasons,
             **status["detail"]}))


class SelfSampleAndEdit(beam.PTransform):
    """Prepared Example batches → {MAIN, REJECTED, DEADLETTER, "summary"}; module docstring."""

    def __init__(self, cfg: RiseConfig, ctx: RunContext, *, label: str | None = None):
        super().__init__(label)
        self.cfg, self.ctx = cfg, ctx

    def expand(self, prepared: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg, seed, size = self.cfg, self.ctx.seed, self.cfg.batch_rows
        solved = (prepared
                  | "PlanSolve" >> beam.FlatMap(
                      lambda b: [solve_request(r, cfg, seed) for r in b.to_pylist()])
                  | "Sample" >> GenerateStep(self.ctx, stage=STAGE, step="solve",
                                            role="policy"))
        after = solved[MAIN] | "AfterSampling" >> beam.ParDo(
            _AfterSampling(cfg, seed)).with_outputs(EDITS, STATUS, SUMMARY, main=MAIN)
        edited = after[EDITS] | "Edit" >> GenerateStep(self.ctx, stage=STAGE, step="edit",
                                                       role="editor")
        outcome = edited[MAIN] | "EditOutcome" >> beam.ParDo(
            _EditOutcome(cfg)).with_outputs(EDITS, SUMMARY, main="unused")
        finished = ({STATUS: after[STATUS], EDITS: outcome[EDITS],
                     "solve_dead": solved[DEADLETTER] | "KeySolveDead" >> beam.Map(_dead),
                     "edit_dead": edited[DEADLETTER] | "KeyEditDead" >> beam.Map(_dead)}
                    | "ByProblem" >> beam.CoGroupByKey()
                    | "Finish" >> beam.ParDo(_Finish(cfg, seed)).with_outputs(
                        REJECTED, DEADLETTER, SUMMARY, main=MAIN))
        pairs = ((after[MAIN], finished[MAIN]) | "AllPairs" >> beam.Flatten()
                 | "BatchPairs" >> beam.BatchElements(min_batch_size=1, max_batch_size=size)
                 | "PairsToBatch" >> beam.Map(
                     lambda rows: pairs_to_batch(sorted(rows, key=lambda r: r["id"]))))
        rejected = finished[REJECTED] | "RejectRows" >> RejectRows(STAGE, size=size)
        summary = ((after[SUMMARY], outcome[SUMMARY], finished[SUMMARY])
                   | "AllSummaries" >> beam.Flatten())
        return {MAIN: pairs, REJECTED: rejected, DEADLETTER: finished[DEADLETTER],
                SUMMARY: summary}
