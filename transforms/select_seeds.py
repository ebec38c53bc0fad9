"""SelectSeeds: the curated examples a synthesis stage starts from.

Reads Example batches; keeps rows whose `source.dataset` is listed (all when none are) and,
when `max_seeds` is set, the `max_seeds` rows with the smallest hash of (run seed, id): a
deterministic sample, the same on every runner. Writes the selected rows as batches. The
input is not consumed: every curated row still goes to the curated output, so nothing here
needs a reject reason.
"""

from __future__ import annotations

from collections.abc import Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from schemas.ids import content_id
from transforms.config_base import SeedSelection


def _eligible(batch: pa.RecordBatch, datasets: list[str]) -> pa.RecordBatch:
    if not datasets:
        return batch
    names = batch.column("source").field("dataset")
    return batch.filter(pc.fill_null(pc.is_in(names, pa.array(datasets, pa.string())), False))


def _sample_keys(batch: pa.RecordBatch, seed: int) -> Iterable[tuple[str, str]]:
    for row_id in batch.column("id").to_pylist():
        yield content_id("seed", seed, row_id), row_id


def _keep_ids(batch: pa.RecordBatch, ids: list[str]) -> pa.RecordBatch:
    return batch.filter(pc.is_in(batch.column("id"), pa.array(ids, pa.string())))


class SelectSeeds(beam.PTransform):
    def __init__(self, selection: SeedSelection, seed: int, label: str | None = None):
        super().__init__(label)
        self._sel, self._seed = selection, seed

    def expand(self, batches: beam.PCollection) -> beam.PCollection:
        datasets, seed, limit = self._sel.datasets, self._seed, self._sel.max_seeds
        eligible = (batches | "Eligible" >> beam.Map(_eligible, datasets)
                    | "NonEmpty" >> beam.Filter(lambda b: b.num_rows > 0))
        if limit is None:
            return eligible
        chosen = (eligible | "Keys" >> beam.FlatMap(_sample_keys, seed)
                  | "Smallest" >> beam.combiners.Top.Smallest(limit)
                  | "Ids" >> beam.Map(lambda pairs: sorted(i for _, i in pairs)))
        return (eligible
                | "Keep" >> beam.Map(lambda b, ids: _keep_ids(b, ids),
                                     ids=beam.pvalue.AsSingleton(chosen))
                | "NonEmptyKept" >> beam.Filter(lambda b: b.num_rows > 0))
