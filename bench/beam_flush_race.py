"""Reproducer for the data loss in Beam's multi-process DirectRunner that
pipeline.runner.options.size_flushed_runner_data_plane works around (no refinery code involved).

A plain pipeline (Create → FlatMap to 64 keys → Flatten → GroupByKey → count) with about
1.3 GB of values, run with 2 worker processes, once with Beam's default runner data plane
(inputs to workers flushed by a 1 s timer as well as by size) and once with size-based
flushing only. The timer's flush clears the buffer after sending it without a lock against
writes, so a write made while the send queue is full is dropped. Prints the values lost per
run; the last line is one JSON object.

    python bench/beam_flush_race.py [--runs 3] [--inputs 1000] [--rows 2600]
"""

from __future__ import annotations

import argparse
import json

import apache_beam as beam
import numpy as np

KEYS = 64


def emit(i: int, rows: int):
    for k in range(KEYS):
        yield k, np.full(rows, i, np.int64)


def count(kv: tuple) -> None:
    beam.metrics.Metrics.counter("race", "values").inc(sum(len(v) for v in kv[1]))


def lost(inputs: int, rows: int, time_limit_ms: int) -> int:
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = time_limit_ms
    p = beam.Pipeline(options=PipelineOptions(
        runner="DirectRunner", direct_running_mode="multi_processing", direct_num_workers=2))
    main = p | beam.Create(list(range(inputs))) | beam.FlatMap(emit, rows)
    other = p | "Seed" >> beam.Create([None]) | "None" >> beam.FlatMap(lambda _: [])
    _ = (main, other) | beam.Flatten() | beam.GroupByKey() | beam.Map(count)
    result = p.run()
    result.wait_until_finish()
    got = sum(c.committed for c in result.metrics().query()["counters"]
              if c.key.metric.name == "values")
    return inputs * KEYS * rows - got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--inputs", type=int, default=1000)
    ap.add_argument("--rows", type=int, default=2600, help="int64 values per element")
    a = ap.parse_args()
    res: dict[str, list[int]] = {"beam_default": [], "size_flushed": []}
    for r in range(a.runs):
        for name, ms in (("beam_default", 1000), ("size_flushed", 0)):
            res[name].append(lost(a.inputs, a.rows, ms))
            print(f"run {r + 1} {name:>12}: {res[name][-1]:,} of "
                  f"{a.inputs * KEYS * a.rows:,} values lost", flush=True)
    print(json.dumps({"bench": "beam_flush_race", "values": a.inputs * KEYS * a.rows,
                      "lost": res}))


if __name__ == "__main__":
    main()
