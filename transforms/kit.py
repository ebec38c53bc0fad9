"""The synthesis kit: the glue every model-calling stage shares, written once.

What a stage supplies: its prompts (`transforms.llm.prompts.load_prompt`), a pure `build`
(item → ChatRequest, seeded with `schemas.ids.derive_seed`) and a pure `parse` (ChatResult →
next item, or a `Rejection`) per step, and its report as pure `empty/add/merge/finish`
functions. What the kit does for it:

- `GenerateStep(ctx, stage=, step=, role=)`: the step's model calls through `Generate` with
  the role's `llm` block and the test seam from `ctx`; metrics in `refinery.<stage>.<step>`;
  dead-letter entries carry `stage` and `step` (no relabelling in stages).
- `RunStep(spec, ctx, stage=)`: build → GenerateStep → parse; a `parse` that raises turns the
  item into a rejection `<step>_unparseable` with the error and the raw answer in its detail.
- `RejectRows(stage)`: `Rejection`s → rejected batches (sorted by reason then id), counting
  `dropped_<reason>` in `refinery.<stage>`.
- `merge_combine(empty, add, merge, finish)`: a `beam.CombineFn` from pure functions.
Defaults: the role's block is the run's `llm` unless the stage config's `roles` names one;
the backend is built from that block unless `ctx.backend_factory` is set (tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

import apache_beam as beam
import pyarrow as pa

from schemas.records import examples_to_batch
from transforms.base import DEADLETTER, MAIN, METRICS_NAMESPACE, REJECTED, RunContext, reject_rows
from transforms.llm.api import ChatRequest, ChatResult
from transforms.llm.prompts import Prompt

Acc = TypeVar("Acc")
RAW_LIMIT = 2000  # characters of a raw answer kept in a rejection's detail


class Rejection(NamedTuple):
    """A row that leaves a stage in `rejected/`: the row (an Example or the stage's output
    shape), the reason (a snake_case word, counted as dropped_<reason>) and a JSON-able detail."""

    row: dict[str, Any]
    reason: str
    detail: dict[str, Any] | None = None


def metrics_namespace(stage: str, step: str | None = None) -> str:
    """`refinery.<stage>` or `refinery.<stage>.<step>`: where a stage's counters go."""
    return f"{METRICS_NAMESPACE}.{stage}" + (f".{step}" if step else "")


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

    `build(item) -> ChatRequest` renders `prompt` for an item (payload = the item);
    `parse(result, **side_inputs) -> next item | Rejection` reads the answer (raise on an
    unparseable one); `row_of(item) -> row` is the row a failed item is rejected as;
    `role` names the stage config's model role serving this step (None: the run's `llm`)."""

    name: str
    prompt: Prompt
    build: Callable[[Any], ChatRequest]
    parse: Callable[..., Any]
    row_of: Callable[[Any], dict[str, Any]]
    role: str | None = None


def unparseable(spec: StepSpec, result: ChatResult, error: Exception) -> Rejection:
    """The rejection of an answer `spec.parse` could not read: reason `<step>_unparseable`,
    detail with the step, the error and the raw answer (clipped to RAW_LIMIT characters)."""
    raw = result.texts[0] if result.texts else ""
    return Rejection(spec.row_of(result.payload), f"{spec.name}_unparseable",
                     {"step": spec.name, "error": f"{type(error).__name__}: {error}",
                      "raw": raw[:RAW_LIMIT]})


class _Parse(beam.DoFn):
    def __init__(self, spec: StepSpec, stage: str):
        self._spec, self._ns = spec, metrics_namespace(stage, spec.name)

    def process(self, result: ChatResult, **side_inputs) -> Iterable[Any]:
        # (no annotation on side_inputs: Beam would type-check them as one Dict argument)
        try:
            out = self._spec.parse(result, **side_inputs)
        except Exception as e:  # any parse failure is this row's rejection
            out = unparseable(self._spec, result, e)
        if isinstance(out, Rejection):
            yield beam.pvalue.TaggedOutput(REJECTED, out)
        else:
            beam.metrics.Metrics.counter(self._ns, "parsed").inc()
            yield out


class RunStep(beam.PTransform):
    """Items → {MAIN: next items, REJECTED: Rejections, DEADLETTER: failed model calls}:
    `spec.build` → GenerateStep → `spec.parse` (side inputs passed through to parse)."""

    def __init__(self, spec: StepSpec, ctx: RunContext, *, stage: str, label: str | None = None,
                 **side_inputs: Any):
        super().__init__(label)
        self.spec, self.ctx, self.stage, self.side_inputs = spec, ctx, stage, side_inputs

    def expand(self, items: beam.PCollection) -> dict[str, beam.PCollection]:
        spec = self.spec
        gen = (items | "Build" >> beam.Map(spec.build)
               | "Call" >> GenerateStep(self.ctx, stage=self.stage, step=spec.name,
                                         role=spec.role))
        parsed = gen[MAIN] | "Parse" >> beam.ParDo(
            _Parse(spec, self.stage), **self.side_inputs).with_outputs(REJECTED, main=MAIN)
        return {MAIN: parsed[MAIN], REJECTED: parsed[REJECTED], DEADLETTER: gen[DEADLETTER]}


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
