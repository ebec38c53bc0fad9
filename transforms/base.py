"""The contract every stage follows, and the Beam shell shared by batch-wise stages.

A stage is a `beam.PTransform` built as `Stage(config, ctx, *, label=None)` (config: its
pydantic model, ctx: `RunContext`) and registered by one `StageSpec` line in
pipeline/stages.py. It reads a PCollection of Example `pa.RecordBatch`es and returns a dict of
PCollections keyed by the names below (exactly its spec's `outputs`); the pipeline flattens
every stage's `rejected` into `rejected/`, its `deadletter` into `deadletter/`, and its
`report` into the run report.

- curation stages (quality, dedup, decontam) return MAIN (kept Example batches);
- synthesis stages return EXAMPLES (new Example batches) and/or PAIRS (PreferencePair batches),
  and may return STEP_PAIRS (step pairs, emitted to `preference_steps/`);
- every stage may return REJECTED (batches with the reject_* columns, see `reject_rows`),
  DEADLETTER (dicts from `deadletter_entry`) and REPORT (JSON-able dicts, merged by key).
Synthesis glue (model calls, rejections, report combiners) lives in transforms/kit.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from transforms import progress
from transforms.embed.config import EmbeddingConfig
from transforms.llm.config import LLMConfig, LocalLLMConfig
from transforms.names import (  # noqa: F401 - re-exported: stages import them from here
    DEADLETTER,
    EXAMPLES,
    MAIN,
    METRICS_NAMESPACE,
    PAIRS,
    REJECTED,
    REPORT,
    STEP_PAIRS,
    TAG_PAIRS,
)

if TYPE_CHECKING:
    from transforms.llm.backend_base import Backend



BackendFactory = Callable[[LLMConfig], "Backend"]
"""Builds the backend of a resolved `llm` block (the default: transforms.llm.handler
.make_backend). Tests script a model by returning their own backend, told apart per role by
the block's `model` name."""


@dataclass(frozen=True)
class RunContext:
    """What a stage may know of the run besides its own config.

    `llm` is the run's model; `roles` maps stage → role → the `llm` block a stage config names
    for that role (a role not listed uses `llm`; see `llm_for`). `backend_factory` is the test
    seam: when set, every model call of every stage goes to the backend it builds."""

    seed: int = 0
    output_dir: str = "out"
    work_dir: str = "out/_work"  # scratch: indexes, caches; kept between runs of the same out
    llm: LLMConfig = field(default_factory=LocalLLMConfig)
    embeddings: EmbeddingConfig = field(default_factory=EmbeddingConfig)
    roles: Mapping[str, Mapping[str, LLMConfig]] = field(default_factory=dict)
    backend_factory: BackendFactory | None = None
    secret_envs: tuple[str, ...] = ()  # env vars whose values are redacted from stored texts

    def llm_for(self, stage: str, role: str | None = None) -> LLMConfig:
        """The `llm` block of `role` in `stage`: its role block when the config has one, else
        the run's `llm`."""
        if role is None:
            return self.llm
        return self.roles.get(stage, {}).get(role, self.llm)


@dataclass
class BatchResult:
    """What a pure batch function returns: kept rows, rejected rows, dead-letter entries."""

    kept: pa.RecordBatch | None
    rejected: pa.RecordBatch | None = None
    deadletter: list[dict[str, Any]] = field(default_factory=list)


def reject_rows(
    batch: pa.RecordBatch,
    stage: str,
    reasons: str | Sequence[str],
    details: Sequence[dict[str, Any] | None] | None = None,
    **columns: Sequence[Any] | pa.Array,
) -> pa.RecordBatch:
    """`batch` with reject_stage / reject_reason / reject_detail (JSON) and extra columns
    (e.g. duplicate_of) appended. `reasons` is one reason or one per row."""
    n = batch.num_rows
    reason_list = [reasons] * n if isinstance(reasons, str) else list(reasons)
    if len(reason_list) != n:
        raise ValueError(f"{len(reason_list)} reasons for {n} rows")
    detail_json = [
        None if d is None else json.dumps(d, sort_keys=True, ensure_ascii=False, default=str)
        for d in (details if details is not None else [None] * n)
    ]
    arrays = list(batch.columns) + [
        pa.array([stage] * n, pa.string()),
        pa.array(reason_list, pa.string()),
        pa.array(detail_json, pa.string()),
    ]
    names = list(batch.schema.names) + ["reject_stage", "reject_reason", "reject_detail"]
    for name, values in columns.items():
        arrays.append(values if isinstance(values, pa.Array) else pa.array(values))
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def split_by_mask(
    batch: pa.RecordBatch,
    keep: pa.Array | Sequence[bool],
    stage: str,
    reasons: Sequence[str | None],
    details: Sequence[dict[str, Any] | None] | None = None,
) -> BatchResult:
    """Kept rows where `keep`, the others rejected with their per-row reason."""
    keep_arr = keep if isinstance(keep, pa.Array) else pa.array(keep, pa.bool_())
    kept = batch.filter(keep_arr)
    drop_arr = pc.invert(keep_arr)
    if not pc.any(drop_arr).as_py():
        return BatchResult(kept=kept)
    drop_idx = pc.indices_nonzero(drop_arr).to_pylist()
    dropped = batch.take(pa.array(drop_idx, pa.int64()))
    rej_details = [details[i] for i in drop_idx] if details is not None else None
    rejected = reject_rows(dropped, stage, [reasons[i] or "unspecified" for i in drop_idx],
                           rej_details)
    return BatchResult(kept=kept, rejected=rejected)


def deadletter_entry(
    stage: str,
    error: str,
    raw: Any,
    file: str | None = None,
    row: int | None = None,
    record_id: str | None = None,
    step: str | None = None,
) -> dict[str, Any]:
    """One dead-letter record: where it came from (stage, and the step when it has several),
    what went wrong, the raw payload."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="backslashreplace")
    elif not isinstance(raw, str):
        raw = json.dumps(raw, ensure_ascii=False, sort_keys=True, default=str)
    entry = {"stage": stage, "file": file, "row": row, "record_id": record_id,
             "error": error, "raw": raw}
    if step is not None:
        entry["step"] = step
    return entry


class _ApplyBatchFn(beam.DoFn):
    def __init__(self, stage: str, fn: Callable[[pa.RecordBatch], BatchResult],
                 setup: Callable[[], Any] | None = None):
        self._stage = stage
        self._fn = fn
        self._setup_fn = setup
        self._state: Any = None

    def setup(self) -> None:
        if self._setup_fn is not None:
            with progress.working(self._stage, "setting up (loading models)", eta=False):
                self._state = self._setup_fn()

    def _call(self, batch: pa.RecordBatch) -> BatchResult:
        return self._fn(batch) if self._setup_fn is None else self._fn(batch, self._state)

    def process(self, batch: pa.RecordBatch) -> Iterable[Any]:
        ns = f"{METRICS_NAMESPACE}.{self._stage}"
        beam.metrics.Metrics.counter(ns, "rows_in").inc(batch.num_rows)
        try:
            with progress.working(self._stage, f"a batch of {batch.num_rows:,} rows"):
                result = self._call(batch)
        except Exception:  # the failure policy: retry row by row, dead-letter failing rows
            beam.metrics.Metrics.counter(ns, "batches_retried_by_row").inc()
            result = retry_by_row(self._stage, self._call, batch)
        if result.kept is not None and result.kept.num_rows:
            beam.metrics.Metrics.counter(ns, "rows_out").inc(result.kept.num_rows)
            yield result.kept
        if result.rejected is not None and result.rejected.num_rows:
            for reason, count in _reason_counts(result.rejected).items():
                beam.metrics.Metrics.counter(ns, f"dropped_{reason}").inc(count)
            yield beam.pvalue.TaggedOutput(REJECTED, result.rejected)
        for entry in result.deadletter:
            beam.metrics.Metrics.counter(ns, "deadletter").inc()
            yield beam.pvalue.TaggedOutput(DEADLETTER, entry)
        progress.tick(self._stage, rate_of="in", **{
            "in": batch.num_rows, "out": 0 if result.kept is None else result.kept.num_rows})


def _concat(batches: list[pa.RecordBatch]) -> pa.RecordBatch | None:
    if not batches:
        return None
    table = pa.concat_tables([pa.Table.from_batches([b]) for b in batches],
                             promote_options="permissive")
    return table.combine_chunks().to_batches()[0]


def retry_by_row(stage: str, fn: Callable[[pa.RecordBatch], BatchResult], batch: pa.RecordBatch
                 ) -> BatchResult:
    """The one failure policy of batch stages: after a batch failed, run `fn` on each row
    alone; rows that fail again go to the dead letter with their error, the others go on."""
    kept, rejected, dead = [], [], []
    for i in range(batch.num_rows):
        one = batch.slice(i, 1)
        try:
            result = fn(one)
        except Exception as e:  # this row's error goes to the dead letter with the row
            row = one.to_pylist()[0]
            dead.append(deadletter_entry(stage, f"{type(e).__name__}: {e}", row,
                                         record_id=row.get("id")))
            continue
        if result.kept is not None and result.kept.num_rows:
            kept.append(result.kept)
        if result.rejected is not None and result.rejected.num_rows:
            rejected.append(result.rejected)
        dead.extend(result.deadletter)
    return BatchResult(kept=_concat(kept), rejected=_concat(rejected), deadletter=dead)


def _reason_counts(rejected: pa.RecordBatch) -> dict[str, int]:
    counts = pc.value_counts(rejected.column("reject_reason")).to_pylist()
    return {c["values"]: c["counts"] for c in counts}


class ApplyBatchFn(beam.PTransform):
    """Thin Beam shell around a pure `fn(batch) -> BatchResult` (or `fn(batch, state)` with a
    per-worker `setup()` returning `state`). Returns {MAIN, REJECTED, DEADLETTER}. A batch whose
    `fn` raises is retried row by row (`retry_by_row`): only the failing rows are dead-lettered."""

    def __init__(self, stage: str, fn: Callable[..., BatchResult],
                 setup: Callable[[], Any] | None = None, label: str | None = None):
        super().__init__(label)
        self._stage, self._fn, self._setup = stage, fn, setup

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        out = batches | beam.ParDo(_ApplyBatchFn(self._stage, self._fn, self._setup)) \
            .with_outputs(REJECTED, DEADLETTER, main=MAIN)
        return {MAIN: out[MAIN], REJECTED: out[REJECTED], DEADLETTER: out[DEADLETTER]}
