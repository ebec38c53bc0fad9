"""Partner selection for two-subject categories: the nearest neighbour of a seed by embedding
whose cosine similarity lies inside a window [min, max] (related, but not a duplicate).

The search is bounded and batched, never all seeds in one place: seeds are bucketed by random-
hyperplane LSH (`lsh_keys`: sign bits of `bits` projections, `tables` independent tables); a
bucket holds seeds of similar direction, so near neighbours share a bucket in at least one table
with high probability. Within a bucket, seeds are cut into id-ordered blocks of at most
`max_block` (`blocks`), and each block is searched exactly (`block_candidates`: top-k by cosine
per wanting seed). A seed's candidates from all its tables are merged (`merge_candidates`) and
the choice is made from the merged top-k (`choose`). Work per step is at most max_block² · dim,
memory max_block · dim. While all seeds fit in one block, bits = 0: one bucket, the exact
search.

Pure numpy; ties broken by id, so results are independent of input order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# Similarities are computed in float64 (so the order of the rows, which changes how BLAS blocks
# the product, moves them by ~1e-16, not ~1e-7) and compared after rounding, so float noise
# cannot reorder two neighbours that are equal for every practical purpose.
_DECIMALS = 6

Candidate = tuple[float, str]  # (similarity, partner id)


@dataclass(frozen=True)
class PartnerChoice:
    partner_id: str | None  # None when there is none
    similarity: float | None
    reason: str | None  # why there is none: no_neighbours, all_duplicates, none_in_window


def lsh_bits(n_seeds: int, bucket_target: int, max_block: int) -> int:
    """Hyperplanes per table: 0 (one exact bucket) while all seeds fit in one block, else enough
    that buckets hold about `bucket_target` seeds."""
    if n_seeds <= max(bucket_target, max_block):
        return 0
    return min(30, math.ceil(math.log2(n_seeds / bucket_target)))


def hyperplanes(seed: int, tables: int, bits: int, dim: int) -> np.ndarray:
    """(tables, bits, dim) Gaussian hyperplanes, fixed by the run seed."""
    return np.random.default_rng(seed).standard_normal((tables, bits, dim)).astype(np.float32)


def lsh_keys(embeddings: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """(n, tables) bucket numbers: the sign bits of each table's projections, as an integer."""
    n, (tables, bits, _) = embeddings.shape[0], planes.shape
    if bits == 0:
        return np.zeros((n, tables), dtype=np.int64)
    signs = np.einsum("nd,tbd->ntb", embeddings, planes) > 0
    return (signs.astype(np.int64) << np.arange(bits, dtype=np.int64)).sum(axis=2)


def blocks(ids: Sequence[str], max_block: int) -> list[list[int]]:
    """Indices of a bucket's seeds in id order, cut into blocks of at most `max_block`."""
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    return [order[s:s + max_block] for s in range(0, len(order), max_block)]


def block_candidates(ids: Sequence[str], embeddings: np.ndarray, wanted: Sequence[bool],
                     k: int) -> dict[int, list[Candidate]]:
    """For each wanting seed of one block: its k most similar other seeds (by (-sim, id)).
    A seed with the same id, or the seed itself, is never its own candidate."""
    n = len(ids)
    if embeddings.shape[0] != n:
        raise ValueError(f"{embeddings.shape[0]} embeddings for {n} ids")
    uniq, codes = np.unique(np.asarray(ids, dtype=object), return_inverse=True)
    emb = np.asarray(embeddings, dtype=np.float32).astype(np.float64)
    rows = np.flatnonzero(np.asarray(wanted, dtype=bool))
    if rows.size == 0:
        return {}
    sims = np.round(emb[rows] @ emb.T, _DECIMALS)
    sims[codes[rows][:, None] == codes[None, :]] = -np.inf  # itself and copies under its id
    kk = min(k, n)
    kth = np.partition(sims, n - kk, axis=1)[:, n - kk]  # the k-th largest per row
    top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
    top_sims = np.take_along_axis(sims, top, axis=1)
    order = np.lexsort((codes[top], -top_sims), axis=1)  # by (-similarity, id), row-wise
    top, top_sims = np.take_along_axis(top, order, 1), np.take_along_axis(top_sims, order, 1)
    # rows with a tie at the k-th place or fewer than k others take the exact slow path
    slow = ((sims >= kth[:, None]).sum(axis=1) != kk) | ~np.isfinite(top_sims).all(axis=1)
    names = [str(u) for u in uniq]
    out: dict[int, list[Candidate]] = {}
    for r, i in enumerate(rows):
        if not slow[r]:
            out[int(i)] = [(s, names[codes[j]]) for s, j in zip(top_sims[r].tolist(),
                                                                 top[r].tolist(), strict=True)]
            continue
        near = np.flatnonzero((sims[r] >= kth[r]) & np.isfinite(sims[r]))
        by = np.lexsort((codes[near], -sims[r, near]))
        out[int(i)] = [(float(sims[r, j]), names[codes[j]]) for j in near[by][:k]]
    return out


def merge_candidates(lists: Iterable[Iterable[Candidate]], k: int) -> list[Candidate]:
    """One seed's candidates from several tables/blocks: unique by id, top-k by (-sim, id)."""
    best: dict[str, float] = {}
    for cands in lists:
        for sim, pid in cands:
            best[pid] = max(sim, best.get(pid, -math.inf))
    return sorted(((s, p) for p, s in best.items()), key=lambda c: (-c[0], c[1]))[:k]


def choose(candidates: Sequence[Candidate], min_similarity: float,
           max_similarity: float) -> PartnerChoice:
    """The most similar candidate inside the window, or why there is none."""
    if not candidates:
        return PartnerChoice(None, None, "no_neighbours")
    for sim, pid in candidates:
        if min_similarity <= sim <= max_similarity:
            return PartnerChoice(pid, sim, None)
    if all(sim > max_similarity for sim, _ in candidates):
        return PartnerChoice(None, None, "all_duplicates")
    return PartnerChoice(None, None, "none_in_window")


def select_partners(ids: Sequence[str], embeddings: np.ndarray, min_similarity: float,
                    max_similarity: float, neighbours: int,
                    wanted: Sequence[bool] | None = None) -> list[PartnerChoice]:
    """The exact search over one block (reference for the bucketed one, and small runs)."""
    want = [True] * len(ids) if wanted is None else list(wanted)
    cands = block_candidates(ids, embeddings, want, neighbours)
    return [choose(cands[i], min_similarity, max_similarity) if want[i]
            else PartnerChoice(None, None, "not_wanted") for i in range(len(ids))]


def bucketed_search(ids: Sequence[str], embeddings: np.ndarray, *, bits: int, tables: int,
                    max_block: int, neighbours: int, min_similarity: float,
                    max_similarity: float, seed: int = 0) -> tuple[dict[str, PartnerChoice], int]:
    """The bucketed search in one process, step for step as FindPartners runs it on Beam
    (buckets per table → blocks → top-k → merge → choose): id → choice, and the largest block.
    For tests and the benchmark."""
    keys = lsh_keys(embeddings, hyperplanes(seed, tables, bits, embeddings.shape[1]))
    found: dict[str, list[list[Candidate]]] = {i: [] for i in ids}
    largest = 0
    for t in range(tables if bits else 1):
        buckets: dict[int, list[int]] = {}
        for i, key in enumerate(keys[:, t]):
            buckets.setdefault(int(key), []).append(i)
        for members in buckets.values():
            for block in blocks([ids[i] for i in members], max_block):
                rows = [members[j] for j in block]
                largest = max(largest, len(rows))
                cands = block_candidates([ids[r] for r in rows], embeddings[rows],
                                         [True] * len(rows), neighbours)
                for j, c in cands.items():
                    found[ids[rows[j]]].append(c)
    return {i: choose(merge_candidates(found[i], neighbours), min_similarity, max_similarity)
            for i in ids}, largest
