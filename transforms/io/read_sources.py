"""ReadSources: config sources → canonical Example and PreferencePair record batches.

Reads planned file splits (see plan.py) inside a DoFn, converts rows with the format adapters,
normalizes text and assigns content hashes and row ids (content hash at the file's key and
row number: unique per input row, stable across reruns). Writes MAIN (Example batches), PAIRS (PreferencePair
batches), DEADLETTER (unparseable or invalid rows with error and raw payload) and REPORT (per
split counts). Drops nothing silently.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

import apache_beam as beam
from apache_beam.utils.windowed_value import WindowedValue

from schemas.records import examples_to_batch, pairs_to_batch
from transforms.base import DEADLETTER, MAIN, METRICS_NAMESPACE, PAIRS, REPORT, deadletter_entry
from transforms.io import files
from transforms.io._threads import InFlight
from transforms.io.adapters import AdapterError, adapt_row
from transforms.io.canonical import to_canonical
from transforms.io.columnar import convert_jsonl
from transforms.io.config import IngestConfig, SourceConfig
from transforms.io.plan import plan_sources
from transforms.io.readers import FileReadError, FileSplit, ReadError, read_split

STAGE = "ingest"
FILE_STAGE = "ingest.file"
RAW_HEAD_BYTES = 512


def convert_row(split: FileSplit, source: SourceConfig, dataset: str, row: int, raw: Any, parsed: Any
                ) -> tuple[str, Any]:
    """The per-row reference: ('example' | 'pair', row dict) or ('deadletter', entry)."""
    try:
        if isinstance(parsed, Exception):
            raise parsed
        return to_canonical(adapt_row(split.layout, parsed, source.field_map),
                            {"dataset": dataset, "file": split.path, "row": row},
                            split.key or split.path)
    except (AdapterError, ReadError, TypeError, ValueError) as e:
        return "deadletter", deadletter_entry(STAGE, f"{type(e).__name__}: {e}", raw,
                                              file=split.path, row=row)


def _per_row(split: FileSplit, source: SourceConfig, ingest: IngestConfig, dataset: str
             ) -> Iterable[tuple[str, Any]]:
    examples: list[dict] = []
    pairs: list[dict] = []
    for row, raw, parsed in read_split(split, ingest.max_record_bytes, source.split):
        kind, value = convert_row(split, source, dataset, row, raw, parsed)
        if kind == "deadletter":
            yield kind, value
            continue
        target = examples if kind == "example" else pairs
        target.append(value)
        if len(target) >= ingest.batch_rows:
            yield kind, (examples_to_batch if kind == "example" else pairs_to_batch)(target)
            target.clear()
    if examples:
        yield "example", examples_to_batch(examples)
    if pairs:
        yield "pair", pairs_to_batch(pairs)


def convert_split(split: FileSplit, source: SourceConfig, ingest: IngestConfig, fast: bool = True
                  ) -> Iterable[tuple[str, Any]]:
    """Pure core: ('example', batch) / ('pair', batch) / ('deadletter', entry) / ('report', d).
    JSONL splits of the common layouts take the columnar path (columnar.py), which gives the
    same batches as the per-row path (`fast=False`)."""
    name = source.name or _stem(split.path)
    items = convert_jsonl(split, source, ingest, name,
                          partial(convert_row, split, source, name)) if fast else None
    if items is None:
        items = _per_row(split, source, ingest, name)
    counts = {"rows_read": 0, "examples": 0, "pairs": 0, "deadletter": 0, "file_errors": 0}
    try:
        for kind, value in items:
            if kind == "deadletter":
                counts["deadletter"] += 1
            else:
                counts[kind + "s"] += value.num_rows
            yield kind, value
    except FileReadError as e:
        counts["file_errors"] = 1
        yield "deadletter", file_deadletter(split.path, str(e), split.read_path)
    counts["rows_read"] = counts["examples"] + counts["pairs"] + counts["deadletter"]
    yield "report", {"stage": STAGE, "file": split.path, "layout": split.layout,
                     "format": split.format, "split_start": split.start, **counts,
                     **({"planned": list(split.planned)} if split.planned else {})}


def _stem(path: str) -> str:
    """The file name without its last suffix (`s3://b/in/alpaca.jsonl` → `alpaca`)."""
    return posixpath.splitext(path.rstrip("/").rsplit("/", 1)[-1])[0]


def file_deadletter(path: str, error: str, read_path: str | None = None) -> dict[str, Any]:
    """The one dead-letter entry of a file that cannot be read as a whole (stage
    `ingest.file`, not a record: it counts against the file budget, not the row budget).
    Its raw field holds the file's first bytes (read from `read_path`, default `path`)."""
    try:  # a pipe is never opened: a read would wait forever
        head = b"" if files.special_kind(read_path or path) else \
            files.read_range(read_path or path, 0, RAW_HEAD_BYTES)
    except Exception:  # missing, unreadable, a directory: any filesystem's own error type
        head = b""
    return deadletter_entry(FILE_STAGE, f"unreadable file: {error}", head, file=path)


class _ReadSplitFn(beam.DoFn):
    """Splits → batches; two splits are converted at once (see _threads.py), outputs in order."""

    def __init__(self, sources: Sequence[SourceConfig], ingest: IngestConfig):
        self._sources = list(sources)
        self._ingest = ingest

    def setup(self) -> None:
        self._flight = InFlight(self._convert)

    def teardown(self) -> None:
        self._flight.close()

    def start_bundle(self) -> None:
        self._flight.reset()

    def _convert(self, split: FileSplit) -> list[tuple[str, Any]]:
        return list(convert_split(split, self._sources[split.source_index], self._ingest))

    def process(self, split: FileSplit, timestamp: Any = beam.DoFn.TimestampParam,
                window: Any = beam.DoFn.WindowParam) -> Iterable[Any]:
        for items, ts, win in self._flight.put(split, timestamp, window):
            yield from self._outputs(items, ts, win)

    def finish_bundle(self) -> Iterable[Any]:
        for items, ts, win in self._flight.drain():
            yield from self._outputs(items, ts, win)

    @staticmethod
    def _outputs(items: list[tuple[str, Any]], ts: Any, win: Any) -> Iterable[Any]:
        ns = f"{METRICS_NAMESPACE}.{STAGE}"
        for kind, value in items:
            out = WindowedValue(value, ts, [win])
            if kind == "example":
                beam.metrics.Metrics.counter(ns, "examples").inc(value.num_rows)
                yield out
            elif kind == "pair":
                beam.metrics.Metrics.counter(ns, "pairs").inc(value.num_rows)
                yield beam.pvalue.TaggedOutput(PAIRS, out)
            elif kind == "deadletter":
                beam.metrics.Metrics.counter(ns, "deadletter").inc()
                yield beam.pvalue.TaggedOutput(DEADLETTER, out)
            else:
                beam.metrics.Metrics.counter(ns, "rows_read").inc(value["rows_read"])
                yield beam.pvalue.TaggedOutput(REPORT, out)


class ReadSources(beam.PTransform):
    """Sources → {MAIN: Example batches, PAIRS, DEADLETTER, REPORT}. Splits are planned when
    the graph is built (fails fast on missing files) and spread over workers."""

    def __init__(self, sources: Sequence[SourceConfig], ingest: IngestConfig,
                 label: str | None = None):
        super().__init__(label)
        self._sources = list(sources)
        self._ingest = ingest

    def expand(self, pbegin: beam.pvalue.PBegin) -> dict[str, beam.PCollection]:
        splits = plan_sources(self._sources, self._ingest)
        out = (
            pbegin
            | "Splits" >> beam.Create(splits, reshuffle=False)
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(_ReadSplitFn(self._sources, self._ingest)).with_outputs(
                PAIRS, DEADLETTER, REPORT, main=MAIN)
        )
        return {MAIN: out[MAIN], PAIRS: out[PAIRS], DEADLETTER: out[DEADLETTER],
                REPORT: out[REPORT]}
