"""Diverse top-K selection (pure core).

Candidates are ranked by score (descending; null last), ties by id. A candidate is skipped
when its cosine similarity to an already selected one exceeds `max_similarity`; selection stops
at `top_k`. Returns the selected ids and, per skipped id, why (JSON-able detail).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_BLOCK = 256


def rank_order(ids: Sequence[str], scores: np.ndarray) -> list[int]:
    """Indices by score descending (NaN last), then id ascending."""
    keyed = [(-(s if s == s else -np.inf), i) for s, i in zip(scores.tolist(), ids, strict=False)]
    return sorted(range(len(ids)), key=lambda k: keyed[k])


def select_diverse(ids: Sequence[str], scores: np.ndarray, vectors: np.ndarray | None,
                   top_k: int | None, max_similarity: float | None
                   ) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """(selected ids in rank order, {skipped id: detail})."""
    order = rank_order(ids, np.asarray(scores, dtype=np.float64))
    limit = len(order) if top_k is None else top_k
    check = max_similarity is not None and vectors is not None and len(order) > 0
    selected: list[int] = []
    skipped: dict[str, dict[str, Any]] = {}
    sel_vecs = np.zeros((0, vectors.shape[1] if check else 0), dtype=np.float32)
    for start in range(0, len(order), _BLOCK):
        block = order[start:start + _BLOCK]
        if len(selected) >= limit:
            for rank, k in enumerate(block, start):
                skipped[ids[k]] = {"rank": rank, "why": "below_top_k"}
            continue
        prior = (vectors[block] @ sel_vecs.T) if check and len(sel_vecs) else None
        new_vecs: list[np.ndarray] = []
        new_idx: list[int] = []
        for j, k in enumerate(block):
            rank = start + j
            if len(selected) >= limit:
                skipped[ids[k]] = {"rank": rank, "why": "below_top_k"}
                continue
            if check:
                best_sim, best_with = -2.0, None
                if prior is not None and prior.shape[1]:
                    m = int(np.argmax(prior[j]))
                    best_sim, best_with = float(prior[j, m]), selected[m]
                if new_vecs:
                    sims = np.stack(new_vecs) @ vectors[k]
                    m = int(np.argmax(sims))
                    if float(sims[m]) > best_sim:
                        best_sim, best_with = float(sims[m]), new_idx[m]
                if best_with is not None and best_sim > max_similarity:
                    skipped[ids[k]] = {"rank": rank, "why": "too_similar",
                                       "similar_to": ids[best_with],
                                       "similarity": round(best_sim, 6)}
                    continue
                new_vecs.append(vectors[k])
                new_idx.append(k)
            selected.append(k)
        if check and new_vecs:
            sel_vecs = np.concatenate([sel_vecs, np.stack(new_vecs).astype(np.float32)])
    return [ids[k] for k in selected], skipped
