"""The synthesis kit: the glue every model-calling stage shares, written once.

What a stage supplies: its prompts (`transforms.llm.prompts.load_prompt`), a pure `build`
(item → ChatRequest, seeded with `schemas.ids.derive_seed`) and a pure `parse` (ChatResult →
next item, or a `Rejection`) per step, and its report as pure `empty/add/merge/finish`
functions. What the kit does for it:

- `GenerateStep(ctx, stage=, step=, role=)`: the step's model calls through `Generate` with
  the role's `llm` block and the test seam from `ctx`; metrics in `refinery.<stage>.<step>`;
  dead-letter entries carry `stage` and `step` (no relabelling in stages).
- `RunStep(spec, ctx, stage=)`: build → GenerateStep → parse, with one failure policy:
  a `build` that raises or a model call that fails (transport, HTTP error, timeout) → DEADLETTER; an answer that cannot
  be read (`parse` raises, or no answer passed the request's JSON Schema) → REJECTED
  `<step>_unparseable` with the error and the raw answer; a rule (`parse` returns a
  `Rejection`) → REJECTED with its reason. `build` may return several requests per item
  (n samples); `spec.gather` groups their answers back with the item (a fan-in of candidates:
  `parse` reads a `Gathered`); `parse` may yield `Emit(tag, value)` beside its item (pairs,
  report events on EVENTS); `spec.event` turns each rejection and failed call into a report
  event.
- `route(outs)`: a parse's outcomes as Beam outputs, for a stage's own DoFns after a step.
- `count(stage, name, n=1, step=None)`: a counter in `metrics_namespace(stage, step)`.
- `RejectRows(stage)`: `Rejection`s → rejected batches (sorted by reason then id), counting
  `dropped_<reason>` in `refinery.<stage>`.
- `merge_combine(empty, add, merge, finish)`: a `beam.CombineFn` from pure functions.
Defaults: the role's block is the run's `llm` unless the stage config's `roles` names one;
the backend is built from that block unless `ctx.backend_factory` is set (tests).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

import apache_beam as beam
import pyarrow as pa

from schemas.records import examples_to_batch
from transforms.base import (
    DEADLETTER,
    MAIN,
    METRICS_NAMESPACE,
    REJECTED,
    RunContext,
    deadletter_entry,
    reject_rows,
)
from transforms.llm.api import ChatRequest, ChatResult
from transforms.llm.prompts import Prompt

Acc = TypeVar("Acc")
RAW_LIMIT = 2000  # characters of a raw answer kept in a rejection's detail
EVENTS = "events"  # RunStep's output of report events
# Generate's dead-letter errors that are an unreadable answer, not a failed call
UNREADABLE_ERRORS = ("invalid_json", "schema_violation")


class Rejection(NamedTuple):
    """A row that leaves a stage in `rejected/`: the row (an Example or the stage's output
    shape), the reason (a snake_case word, counted as dropped_<reason>) and a JSON-able detail."""

    row: dict[str, Any]
    reason: str
    detail: dict[str, Any] | None = None


class Emit(NamedTuple):
    """A value a step's `parse` sends beside its item, to RunStep's output `tag` (EVENTS, or
    one named in `RunStep(outputs=...)`)."""

    tag: str
    value: Any


class Gathered(NamedTuple):
    """What the `parse` of a fan-in step (`StepSpec.gather` set) reads: the item and the
    answers of its requests, in key order (a failed call is missing; it is in DEADLETTER)."""

    item: Any
    results: list[ChatResult]


def metrics_namespace(stage: str, step: str | None = None) -> str:
    """`refinery.<stage>` or `refinery.<stage>.<step>`: where a stage's counters go."""
    return f"{METRICS_NAMESPACE}.{stage}" + (f".{step}" if step else "")


def count(stage: str, name: str, n: int = 1, step: str | None = None) -> None:
    """Add `n` to the counter `name` in `metrics_namespace(stage, step)`."""
    beam.metrics.Metrics.counter(metrics_namespace(stage, step), name).inc(n)


class GenerateStep(beam.PTransform):
    """ChatRequests → {MAIN: ChatResult, DEADLETTER: entry with `stage` and `step`}.

    The `llm` block is `ctx.llm_for(stage, role)` (the role's block from the stage config, else
    the run's `llm`); `ctx.backend_factory`, when set, builds the backend (tests script models
    with it); answers are cached under `ctx.work_dir`. Metrics: refinery.<stage>.<step>.
    `deadletter_stage` overrides the stage named in dead-letter entries, for steps whose
    failures must not count as the stage's losses (the quality judge keeps its rows)."""

    def __init__(self, ctx: RunContext, *, stage: str, step: str, role: str | None = None,
                 label: str | None = None, deadletter_stage: str | None = None):
        super().__init__(label)
        self.ctx, self.stage, self.step, self.role = ctx, stage, step, role
        self.deadletter_stage = deadletter_stage or stage

    def expand(self, requests: beam.PCollection) -> dict[str, beam.PCollection]:
        from transforms.llm.generate import Generate

        ctx = self.ctx
        return requests | "Generate" >> Generate(
            ctx.llm_for(self.stage, self.role), stage=f"{self.stage}.{self.step}",
            work_dir=ctx.work_dir, backend_factory=ctx.backend_factory,
            deadletter_stage=self.deadletter_stage, step=self.step)


@dataclass(frozen=True)
class StepSpec:
    """One model step of a synthesis stage (cf. distilabel's Task).

    `build(item) -> ChatRequest | list[ChatRequest]` renders `prompt` for an item (payload =
    the item; several requests = n samples of it); `parse(result, **side_inputs)` reads the
    answer (a `Gathered` with `gather`) and returns or yields the next item, a `Rejection`
    and/or `Emit`s (raise on an unreadable answer); `row_of(item) -> row` is the row a failed
    item is rejected as; `role` names the stage config's model role (None: the run's `llm`).
    Optional: `gather(item or request payload) -> key` makes the step a fan-in (one parse per
    item over all its answers; an unreadable answer then only drops itself);
    `detail(item) -> dict` adds to an unparseable rejection's detail; `event(kind, x)` makes
    the report event of a `"rejected"` Rejection or a `"deadletter"` entry (None: none);
    `deadletter_stage` names another stage in dead-letter entries (see GenerateStep)."""

    name: str
    prompt: Prompt | None
    build: Callable[[Any], ChatRequest | Sequence[ChatRequest]]
    parse: Callable[..., Any]
    row_of: Callable[[Any], dict[str, Any]]
    role: str | None = None
    gather: Callable[[Any], str] | None = None
    detail: Callable[[Any], dict[str, Any]] | None = None
    event: Callable[[str, Any], Any] | None = None
    deadletter_stage: str | None = None


def _unreadable(spec: StepSpec, item: Any, error: str, raw: str) -> Rejection:
    extra = spec.detail(item) if spec.detail is not None else {}
    return Rejection(spec.row_of(item), f"{spec.name}_unparseable",
                     {**extra, "step": spec.name, "error": error, "raw": raw[:RAW_LIMIT]})


def unparseable(spec: StepSpec, result: ChatResult | Gathered, error: Exception) -> Rejection:
    """The rejection of an answer `spec.parse` could not read: reason `<step>_unparseable`,
    detail with the step, the error and the raw answer (clipped to RAW_LIMIT characters)."""
    if isinstance(result, Gathered):
        item, first = result.item, (result.results[0] if result.results else None)
    else:
        item, first = result.payload, result
    raw = first.texts[0] if first is not None and first.texts else ""
    return _unreadable(spec, item, f"{type(error).__name__}: {error}", raw)


def is_unreadable(entry: dict[str, Any]) -> bool:
    """A Generate dead-letter entry whose answers came back but none passed the schema."""
    return str(entry.get("error") or "").startswith(UNREADABLE_ERRORS)


def unreadable_rejection(spec: StepSpec, entry: dict[str, Any]) -> Rejection:
    """A dead-letter entry of an unreadable answer → `<step>_unparseable` of its item (the
    request payload kept in the entry), with the error and the raw answer."""
    raw = json.loads(entry["raw"])
    return _unreadable(spec, raw["payload"], entry["error"], str(raw.get("answer") or ""))


def _outcomes(out: Any) -> list[Any]:
    return list(out) if isinstance(out, Iterator | list) else [out]


def route(outs: Any, namespace: str | None = None) -> Iterator[Any]:
    """What a parse returned or yielded, as Beam outputs: a `Rejection` → REJECTED, an
    `Emit` → its tag, anything else → the main output (counted `parsed` in `namespace`)."""
    for out in _outcomes(outs):
        if isinstance(out, Rejection):
            yield beam.pvalue.TaggedOutput(REJECTED, out)
        elif isinstance(out, Emit):
            yield beam.pvalue.TaggedOutput(out.tag, out.value)
        else:
            if namespace is not None:
                beam.metrics.Metrics.counter(namespace, "parsed").inc()
            yield out


class _Parse(beam.DoFn):
    def __init__(self, spec: StepSpec, stage: str):
        self._spec, self._ns = spec, metrics_namespace(stage, spec.name)

    def process(self, result: Any, **side_inputs) -> Iterable[Any]:
        # (no annotation on side_inputs: Beam would type-check them as one Dict argument)
        try:  # a generator runs to its end before anything is sent on
            outs = _outcomes(self._spec.parse(result, **side_inputs))
        except Exception as e:  # any parse failure is this row's rejection
            outs = [unparseable(self._spec, result, e)]
        yield from route(outs, self._ns)


class _Build(beam.DoFn):
    """item → its requests; a `build` that raises sends the item to the dead letter (stage,
    step, the error and the item), so a bug in one prompt's rendering costs only that item."""

    def __init__(self, spec: StepSpec, stage: str):
        self._spec, self._stage = spec, stage

    def process(self, item: Any) -> Iterable[Any]:
        try:
            made = self._spec.build(item)
            requests = [made] if isinstance(made, ChatRequest) else list(made)
        except Exception as e:  # this item's failure, not the run's
            yield beam.pvalue.TaggedOutput(DEADLETTER, deadletter_entry(
                self._spec.deadletter_stage or self._stage, f"build: {type(e).__name__}: {e}",
                item, record_id=item.get("id") if isinstance(item, dict) else None,
                step=self._spec.name))
            return
        yield from requests


def _gathered(element: tuple[str, dict[str, list[Any]]]) -> Iterable[Gathered]:
    _, groups = element
    if groups["item"]:  # identical items share their key and answers: parsed once
        yield Gathered(groups["item"][0], sorted(groups["result"], key=lambda r: r.key))


def _split_dead(entry: dict[str, Any], spec: StepSpec) -> Iterable[Any]:
    if is_unreadable(entry) and spec.gather is None:
        yield beam.pvalue.TaggedOutput(REJECTED, unreadable_rejection(spec, entry))
    else:
        yield entry


def _events(x: Any, kind: str, event: Callable[[str, Any], Any]) -> Iterable[Any]:
    e = event(kind, x)
    if e is not None:
        yield e


class RunStep(beam.PTransform):
    """Items → {MAIN: next items, REJECTED: Rejections, DEADLETTER: failed model calls,
    EVENTS: report events, and each tag of `outputs`}: `spec.build` → GenerateStep →
    [gather] → `spec.parse` (side inputs passed through to parse). See the module docstring
    for where each failure lands."""

    def __init__(self, spec: StepSpec, ctx: RunContext, *, stage: str, label: str | None = None,
                 outputs: Sequence[str] = (), **side_inputs: Any):
        super().__init__(label)
        self.spec, self.ctx, self.stage, self._side = spec, ctx, stage, side_inputs
        self.outputs = tuple(outputs)

    def expand(self, items: beam.PCollection) -> dict[str, beam.PCollection]:
        spec = self.spec
        built = items | "Build" >> beam.ParDo(_Build(spec, self.stage)).with_outputs(
            DEADLETTER, main=MAIN)
        gen = (built[MAIN]
               | "Call" >> GenerateStep(self.ctx, stage=self.stage, step=spec.name,
                                         role=spec.role, deadletter_stage=spec.deadletter_stage))
        dead = gen[DEADLETTER] | "Unreadable" >> beam.FlatMap(_split_dead, spec).with_outputs(
            REJECTED, main=MAIN)
        answers = gen[MAIN]
        if spec.gather is not None:
            key = spec.gather
            answers = ({"item": items | "KeyItems" >> beam.Map(lambda it: (key(it), it)),
                        "result": answers | "KeyAnswers" >> beam.Map(
                            lambda r: (key(r.payload), r))}
                       | "Gather" >> beam.CoGroupByKey() | "Items" >> beam.FlatMap(_gathered))
        parsed = answers | "Parse" >> beam.ParDo(
            _Parse(spec, self.stage), **self._side).with_outputs(
            REJECTED, EVENTS, *self.outputs, main=MAIN)
        rejected = (parsed[REJECTED], dead[REJECTED]) | "Rejected" >> beam.Flatten()
        failed = (dead[MAIN], built[DEADLETTER]) | "Failed" >> beam.Flatten()
        events = [parsed[EVENTS]]
        if spec.event is not None:
            events += [rejected | "RejectedEvents" >> beam.FlatMap(_events, "rejected",
                                                                   spec.event),
                       failed | "DeadEvents" >> beam.FlatMap(_events, "deadletter",
                                                                 spec.event)]
        return {MAIN: parsed[MAIN], REJECTED: rejected, DEADLETTER: failed,
                EVENTS: events | "Events" >> beam.Flatten(),
                **{tag: parsed[tag] for tag in self.outputs}}


def rejected_batch(rejections: Sequence[Rejection], stage: str,
                   to_batch: Callable[[list[dict[str, Any]]], pa.RecordBatch] = examples_to_batch
                   ) -> pa.RecordBatch:
    """Rejections → one batch with the reject_* columns, rows sorted by (reason, id)."""
    ordered = sorted(rejections, key=lambda r: (r[1], str(r[0].get("id")), str(r[2])))
    batch = to_batch([r[0] for r in ordered])
    return reject_rows(batch, stage, [r[1] for r in ordered], [r[2] for r in ordered])


class _CountDropped(beam.DoFn):
    def __init__(self, stage: str):
        self._ns = metrics_namespace(stage)

    def process(self, rejection: Rejection) -> Iterable[Rejection]:
        beam.metrics.Metrics.counter(self._ns, f"dropped_{rejection[1]}").inc()
        yield rejection


class RejectRows(beam.PTransform):
    """(row, reason, detail) tuples (`Rejection`s) → rejected batches of at most `size` rows,
    each sorted by (reason, id), built with `to_batch` (Example rows by default; pass
    `pairs_to_batch` for pairs). Counts dropped_<reason> in refinery.<stage>."""

    def __init__(self, stage: str, *,
                 to_batch: Callable[[list[dict[str, Any]]], pa.RecordBatch] = examples_to_batch,
                 size: int = 1000, label: str | None = None):
        super().__init__(label)
        self.stage, self.to_batch, self.size = stage, to_batch, size

    def expand(self, rejections: beam.PCollection) -> beam.PCollection:
        return (rejections
                | "Count" >> beam.ParDo(_CountDropped(self.stage))
                | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.size)
                | "ToArrow" >> beam.Map(rejected_batch, self.stage, self.to_batch))


class _MergeCombineFn(beam.CombineFn, Generic[Acc]):
    def __init__(self, empty: Callable[[], Acc], add: Callable[[Acc, Any], Acc],
                 merge: Callable[[Iterable[Acc]], Acc], finish: Callable[[Acc], Any] | None):
        self._empty, self._add, self._merge, self._finish = empty, add, merge, finish

    def create_accumulator(self) -> Acc:
        return self._empty()

    def add_input(self, acc: Acc, item: Any) -> Acc:
        return self._add(acc, item)

    def merge_accumulators(self, accs: Iterable[Acc]) -> Acc:
        return self._merge(list(accs))

    def extract_output(self, acc: Acc) -> Any:
        return acc if self._finish is None else self._finish(acc)


def merge_combine(empty: Callable[[], Acc], add: Callable[[Acc, Any], Acc],
                  merge: Callable[[Iterable[Acc]], Acc],
                  finish: Callable[[Acc], Any] | None = None) -> beam.CombineFn:
    """A CombineFn from pure functions: `empty()` a new accumulator, `add(acc, item)`,
    `merge(accs)` of a list, `finish(acc)` the output (default: the accumulator itself).
    Keep them in the stage's report.py, tested without Beam."""
    return _MergeCombineFn(empty, add, merge, finish)
