"""SemDeDup: k-means over sentence embeddings, then greedy dedup inside each cluster.

Reads L2-normalized float32 embeddings; writes centroids, a cluster number per row, and for each
cluster the keeper of every member (itself when kept). Inside a cluster, members are visited in
keeper priority; a member is dropped when its cosine similarity to an already kept member
exceeds 1 − eps. faiss runs on the GPU when it was built with GPU support and one is present.
"""

from __future__ import annotations

import numpy as np


def auto_clusters(n: int, requested: int | None) -> int:
    """Number of k-means clusters: the configured one, or about √n (at most n / 10)."""
    if n <= 0:
        return 1
    k = requested if requested else int(np.sqrt(n))
    return int(max(1, min(k, n // 10 if n >= 10 else 1)))


def _gpus() -> int:
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def kmeans_centroids(emb: np.ndarray, k: int, seed: int, niter: int = 20) -> np.ndarray:
    """(k, d) float32 centroids; deterministic for the same rows in the same order."""
    import faiss

    emb = np.ascontiguousarray(emb, dtype=np.float32)
    k = max(1, min(k, len(emb)))
    if k == 1:
        return emb.mean(axis=0, keepdims=True).astype(np.float32)
    km = faiss.Kmeans(emb.shape[1], k, niter=niter, seed=seed, gpu=_gpus() > 0,
                      min_points_per_centroid=1, max_points_per_centroid=1 << 30,
                      spherical=True, verbose=False)
    km.train(emb)
    return np.asarray(km.centroids, dtype=np.float32)


def assign_clusters(emb: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid (by inner product) of each row; ties → lowest cluster number."""
    if len(emb) == 0:
        return np.zeros(0, np.int64)
    sims = np.asarray(emb, np.float32) @ centroids.T
    return np.argmax(sims, axis=1).astype(np.int64)


def dedup_cluster(emb: np.ndarray, eps: float, pinned: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Rows in keeper priority (pinned rows, e.g. a previous release, first and always kept).
    Returns (keeper row of each row, cosine similarity to it; 1.0 for kept rows)."""
    m = len(emb)
    keeper = np.arange(m, dtype=np.int64)
    sim = np.ones(m, np.float32)
    if m < 2:
        return keeper, sim
    emb = np.asarray(emb, np.float32)
    pin = np.zeros(m, bool) if pinned is None else np.asarray(pinned, bool)
    kept = np.zeros(m, bool)
    limit = 1.0 - eps
    block = 256
    for start in range(0, m, block):
        stop = min(m, start + block)
        sims = emb[start:stop] @ emb[:stop].T  # (block, stop)
        for r in range(start, stop):
            if pin[r]:
                kept[r] = True
                continue
            row = np.where(kept[:r], sims[r - start, :r], -np.inf)
            best = int(np.argmax(row)) if r else 0
            if r and row[best] > limit:
                keeper[r] = best
                sim[r] = row[best]
            else:
                kept[r] = True
    return keeper, sim
