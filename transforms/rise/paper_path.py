"""SelfSampleAndEdit: the RISE paper's flow as two kit steps (`rise_steps`, kit.RunStep).

Reads prepared Example batches. Step `solve`: the `policy` role (`roles.policy`, default the
run's llm) samples k "Step k:" solutions per problem from the solve prompt (system + user
messages, which become every pair's `prompt`); its parse (`plan_edits`) grades and pairs the
samples (sampling.after_sampling; paper mode: paper_steps) and plans the edit requests. Step
`edit`: the `editor` role (`roles.editor`, default the run's llm); its parse (`edit_verdict`)
filters each edit into a step pair or an edit-level reason. Then per problem (grouped by id) a
problem with no pair ends in REJECTED (its reasons) or, when its model calls failed, in
DEADLETTER; its surviving step pairs are kept (paper mode: M random ones,
paper_steps.select_step_pairs). With `mode: paper` the requests, grading, filters and
selection are the authors' own. The kit's failure policy: a failed call → dead letter; samples
the solve step cannot read → the problem rejected as `solve_unparseable`; an edit answer
without its edit → the edit-level reason `edit_unparseable`.
Returns {MAIN: pair batches, REJECTED: batches, DEADLETTER: entries, "summary": count dicts}.
Metrics: refinery.rise.solve / refinery.rise.edit (kit), refinery.rise: pairs_self_edit,
dropped_<reason>.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

import apache_beam as beam

from schemas.ids import derive_seed
from schemas.records import pairs_to_batch
from transforms.base import DEADLETTER, MAIN, REJECTED, RunContext, deadletter_entry
from transforms.kit import Emit, Rejection, RejectRows, RunStep, StepSpec, metrics_namespace
from transforms.llm.api import ChatRequest, ChatResult, SamplingParams
from transforms.rise import paper_steps
from transforms.rise.config import RiseConfig
from transforms.rise.pairs import STAGE, Problem, read_problem
from transforms.rise.report import summarize_pairs
from transforms.rise.sampling import after_sampling
from transforms.rise.self_edit import edit_outcome, edit_request
from transforms.rise.templates import solve_messages

NS = metrics_namespace(STAGE)
STATUS, EDITS, SUMMARY, FULL = "status", "edits", "summary", "full_pairs"


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


def plan_edits(result: ChatResult, cfg: RiseConfig, seed: int) -> Iterator[Any]:
    """The solve step's parse: one problem's samples → its full pair (FULL), its edit requests
    (the next items), its (id, status) (STATUS) and summary counts (SUMMARY)."""
    p = result.payload
    problem, pid = Problem(**p["problem"]), problem_id(result.key)
    if cfg.mode == "paper":
        pairs, requests, reasons, summary = paper_steps.after_sampling(
            problem, p["prompt"], result, cfg, seed)
        detail = dict(summary["samples"])
    else:
        out = after_sampling(problem, p["prompt"], result.texts, cfg, seed, result.model,
                             result.template_version, result.finish_reasons)
        policy = {"model": result.model, "template_version": result.template_version}
        requests = [edit_request(problem, p["prompt"], job, cfg, seed, policy)
                    for job in out.edit_jobs]
        pairs, reasons, detail = out.pairs, out.reasons, out.detail
        summary = {**out.summary, **summarize_pairs(out.pairs)}
    for row in pairs:
        yield Emit(FULL, row)
    yield from requests
    yield Emit(STATUS, (pid, {"row": p["row"], "pairs": len(pairs), "reasons": reasons,
                              "detail": detail}))
    yield Emit(SUMMARY, summary)


def edit_verdict(result: ChatResult, cfg: RiseConfig) -> Iterator[Any]:
    """The edit step's parse: (id, step pair row) for an edit that survives the filters, else
    (id, its reason), with the summary count (SUMMARY)."""
    outcome = paper_steps.edit_outcome if cfg.mode == "paper" else edit_outcome
    row, reason, detail = outcome(result, cfg)
    pid = problem_id(result.key)
    if row is None:
        yield Emit(SUMMARY, {"edit_rejected": {f"self_edit:{reason}": 1}})
        yield pid, {"reason": reason, "detail": detail}
    else:
        yield Emit(SUMMARY, {"edits_survived": 1})
        yield pid, {"reason": None, "row": row}


def _row_of_solve(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["row"]


def _row_of_edit(payload: dict[str, Any]) -> dict[str, Any]:
    return {"id": payload["problem"]["id"]}


def _request(request: ChatRequest) -> ChatRequest:
    return request  # edit requests are planned by the solve step (their error types drawn)


def rise_steps(cfg: RiseConfig, seed: int) -> tuple[StepSpec, StepSpec]:
    """The two kit steps: `solve` (role policy, k samples per problem) and `edit` (editor)."""
    solve = StepSpec(name="solve", prompt=None, build=partial(solve_request, cfg=cfg, seed=seed),
                     parse=partial(plan_edits, cfg=cfg, seed=seed), row_of=_row_of_solve,
                     role="policy")
    edit = StepSpec(name="edit", prompt=None, build=_request,
                    parse=partial(edit_verdict, cfg=cfg), row_of=_row_of_edit, role="editor")
    return solve, edit


def _unread_edit(rejection: Rejection) -> Iterable[Any]:
    """An edit the editor's answer did not hold: an edit-level reason of its problem."""
    row, reason, detail = rejection
    yield beam.pvalue.TaggedOutput(SUMMARY, {"edit_rejected": {f"self_edit:{reason}": 1}})
    yield row["id"], {"reason": reason, "detail": detail}


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
        if status is None:  # the solve call failed
            src = dead[0]
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
        # every edit unreadable: the problem is rejected as that, the first raw answer kept
        unread = sorted((e["detail"] for e in edits if e["reason"] == "edit_unparseable"),
                        key=str)
        all_unread = bool(edits) and len(unread) == len(edits)
        reasons = (["edit_unparseable" if all_unread else "edits_rejected"] if edits else []) \
            + status["reasons"]
        yield beam.pvalue.TaggedOutput(REJECTED, Rejection(
            status["row"], reasons[0] if reasons else "no_pair",
            {"method": "self_sample", "reasons": reasons, "edit_reasons": edit_reasons,
             **status["detail"], **(unread[0] if all_unread else {})}))


class SelfSampleAndEdit(beam.PTransform):
    """Prepared Example batches → {MAIN, REJECTED, DEADLETTER, "summary"}; module docstring."""

    def __init__(self, cfg: RiseConfig, ctx: RunContext, *, label: str | None = None):
        super().__init__(label)
        self.cfg, self.ctx = cfg, ctx

    def expand(self, prepared: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg, seed, size, ctx = self.cfg, self.ctx.seed, self.cfg.batch_rows, self.ctx
        solve, edit = rise_steps(cfg, seed)
        solved = (prepared | "Problems" >> beam.FlatMap(lambda b: b.to_pylist())
                  | "Solve" >> RunStep(solve, ctx, stage=STAGE, outputs=(FULL, STATUS, SUMMARY)))
        edited = solved[MAIN] | "Edit" >> RunStep(edit, ctx, stage=STAGE, outputs=(SUMMARY,))
        unread = edited[REJECTED] | "UnreadEdits" >> beam.FlatMap(_unread_edit).with_outputs(
            SUMMARY, main=EDITS)
        edits = (edited[MAIN], unread[EDITS]) | "AllEdits" >> beam.Flatten()
        finished = ({STATUS: solved[STATUS], EDITS: edits,
                     "solve_dead": solved[DEADLETTER] | "KeySolveDead" >> beam.Map(_dead),
                     "edit_dead": edited[DEADLETTER] | "KeyEditDead" >> beam.Map(_dead)}
                    | "ByProblem" >> beam.CoGroupByKey()
                    | "Finish" >> beam.ParDo(_Finish(cfg, seed)).with_outputs(
                        REJECTED, DEADLETTER, SUMMARY, main=MAIN))
        pairs = ((solved[FULL], finished[MAIN]) | "AllPairs" >> beam.Flatten()
                 | "BatchPairs" >> beam.BatchElements(min_batch_size=1, max_batch_size=size)
                 | "PairsToBatch" >> beam.Map(
                     lambda rows: pairs_to_batch(sorted(rows, key=lambda r: r["id"]))))
        rejected = ((solved[REJECTED], finished[REJECTED]) | "ProblemsRejected" >> beam.Flatten()
                    | "RejectRows" >> RejectRows(STAGE, size=size))
        summary = ((solved[SUMMARY], edited[SUMMARY], unread[SUMMARY], finished[SUMMARY])
                   | "AllSummaries" >> beam.Flatten())
        return {MAIN: pairs, REJECTED: rejected, DEADLETTER: finished[DEADLETTER],
                SUMMARY: summary}
