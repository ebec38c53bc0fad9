"""Partner selection for two-subject categories: the nearest neighbour of a seed by embedding
whose cosine similarity lies inside a window [min, max] (related, but not a duplicate).

Reads: seed ids and their L2-normalized embeddings. Writes: one partner index (or -1) and its
similarity per seed. Pure numpy; ties broken by id, so the result is independent of input order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Similarities are compared after rounding, so float noise between BLAS builds cannot
# reorder two neighbours that are equal for every practical purpose.
_DECIMALS = 6


@dataclass(frozen=True)
class PartnerChoice:
    index: int  # index of the partner in the input, -1 when none
    similarity: float | None
    reason: str | None  # why there is none: no_neighbours, all_duplicates, none_in_window


def _top_k(row: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values of `row` (ties at the boundary all kept, then cut after
    sorting by (-similarity, id))."""
    finite = np.flatnonzero(np.isfinite(row))
    if finite.size == 0:
        return finite
    if finite.size > k:
        kth = np.partition(row[finite], finite.size - k)[finite.size - k]
        finite = finite[row[finite] >= kth]
    order = np.lexsort((ids[finite], -row[finite]))
    return finite[order][:k]


def select_partners(
    ids: Sequence[str],
    embeddings: np.ndarray,
    min_similarity: float,
    max_similarity: float,
    neighbours: int,
    wanted: Sequence[bool] | None = None,
    chunk: int = 1024,
) -> list[PartnerChoice]:
    """For each seed (where `wanted`), the most similar of its `neighbours` nearest other seeds
    with similarity in [min_similarity, max_similarity]. A seed with the same id, or the seed
    itself, is never its own partner."""
    n = len(ids)
    if embeddings.shape[0] != n:
        raise ValueError(f"{embeddings.shape[0]} embeddings for {n} ids")
    want = np.ones(n, dtype=bool) if wanted is None else np.asarray(wanted, dtype=bool)
    id_arr = np.asarray(ids, dtype=object)
    emb = np.asarray(embeddings, dtype=np.float32)
    out: list[PartnerChoice] = [PartnerChoice(-1, None, "not_wanted")] * n
    rows = np.flatnonzero(want)
    for start in range(0, rows.size, chunk):
        block = rows[start:start + chunk]
        sims = np.round(emb[block] @ emb.T, _DECIMALS).astype(np.float64)
        for r, i in enumerate(block):
            row = sims[r]
            row[id_arr == id_arr[i]] = -np.inf  # itself and any copy under the same id
            near = _top_k(row, id_arr, neighbours)
            if near.size == 0:
                out[i] = PartnerChoice(-1, None, "no_neighbours")
                continue
            vals = row[near]
            ok = near[(vals >= min_similarity) & (vals <= max_similarity)]
            if ok.size:
                j = int(ok[0])  # `near` is sorted by (-similarity, id)
                out[i] = PartnerChoice(j, float(row[j]), None)
            elif np.all(vals > max_similarity):
                out[i] = PartnerChoice(-1, None, "all_duplicates")
            else:
                out[i] = PartnerChoice(-1, None, "none_in_window")
    return out
