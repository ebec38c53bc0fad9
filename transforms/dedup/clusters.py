"""Union-find clusters and deterministic keepers.

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


class UnionFind:
    """Union-find over n nodes; the root of a set is its smallest node."""

    def __init__(self, n: int):
        self.parent = np.arange(n, dtype=np.int64)

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            self.parent[hi] = lo

    def roots(self) -> np.ndarray:
        return np.array([self.find(x) for x in range(len(self.parent))], np.int64)


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Root (smallest member) of every node's component, given edges (i, j)."""
    uf = UnionFind(n)
    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        uf.union(a, b)
    return uf.roots()


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
