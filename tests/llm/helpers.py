"""Running `Generate` in a real Beam pipeline and reading its outputs and metrics."""

from __future__ import annotations

import json
import pickle
import uuid
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline

from transforms.base import DEADLETTER, MAIN
from transforms.llm.generate import Generate

_OUT = Path("/tmp") / f"refinery-llm-tests-{uuid.uuid4().hex[:8]}"


class Collect(beam.DoFn):
    """Appends each element (pickled) to a file: outputs are read back after the run."""

    def __init__(self, path: str):
        self._path = path

    def process(self, element: Any) -> None:
        with open(self._path, "ab") as f:
            pickle.dump(element, f)


def read_collected(path: Path) -> list[Any]:
    """Everything a Collect DoFn wrote to `path`, in order."""
    items = []
    if path.exists():
        with open(path, "rb") as f:
            while True:
                try:
                    items.append(pickle.load(f))
                except EOFError:
                    break
    return items


def run_generate(requests, config, stage: str, options: dict[str, Any] | None = None,
                 **kwargs) -> tuple[Any, list, list[dict]]:
    """Run Generate on `requests` (extra pipeline `options`, e.g. multi-process DirectRunner);
    (pipeline result, MAIN results, DEADLETTER entries)."""
    _OUT.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex
    main_path, dead_path = _OUT / f"{tag}.main", _OUT / f"{tag}.dead"
    p = TestPipeline(options=PipelineOptions(**options)) if options else TestPipeline()
    out = p | beam.Create(requests, reshuffle=False) | Generate(config, stage=stage, **kwargs)
    out[MAIN] | "CollectMain" >> beam.ParDo(Collect(str(main_path)))
    out[DEADLETTER] | "CollectDead" >> beam.ParDo(Collect(str(dead_path)))
    result = p.run()
    result.wait_until_finish()
    dead = read_collected(dead_path)
    json.dumps(dead)  # dead-letter entries are JSON-able
    return result, read_collected(main_path), dead


def counters(result, stage: str) -> dict[str, int]:
    """Committed counters of namespace refinery.<stage>, by name."""
    query = result.metrics().query(MetricsFilter().with_namespace(f"refinery.{stage}"))
    out: dict[str, int] = {}
    for c in query["counters"]:
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + c.committed
    return out
