"""Connected components (union by smallest root) and deterministic keepers.

Nodes are numbered in keeper-priority order (best quality score first, then smallest id), so
the root of a component, kept as its smallest node number, is its keeper on every run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def priority_order(ids: Sequence[str], scores: np.ndarray | None,
                   pinned: np.ndarray | None = None) -> np.ndarray:
    """Permutation putting rows in keeper order: pinned rows (a previous release) first, then
    higher score (missing = lowest), then smaller id."""
    n = len(ids)
    s = np.zeros(n) if scores is None else np.nan_to_num(np.asarray(scores, np.float64),
                                                         nan=-np.inf)
    p = np.zeros(n, bool) if pinned is None else np.asarray(pinned, bool)
    id_rank = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    rank = np.empty(n, np.int64)
    rank[id_rank] = np.arange(n)
    return np.lexsort((rank, -s, ~p))


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Root (smallest member) of every node's component, given edges (i, j). Vectorized:
    every round hooks the root of each edge's ends onto the smaller of the two roots, then
    jumps pointers until every node points at a root; a few rounds suffice."""
    labels = np.arange(n, dtype=np.int64)
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    while len(i):
        li, lj = labels[i], labels[j]
        differ = li != lj
        if not differ.any():
            break
        li, lj = li[differ], lj[differ]
        low = np.minimum(li, lj)
        np.minimum.at(labels, li, low)
        np.minimum.at(labels, lj, low)
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
    return labels


def cluster_lists(roots: np.ndarray) -> dict[int, list[int]]:
    """Root → sorted members, for components with more than one member."""
    order = np.argsort(roots, kind="stable")
    r = roots[order]
    bounds = np.flatnonzero(np.diff(r)) + 1
    out: dict[int, list[int]] = {}
    for members in np.split(order, bounds):
        if len(members) > 1:
            out[int(roots[members[0]])] = sorted(int(m) for m in members)
    return out


def has_signature(sigs: np.ndarray) -> np.ndarray:
    """Rows of a signature matrix with at least one shingle (not all slots empty)."""
    return (sigs != np.uint32(0xFFFFFFFF)).any(axis=1)


def star_keepers(sigs: np.ndarray, pinned: np.ndarray, threshold: float,
                 tails: np.ndarray | None = None, tail_threshold: float = 0.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Keepers of one component whose rows are given in priority order, so that no row is
    removed through a chain: the first row keeps; every later row whose estimated Jaccard
    with it (equal signature slots) reaches `threshold` is assigned to it; the first row left
    unassigned keeps next, and so on. Pinned rows (a previous release) are never assigned.
    With `tails` (last-paragraph signatures), a row whose last paragraph and its keeper's
    both exist must also reach `tail_threshold` on them.
    Returns (keeper position of each row, itself for kept rows; estimated Jaccard with it)."""
    n = len(sigs)
    check_tail = tails is not None and tails.shape[1] > 0 and tail_threshold > 0
    has_tail = has_signature(tails) if check_tail else np.zeros(n, bool)
    keeper = np.full(n, -1, np.int64)
    sim = np.ones(n)
    pinned = np.asarray(pinned, bool)
    for k in range(n):
        if keeper[k] >= 0:
            continue
        keeper[k] = k
        rest = np.flatnonzero(keeper[k + 1:] < 0) + k + 1
        rest = rest[~pinned[rest]]
        if len(rest) == 0:
            continue
        est = (sigs[rest] == sigs[k]).mean(axis=1)
        hit = est >= threshold
        if has_tail[k]:
            both = has_tail[rest]
            hit &= ~both | ((tails[rest] == tails[k]).mean(axis=1) >= tail_threshold)
        keeper[rest[hit]] = k
        sim[rest[hit]] = est[hit]
    return keeper, sim
