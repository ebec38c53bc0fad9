"""Overlap rules over hashed n-grams: which (training row, benchmark item) pairs share n-grams,
and how much of the item those shared n-grams cover.

Coverage of a pair = |union of [p, p + n) over item positions p whose n-gram the row also has|
/ item tokens. Tulu 3: n = 8, flagged when coverage > 0.5. GPT-3: n = 13, any shared n-gram
(coverage > 0). All numpy; Python only for the spans of flagged pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transforms.decontam.ngram_index import BenchmarkIndex, window_hashes


@dataclass
class Pairs:
    """(row, item) pairs sharing at least one n-gram, sorted by (row, item). Pair k's shared
    n-gram positions in the item are pos[group[k]:group[k + 1]], ascending."""

    n: int
    row: np.ndarray
    item: np.ndarray
    covered: np.ndarray
    coverage: np.ndarray
    pos: np.ndarray
    group: np.ndarray

    def __len__(self) -> int:
        return len(self.row)

    def longest_run(self, k: int) -> tuple[int, int]:
        """[start, end) of the longest stretch of item tokens covered by pair k's n-grams."""
        positions = self.pos[self.group[k]:self.group[k + 1]]
        best = (0, 0)
        start, end = int(positions[0]), int(positions[0]) + self.n
        for p in positions[1:]:
            p = int(p)
            if p <= end:
                end = max(end, p + self.n)
            else:
                if end - start > best[1] - best[0]:
                    best = (start, end)
                start, end = p, p + self.n
        return (start, end) if end - start > best[1] - best[0] else best


def _empty(n: int) -> Pairs:
    z = np.zeros(0, np.int64)
    return Pairs(n, z, z, z, np.zeros(0), z, np.zeros(1, np.int64))


def shared_pairs(index: BenchmarkIndex, n: int, ids: np.ndarray, doc: np.ndarray,
                 doc_row: np.ndarray) -> Pairs:
    """Pairs of rows and items sharing n-grams. `ids`/`doc`: encoded tokens of the row texts
    and their text index; `doc_row`: the row of each text."""
    nix = index.by_n[n]
    hashes, starts = window_hashes(ids, doc, n, index.number_id)
    found, key = nix.find(hashes)
    if len(found) == 0:
        return _empty(n)
    rows = doc_row[doc[starts[found]]].astype(np.int64)
    combo = np.unique(rows * np.int64(len(nix.keys)) + key)  # distinct (row, n-gram)
    rows, key = combo // len(nix.keys), combo % len(nix.keys)
    first = nix.offsets[key]
    counts = nix.offsets[key + 1] - first
    total = int(counts.sum())
    ends = np.cumsum(counts)
    post = np.repeat(first - (ends - counts), counts) + np.arange(total)
    row = np.repeat(rows, counts)
    item = nix.item[post].astype(np.int64)
    pos = nix.pos[post].astype(np.int64)
    order = np.lexsort((pos, item, row))
    row, item, pos = row[order], item[order], pos[order]
    new = np.ones(total, bool)
    new[1:] = (row[1:] != row[:-1]) | (item[1:] != item[:-1])
    group = np.flatnonzero(new)
    contrib = np.full(total, n, np.int64)
    same_next = ~new[1:]
    contrib[:-1][same_next] = np.minimum(np.diff(pos)[same_next], n)
    covered = np.add.reduceat(contrib, group)
    p_item = item[group]
    coverage = covered / np.maximum(index.item_len[p_item], 1)
    return Pairs(n, row[group], p_item, covered, coverage, pos,
                 np.append(group, total).astype(np.int64))


def flagged(pairs: Pairs, min_coverage: float) -> np.ndarray:
    """Indices of the pairs the rule flags (coverage strictly above `min_coverage`)."""
    return np.flatnonzero(pairs.coverage > min_coverage)
