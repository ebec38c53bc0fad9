"""SelectSeeds picks a deterministic, dataset-filtered sample of seeds."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.ids import content_id, example_id
from schemas.records import example_row, examples_to_batch
from transforms.config_base import SeedSelection
from transforms.select_seeds import SelectSeeds


def _batch(dataset: str, n: int, offset: int = 0) -> pa.RecordBatch:
    rows = []
    for i in range(offset, offset + n):
        msgs = [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
        rows.append(example_row(example_id(msgs), msgs,
                                {"dataset": dataset, "file": f"{dataset}.jsonl", "row": i}))
    return examples_to_batch(rows)


def _expect_ids(batches: list[pa.RecordBatch], selection: SeedSelection, seed: int,
                expected: list[str]) -> None:
    with TestPipeline() as p:
        ids = (p | beam.Create(batches, reshuffle=False)
               | SelectSeeds(selection, seed)
               | beam.FlatMap(lambda b: b.column("id").to_pylist()))
        assert_that(ids, equal_to(expected))


def _smallest(ids: list[str], seed: int, n: int) -> list[str]:
    return sorted(ids, key=lambda i: content_id("seed", seed, i))[:n]


def test_dataset_filter_and_cap_are_deterministic_across_batching() -> None:
    a, b = _batch("alpaca", 20), _batch("dolly", 10, offset=100)
    selection = SeedSelection(datasets=["alpaca"], max_seeds=5)
    alpaca_ids = a.column("id").to_pylist()
    expected = _smallest(alpaca_ids, 7, 5)
    _expect_ids([a, b], selection, 7, expected)
    # Same rows in other batch boundaries → same choice.
    _expect_ids([a.slice(0, 9), b, a.slice(9)], selection, 7, expected)
    # Another run seed draws another sample.
    other = _smallest(alpaca_ids, 8, 5)
    assert other != expected
    _expect_ids([a, b], selection, 8, other)


def test_no_limit_keeps_every_eligible_row() -> None:
    a, b = _batch("alpaca", 4), _batch("dolly", 3, offset=50)
    with TestPipeline() as p:
        rows = (p | beam.Create([a, b], reshuffle=False)
                | SelectSeeds(SeedSelection(), seed=0)
                | beam.Map(lambda batch: batch.num_rows))
        assert_that(rows | beam.CombineGlobally(sum), equal_to([7]))
