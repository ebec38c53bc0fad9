"""DiverseTopK: global top-K selection with a diversity constraint (Beam shell of select.py).

Reads Example batches carrying meta.quality_score. Gathers (id, score, embedding) of every
row in one place, selects, and splits the batches: selected rows → MAIN, the others →
REJECTED with reason `not_selected` (detail: rank, and the similar selected row if any).
Embeddings come from transforms.embed.model.Embedder (only when max_similarity is set).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa

from schemas.records import meta_field
from transforms.base import MAIN, METRICS_NAMESPACE, REJECTED, split_by_mask
from transforms.quality.config import SelectionConfig
from transforms.quality.select import select_diverse
from transforms.quality.signals import texts_frame

REASON = "not_selected"


class _Candidates(beam.DoFn):
    def __init__(self, config: SelectionConfig, embeddings: Any):
        self._config, self._emb_config, self._embedder = config, embeddings, None

    def setup(self) -> None:
        if self._config.max_similarity is not None:
            from transforms.embed.model import Embedder

            self._embedder = Embedder(self._emb_config)

    def process(self, batch: pa.RecordBatch) -> Iterable[tuple[list[str], np.ndarray, Any]]:
        if batch.num_rows == 0:
            return
        ids = batch.column("id").to_pylist()
        scores = meta_field(batch, "quality_score").to_numpy(zero_copy_only=False)
        vectors = None
        if self._embedder is not None:
            texts = texts_frame(batch)
            col = "prompt" if self._config.text == "prompt" else "all"
            vectors = self._embedder.encode(texts[col].to_list())
        yield ids, np.asarray(scores, dtype=np.float64), vectors


def _select(parts: list[tuple[list[str], np.ndarray, Any]], config: SelectionConfig
            ) -> dict[str, Any]:
    ids = [i for p in parts for i in p[0]]
    scores = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
    vecs = None
    if parts and parts[0][2] is not None:
        vecs = np.concatenate([p[2] for p in parts]).astype(np.float32)
    selected, skipped = select_diverse(ids, scores, vecs, config.top_k, config.max_similarity)
    return {"selected": frozenset(selected), "skipped": skipped}


class _Split(beam.DoFn):
    def process(self, batch: pa.RecordBatch, choice: dict[str, Any]) -> Iterable[Any]:
        ns = f"{METRICS_NAMESPACE}.quality"
        ids = batch.column("id").to_pylist()
        keep = [i in choice["selected"] for i in ids]
        result = split_by_mask(batch, keep, "quality", [None if k else REASON for k in keep],
                               [None if k else choice["skipped"].get(i) for i, k in zip(ids, keep, strict=False)])
        if result.kept is not None and result.kept.num_rows:
            beam.metrics.Metrics.counter(ns, "selected").inc(result.kept.num_rows)
            yield result.kept
        if result.rejected is not None and result.rejected.num_rows:
            beam.metrics.Metrics.counter(ns, f"dropped_{REASON}").inc(result.rejected.num_rows)
            yield beam.pvalue.TaggedOutput(REJECTED, result.rejected)


class DiverseTopK(beam.PTransform):
    """Global selection; returns {MAIN, REJECTED}."""

    def __init__(self, config: SelectionConfig, embeddings: Any = None, label: str | None = None):
        super().__init__(label)
        self._config, self._embeddings = config, embeddings

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        choice = (batches
                  | "Candidates" >> beam.ParDo(_Candidates(self._config, self._embeddings))
                  | "Gather" >> beam.combiners.ToList()
                  | "Select" >> beam.Map(_select, self._config))
        out = batches | "Split" >> beam.ParDo(
            _Split(), choice=beam.pvalue.AsSingleton(choice)).with_outputs(REJECTED, main=MAIN)
        return {MAIN: out[MAIN], REJECTED: out[REJECTED]}
