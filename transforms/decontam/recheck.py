"""The public entry point for re-checking finished outputs against the configured benchmarks
(used by the release check): the same detector the stage runs, built from a run's stored
config, counting the rows it would still flag."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from transforms.decontam.benchmarks import load_benchmarks
from transforms.decontam.config import DecontamConfig
from transforms.decontam.detect import cached_detector


def contamination_counter(stage_cfg: dict[str, Any], embeddings: dict[str, Any] | None = None
                          ) -> Callable[[pa.RecordBatch], int]:
    """A function counting the rows of an Example batch that the decontam stage configured by
    `stage_cfg` (the `stages.decontam` block as stored in a manifest) would flag; `embeddings`
    is the run's `embeddings` block (paraphrase detection). Raises when the benchmarks cannot
    be loaded (paths are relative to the working directory)."""
    config = DecontamConfig.model_validate(stage_cfg)
    items = load_benchmarks(config.benchmarks)
    detector = cached_detector(config.model_dump_json(), items,
                               json.dumps(embeddings) if embeddings else None)

    def count(batch: pa.RecordBatch) -> int:
        reasons, _ = detector.find(batch)
        return sum(r is not None for r in reasons)
    return count
