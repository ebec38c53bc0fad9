"""FindPartners: the Beam shell of the bucketed partner search (see partners.py).

Reads (seed, wants_partner) pairs, one per seed. Writes (seed id, choice) for every seed that
wants a partner: choice = {partner: {id, question, answer, context} | None, similarity, reason}.
Steps: embed in batches → bucket keys per LSH table (hyperplanes from the run seed; their number
from the seed count, a bounded side input) → GroupByKey per (table, bucket) → exact top-k per
id-ordered block of at most `partner_max_bucket` seeds → GroupByKey per seed → merge and choose.
No step holds more than one block of seeds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam

from transforms.compound.config import CompoundConfig
from transforms.compound.partners import (
    block_candidates,
    blocks,
    choose,
    hyperplanes,
    lsh_bits,
    lsh_keys,
    merge_candidates,
)

_FIELDS = ("id", "question", "answer", "context")


def embed_text(seed: dict[str, Any]) -> str:
    """What is embedded: the question and the start of the context."""
    return f"{seed['question']}\n{(seed.get('context') or '')[:300]}".strip()


class _Embed(beam.DoFn):
    """[(seed, wants)] → (seed, wants, vector); the embedding model loaded once per worker."""

    def __init__(self, embeddings: Any):
        self._cfg = embeddings

    def setup(self) -> None:
        from transforms.embed.model import Embedder

        self._embedder = Embedder(self._cfg)

    def process(self, batch: list[tuple[dict[str, Any], bool]]) -> Iterable[Any]:
        vectors = self._embedder.encode([embed_text(seed) for seed, _ in batch])
        for (seed, wants), vec in zip(batch, vectors, strict=True):
            yield {k: seed.get(k) for k in _FIELDS}, wants, vec


class _Bucket(beam.DoFn):
    """(seed, wants, vector) → ((table, bucket), entry) for each LSH table."""

    def __init__(self, cfg: CompoundConfig, run_seed: int):
        self._cfg, self._seed = cfg, run_seed
        self._planes: Any = None

    def process(self, entry: tuple[dict[str, Any], bool, Any], n_seeds: int) -> Iterable[Any]:
        import numpy as np

        vec = np.asarray(entry[2], dtype=np.float32)
        bits = lsh_bits(n_seeds, self._cfg.partner_bucket_target, self._cfg.partner_max_bucket)
        if self._planes is None or self._planes.shape[1:] != (bits, vec.shape[0]):
            self._planes = hyperplanes(self._seed, self._cfg.partner_tables, bits, vec.shape[0])
        keys = lsh_keys(vec[None, :], self._planes)[0]
        tables = self._cfg.partner_tables if bits else 1  # one bucket: one table is exact
        for t in range(tables):
            yield (t, int(keys[t])), entry


class _SearchBucket(beam.DoFn):
    """((table, bucket), entries) → (seed id, [(similarity, partner id, partner)]) per wanting
    seed, searching each id-ordered block of at most `partner_max_bucket` entries."""

    def __init__(self, cfg: CompoundConfig):
        self._cfg = cfg

    def process(self, element: tuple[Any, Iterable[Any]]) -> Iterable[Any]:
        import numpy as np

        entries = list(element[1])
        ids = [e[0]["id"] for e in entries]
        beam.metrics.Metrics.distribution("refinery.compound", "partner_bucket_size").update(
            len(entries))
        for block in blocks(ids, self._cfg.partner_max_bucket):
            sub = [entries[i] for i in block]
            emb = np.stack([np.asarray(e[2], dtype=np.float32) for e in sub])
            found = block_candidates([e[0]["id"] for e in sub], emb, [e[1] for e in sub],
                                     self._cfg.partner_neighbours)
            by_id = {e[0]["id"]: e[0] for e in sub}
            for i, cands in found.items():
                yield sub[i][0]["id"], [(s, p, by_id[p]) for s, p in cands]


def _choose(element: tuple[str, Iterable[list[Any]]], cfg: CompoundConfig) -> tuple[str, Any]:
    seed_id, lists = element
    lists = list(lists)
    partners = {p: seed for cands in lists for _, p, seed in cands}
    merged = merge_candidates(([(s, p) for s, p, _ in c] for c in lists),
                              cfg.partner_neighbours)
    c = choose(merged, cfg.partner_min_similarity, cfg.partner_max_similarity)
    return seed_id, {"partner": partners[c.partner_id] if c.partner_id else None,
                     "similarity": c.similarity, "reason": c.reason}


class FindPartners(beam.PTransform):
    """(seed, wants_partner) per seed → (seed id, choice) per wanting seed; see the module
    docstring."""

    def __init__(self, cfg: CompoundConfig, embeddings: Any, run_seed: int,
                 label: str | None = None):
        super().__init__(label)
        self._cfg, self._embeddings, self._seed = cfg, embeddings, run_seed

    def expand(self, seeds: beam.PCollection) -> beam.PCollection:
        n_seeds = seeds | "CountSeeds" >> beam.combiners.Count.Globally()
        embedded = (seeds
                    | "BatchForEmbedding" >> beam.BatchElements(min_batch_size=1,
                                                                max_batch_size=256)
                    | "Embed" >> beam.ParDo(_Embed(self._embeddings)))
        # every wanting seed gets a candidate list per table (empty when alone in its bucket)
        return (embedded
                | "Bucket" >> beam.ParDo(_Bucket(self._cfg, self._seed),
                                         beam.pvalue.AsSingleton(n_seeds))
                | "GroupBuckets" >> beam.GroupByKey()
                | "SearchBuckets" >> beam.ParDo(_SearchBucket(self._cfg))
                | "GroupBySeed" >> beam.GroupByKey()
                | "Choose" >> beam.Map(_choose, self._cfg))
