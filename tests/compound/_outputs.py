"""Collect every output of the compound stage in one PCollection, for assert_that."""

from __future__ import annotations

import apache_beam as beam

from transforms.base import DEADLETTER, EXAMPLES, REJECTED, REPORT


def tagged(out) -> beam.PCollection:
    """All outputs of the stage as (output name, item) pairs in one PCollection: rows for the
    batch outputs, dicts for the dead letter and the report."""
    rows = lambda b: b.to_pylist()  # noqa: E731
    return (
        (out[EXAMPLES] | "ex" >> beam.FlatMap(rows) | "tex" >> beam.Map(lambda r: ("examples", r)),
         out[REJECTED] | "rej" >> beam.FlatMap(rows) | "trej" >> beam.Map(lambda r: ("rejected", r)),
         out[DEADLETTER] | "tdl" >> beam.Map(lambda d: ("deadletter", d)),
         out[REPORT] | "trep" >> beam.Map(lambda d: ("report", d)))
        | "all" >> beam.Flatten())


def by_kind(items) -> dict[str, list]:
    got: dict[str, list] = {"examples": [], "rejected": [], "deadletter": [], "report": []}
    for kind, item in items:
        got[kind].append(item)
    return got
