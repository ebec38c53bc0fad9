"""Step 3 of the dedup stage: SemDeDup by keyed joins.

The decisions so far are routed to the batches holding their rows (a join by batch key), and
each batch embeds only its surviving rows. A deterministic bounded sample (the `kmeans_sample`
rows with the smallest id hashes, kept by a combine that never holds more) trains k-means;
the centroids (k × dim floats) are the only side input. Rows are grouped by k-means cluster
in coarse partitions and deduplicated inside each cluster (semantic.dedup_cluster).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np

from transforms.dedup import _steps as st
from transforms.dedup import semantic
from transforms.dedup.components import cat, split_by, track
from transforms.dedup.config import DedupConfig
from transforms.dedup.keyed import NO_BATCH, batch_key, decisions, node_ids, route

EMB = ("node", "key", "score", "batch", "emb")


class EmbedSurvivors(beam.DoFn):
    """(batch key, {"batches", "decisions"}) → embeddings of the rows not dropped so far."""

    def __init__(self, cfg: DedupConfig, emb_cfg: Any):
        self._cfg, self._emb_cfg = cfg, emb_cfg

    def setup(self) -> None:
        from transforms.embed.model import Embedder

        self._embedder = Embedder(self._emb_cfg)

    def process(self, kv: tuple[int, dict[str, Iterable]]) -> Iterable[dict[str, Any]]:
        from transforms.dedup.exact import key_texts, quality_scores, row_keys

        dropped = cat(kv[1]["decisions"], "node")["node"]
        for batch in kv[1]["batches"]:
            keys = row_keys(batch)
            nodes = node_ids(keys)
            keep = ~np.isin(nodes, dropped)
            if not keep.any():
                continue
            texts = [t for t, k in zip(key_texts(batch, self._cfg.key), keep, strict=True) if k]
            yield {"node": nodes[keep], "key": np.asarray(keys, dtype=object)[keep],
                   "score": quality_scores(batch, self._cfg.score_field)[keep],
                   "batch": np.full(int(keep.sum()), batch_key(keys), np.int64),
                   "emb": self._embedder.encode(texts)}


class SampleFn(beam.CombineFn):
    """The `limit` rows with the smallest (hash of row key, row key): the k-means sample.
    Never holds more than `limit` rows (plus one input chunk while merging)."""

    def __init__(self, limit: int):
        self.limit = limit

    def create_accumulator(self) -> dict[str, Any] | None:
        return None

    def _trim(self, parts: list[dict[str, Any] | None]) -> dict[str, Any] | None:
        parts = [p for p in parts if p is not None and len(p["key"])]
        if not parts:
            return None
        key = np.concatenate([p["key"] for p in parts])
        h = np.concatenate([p["h"] for p in parts])
        emb = np.concatenate([p["emb"] for p in parts])
        order = np.lexsort((key.astype(str), h))[: self.limit]
        return {"key": key[order], "h": h[order], "emb": emb[order]}

    def add_input(self, acc: dict[str, Any] | None, chunk: dict[str, Any]) -> Any:
        from transforms.dedup.exact import exact_hashes

        new = {"key": chunk["key"], "h": exact_hashes([str(k) for k in chunk["key"]]),
               "emb": chunk["emb"]}
        return self._trim([acc, new])

    def merge_accumulators(self, accs: Iterable[Any]) -> Any:
        return self._trim(list(accs))

    def extract_output(self, acc: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if acc is None else {"ids": acc["key"], "emb": acc["emb"]}


def release_embeddings(release: Any) -> dict[str, Any] | None:
    if release.emb is None:
        return None
    keys = np.array([st.RELEASE_TAG + i for i in release.emb_ids], dtype=object)
    return {"node": node_ids(list(keys)), "key": keys, "score": np.full(len(keys), np.inf),
            "batch": np.full(len(keys), NO_BATCH, np.int64), "emb": release.emb}


def cluster_entries(chunk: dict[str, Any] | None, centroids: np.ndarray, P: int
                    ) -> Iterable[tuple]:
    """(cluster % P, rows with their k-means cluster)."""
    if chunk is None or len(chunk["key"]) == 0 or centroids.shape[1] != chunk["emb"].shape[1]:
        return
    cl = semantic.assign_clusters(chunk["emb"], centroids)
    yield from split_by(cl % P, {"cluster": cl, **{c: chunk[c] for c in EMB}})


def decide(group: Iterable[dict], eps: float, P: int) -> Iterable[tuple]:
    """SemDeDup inside every cluster of one partition → decisions keyed by row node."""
    d = cat(group, "cluster", *EMB)
    track("semantic", d)
    if len(d["key"]) < 2:
        return
    found = st.decide_semantic([{"cluster": d["cluster"], "ids": d["key"], "scores": d["score"],
                                 "emb": d["emb"]}], eps)
    if found:
        pos = {k: n for n, k in enumerate(d["key"].tolist())}
        rows = [(pos[r], pos[k], reason, det) for r, k, reason, det in found]
        yield from route(decisions(rows, d), "node", P)


class SemanticDecisions(beam.PTransform):
    """Step 3 of 4: SemDeDup (see the module doc). ({"batches": keyed by batch key,
    "so_far": decisions keyed by batch}) → {"decisions", "embeddings"}."""

    def __init__(self, cfg: DedupConfig, emb_cfg: Any, seed: int, release: Any,
                 label: str | None = None):
        super().__init__(label)
        self.cfg, self.emb_cfg, self.seed, self.release = cfg, emb_cfg, seed, release

    def expand(self, inputs: dict[str, beam.PCollection]) -> dict[str, beam.PCollection]:
        cfg, P = self.cfg, self.cfg.num_partitions
        rel = release_embeddings(self.release)
        emb = ({"batches": inputs["batches"], "decisions": inputs["so_far"]}
               | "JoinSoFar" >> beam.CoGroupByKey()
               | "Embed" >> beam.ParDo(EmbedSurvivors(cfg, self.emb_cfg)))
        cents = (emb | "Sample" >> beam.CombineGlobally(SampleFn(cfg.kmeans_sample))
                 | "KMeans" >> beam.Map(st.train_centroids, cfg, self.seed))
        cents_si = beam.pvalue.AsSingleton(cents)
        sem = ((emb | "ClusterEntries" >> beam.FlatMap(cluster_entries, cents_si, P),
                cents | "ReleaseClusters" >> beam.FlatMap(
                    lambda c: cluster_entries(rel, c, P)))
               | "FlatClusters" >> beam.Flatten()
               | "GroupClusters" >> beam.GroupByKey()
               | "DecideSemantic" >> beam.FlatMap(
                   lambda kv: decide(kv[1], cfg.semantic_eps, P)))
        return {"decisions": sem, "embeddings": emb}


def kept_rows(chunk: dict[str, Any], dropped: np.ndarray) -> dict[str, Any]:
    keep = ~np.isin(chunk["node"], dropped)
    return {c: v[keep] for c, v in chunk.items()}

