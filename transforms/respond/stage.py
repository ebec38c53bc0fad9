"""RespondStage: answer prompt-only rows through the LLM layer (distilabel's TextGeneration,
plus best-of-n with a judge as in UltraFeedback).

Reads Example batches (the curated stream or its `seeds` selection). Rows ending with a user
turn are answered (every row with `overwrite`); other rows are not this stage's and pass by
(they are in the curated output already). Each pending user turn is one round: the stage
unrolls `max_turns` rounds, so a multi-turn prompt is answered turn by turn, every answer
seeing the ones before it. Per round: n samples (`ChatRequest` with n) → optional quality
judge (transforms/quality/judge.JudgeScores, aspect quality) → the best usable answer is kept
(core.choose) → a best-vs-worst PreferencePair when the score margin reaches `pair_margin`.
Writes EXAMPLES (answered conversations, lineage parent = the prompt row, meta.respond_score),
PAIRS, REJECTED (response_truncated: every sample cut by max_tokens; empty_response;
too_many_turns; tool_turns; judge_unparseable: no usable answer's rating could be read, the
raw rating in the detail), DEADLETTER (failed model calls, stage `respond`, step `answer`;
failed ratings leave a null score, stage `respond.judge`) and REPORT (counts). The answer
step is a kit step (`answer_spec`), the ratings the quality judge's. Roles:
`responder` answers, `judge` rates (stages.respond.roles; default the run's `llm`).
Counters in refinery.respond: prompts, not_prompt_only, answered, pairs, dropped_<reason>.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

import apache_beam as beam
import pyarrow as pa

from schemas.records import examples_to_batch, pairs_to_batch, with_meta
from transforms.base import DEADLETTER, EXAMPLES, MAIN, PAIRS, REJECTED, REPORT, RunContext
from transforms.kit import (
    Emit,
    Rejection,
    RejectRows,
    RunStep,
    StepSpec,
    count,
    merge_combine,
    route,
)
from transforms.respond import core, report
from transforms.respond.config import RespondConfig

STAGE = core.STAGE
DONE = "done"
SKIPPED = "skipped"


def _start(batch: pa.RecordBatch, config: RespondConfig) -> Iterable[Any]:
    for row in batch.to_pylist():
        item = core.start_item(row, config)
        if item is None:
            count(STAGE, "not_prompt_only")
            yield beam.pvalue.TaggedOutput(SKIPPED, ("not_prompt_only", None, 1))
        elif isinstance(item, core.Rejection):
            yield beam.pvalue.TaggedOutput(REJECTED, item)
        else:
            count(STAGE, "prompts")
            yield item


def _route(choice: core.Choice) -> Iterable[Any]:
    """A turn's choice → its pair (PAIRS), its rejection, the answered item (DONE) or the item
    with more turns pending (main)."""
    if choice.pair is not None:
        count(STAGE, "pairs")
        yield Emit(PAIRS, choice.pair)
    if choice.rejection is not None:
        yield choice.rejection
    elif core.pending_turn(choice.item["messages"]) is None:
        count(STAGE, "answered")
        yield Emit(DONE, choice.item)
    else:
        yield choice.item


def _choose_unjudged(result: Any, config: RespondConfig) -> Iterable[Any]:
    return _route(core.choose(result.payload, core.candidates(result), {}, config, result.model))


def answer_spec(config: RespondConfig, seed: int) -> StepSpec:
    """The answer step: n samples of the pending turn (core.build_request). Without the judge
    the parse chooses (core.choose); with it the answers go on to be rated."""
    return StepSpec("answer", None, build=partial(core.build_request, config=config, seed=seed),
                    parse=(lambda r: r) if config.judge.enabled
                    else partial(_choose_unjudged, config=config),
                    row_of=lambda item: item["row"], role="responder")


def _candidate_rows(result: Any) -> Iterable[dict[str, Any]]:
    for cand in core.candidates(result):
        if cand.finish != "length" and cand.text:
            yield core.judge_row(result.payload, cand)


def _scores_of(batch: pa.RecordBatch) -> Iterable[tuple[str, tuple[int, float | None]]]:
    ids = batch.column("id").to_pylist()
    scores = batch.column("meta").field("q_judge_quality").to_pylist()
    for rid, score in zip(ids, scores, strict=True):
        key, sample = rid.rsplit(":", 1)
        yield key, (int(sample), score)


def _unread_of(rejection: Rejection) -> tuple[str, tuple[int, dict[str, Any]]]:
    key, sample = rejection.row["id"].rsplit(":", 1)
    return key, (int(sample), rejection.detail or {})


def _choose_judged(element: tuple[str, dict[str, list[Any]]], config: RespondConfig
                   ) -> Iterable[Any]:
    _, groups = element
    scores, unread = dict(groups["score"]), dict(groups["unread"])
    for result in groups["result"]:  # one per key; duplicates of a row each get their choice
        yield from _route(core.choose(result.payload, core.candidates(result), scores, config,
                                      result.model, unread))


class AnswerTurn(beam.PTransform):
    """Items with a pending turn → {MAIN: items with more turns pending, DONE: fully answered
    items, PAIRS: pair rows, REJECTED: Rejections, DEADLETTER: failed calls}. One round."""

    def __init__(self, config: RespondConfig, ctx: RunContext, *, label: str | None = None):
        super().__init__(label)
        self.config, self.ctx = config, ctx

    def expand(self, items: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg, ctx = self.config, self.ctx
        answered = items | "Answer" >> RunStep(answer_spec(cfg, ctx.seed), ctx, stage=STAGE,
                                               outputs=(DONE, PAIRS))
        if not cfg.judge.enabled:
            return {MAIN: answered[MAIN], DONE: answered[DONE], PAIRS: answered[PAIRS],
                    REJECTED: [answered[REJECTED]], DEADLETTER: [answered[DEADLETTER]]}
        from transforms.quality.judge import JudgeScores

        judged = (answered[MAIN] | "Candidates" >> beam.FlatMap(_candidate_rows)
                  | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=256)
                  | "ToArrow" >> beam.Map(examples_to_batch)
                  | "Judge" >> JudgeScores(cfg.judge, ctx, stage=STAGE))
        scores = judged[MAIN] | "Scores" >> beam.FlatMap(_scores_of)
        unread = judged[REJECTED] | "Unread" >> beam.Map(_unread_of)
        keyed = answered[MAIN] | "Key" >> beam.Map(lambda r: (r.key, r))
        routed = ({"result": keyed, "score": scores, "unread": unread}
                  | "Join" >> beam.CoGroupByKey()
                  | "Choose" >> beam.FlatMap(_choose_judged, cfg)
                  | "Route" >> beam.FlatMap(route).with_outputs(DONE, PAIRS, REJECTED, main=MAIN))
        return {MAIN: routed[MAIN], DONE: routed[DONE], PAIRS: routed[PAIRS],
                REJECTED: [answered[REJECTED], routed[REJECTED]],
                DEADLETTER: [answered[DEADLETTER], judged[DEADLETTER]]}


def _examples(items: list[dict[str, Any]], config: RespondConfig) -> pa.RecordBatch:
    version = core.template_version(config)
    rows = [core.answered_example(i, i.get("model", ""), version) for i in items]
    scores = [i["scores"][-1] if i["scores"] else None for i in items]
    return with_meta(examples_to_batch(rows), respond_score=pa.array(scores, pa.float64()))


class RespondStage(beam.PTransform):
    """Prompt-only rows → {EXAMPLES, PAIRS, REJECTED, DEADLETTER, REPORT} (module docstring).
    Example: a seed `{"question": "Why is the sky blue?"}` becomes the Example
    [user: Why is the sky blue?, assistant: <the best of n answers>]."""

    def __init__(self, config: RespondConfig, ctx: RunContext, *, label: str | None = None):
        super().__init__(label)
        self.config, self.ctx = config, ctx

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg = self.config
        started = batches | "Start" >> beam.FlatMap(_start, cfg).with_outputs(
            REJECTED, SKIPPED, main=MAIN)
        todo, done, pairs = started[MAIN], [], []
        rejected, dead = [started[REJECTED]], []
        for turn in range(1, cfg.max_turns + 1):
            out = todo | f"Turn{turn}" >> AnswerTurn(cfg, self.ctx)
            todo = out[MAIN]
            done.append(out[DONE])
            pairs.append(out[PAIRS])
            rejected.extend(out[REJECTED])
            dead.extend(out[DEADLETTER])
        size = 1000
        examples = (done | "AllDone" >> beam.Flatten()
                    | "BatchDone" >> beam.BatchElements(min_batch_size=1, max_batch_size=size)
                    | "Examples" >> beam.Map(_examples, cfg))
        pair_batches = (pairs | "AllPairs" >> beam.Flatten()
                        | "BatchPairs" >> beam.BatchElements(min_batch_size=1, max_batch_size=size)
                        | "Pairs" >> beam.Map(pairs_to_batch))
        rejected_batches = (rejected | "AllRejected" >> beam.Flatten()
                            | "Rejected" >> RejectRows(STAGE, size=size))
        dead_all = dead | "AllDead" >> beam.Flatten()
        events = ((batches | "CountSeeds" >> beam.Map(lambda b: ("seeds", None, b.num_rows)),
                   started[SKIPPED],
                   examples | "CountExamples" >> beam.Map(lambda b: ("answered", None, b.num_rows)),
                   pair_batches | "CountPairs" >> beam.Map(lambda b: ("pairs", None, b.num_rows)),
                   rejected_batches | "CountRejected" >> beam.FlatMap(_reasons),
                   dead_all | "CountDead" >> beam.FlatMap(_own_dead))
                  | "AllCounts" >> beam.Flatten())
        summary = events | "Report" >> beam.CombineGlobally(merge_combine(
            report.empty, report.add, report.merge, report.finish))
        return {EXAMPLES: examples, PAIRS: pair_batches, REJECTED: rejected_batches,
                DEADLETTER: dead_all, REPORT: summary}


def _own_dead(entry: dict[str, Any]) -> Iterable[tuple[str, None, int]]:
    """A failed answer call ends its row (a failed rating only leaves a null score)."""
    if entry["stage"] == STAGE:
        yield "deadletter", None, 1


def _reasons(batch: pa.RecordBatch) -> Iterable[tuple[str, str, int]]:
    for reason in batch.column("reject_reason").to_pylist():
        yield "rejected", reason, 1
