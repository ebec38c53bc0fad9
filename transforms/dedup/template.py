"""Template awareness for near dedup (our addition): shingles that occur in a large share of
the documents (a template's fixed text: "Translate the following sentence into French: …",
a shared multiple-choice instruction) are left out of the MinHash signatures, so two rows that
share a template but differ in its slots are compared on their slots.

Document frequencies come from a count-min sketch over the shingle hashes (each document
counts a shingle once): a fixed (DEPTH, width) table of counts, summed over batches — a
bounded combine, never a table of all shingles. A shingle is common when its estimate (the
smallest of its DEPTH counters; never below the true count) exceeds
max(template_min_docs, template_df × documents).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transforms.dedup.shingles import fmix64

DEPTH = 3
_SALTS = (0x243F6A8885A308D3, 0x13198A2E03707344, 0xA4093822299F31D0)


def _cells(h: np.ndarray, width: int) -> list[np.ndarray]:
    """Counter index of each shingle hash in every row of the sketch."""
    x = h.astype(np.uint64)
    return [(fmix64(x ^ np.uint64(s)) % np.uint64(width)).astype(np.int64)
            for s in _SALTS[:DEPTH]]


@dataclass
class DfTable:
    """Count-min sketch of shingle document frequencies, with the number of documents."""

    counts: np.ndarray  # (DEPTH, width) int32
    docs: int

    @classmethod
    def empty(cls, width: int) -> DfTable:
        return cls(np.zeros((DEPTH, width), np.int32), 0)

    @classmethod
    def of(cls, h: np.ndarray, offsets: np.ndarray, width: int) -> DfTable:
        """The table of one batch: shingle hashes `h` of documents at `offsets`."""
        n = len(offsets) - 1
        doc = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
        pairs = np.unique((doc << np.int64(32)) | h.astype(np.int64))  # one per (doc, shingle)
        uh = (pairs & np.int64(0xFFFFFFFF)).astype(np.uint32)
        counts = np.stack([np.bincount(c, minlength=width) for c in _cells(uh, width)])
        return cls(counts.astype(np.int32), n)

    def merge(self, other: DfTable) -> DfTable:
        return DfTable(self.counts + other.counts, self.docs + other.docs)

    def estimate(self, h: np.ndarray) -> np.ndarray:
        cells = _cells(h, self.counts.shape[1])
        return np.min(np.stack([self.counts[d][c] for d, c in enumerate(cells)]), axis=0)

    def limit(self, max_df: float, min_docs: int) -> int:
        return max(int(min_docs), int(max_df * self.docs))

    def common(self, h: np.ndarray, max_df: float, min_docs: int) -> np.ndarray:
        """True for the shingles in more than `limit` documents."""
        if len(h) == 0 or self.docs == 0:
            return np.zeros(len(h), bool)
        return self.estimate(h) > self.limit(max_df, min_docs)


def in_runs(mask: np.ndarray, offsets: np.ndarray, min_run: int) -> np.ndarray:
    """`mask` kept only where it is part of a run of at least `min_run` consecutive True
    shingles inside one document (a template's fixed text is a span of common shingles; a
    common word on its own is not)."""
    if min_run <= 1 or not mask.any():
        return mask
    doc_start = np.zeros(len(mask), bool)
    doc_start[offsets[:-1][offsets[:-1] < len(mask)]] = True
    prev = np.r_[False, mask[:-1]]
    start = mask & (~prev | doc_start)
    run = np.cumsum(start) - 1
    length = np.bincount(run[mask], minlength=int(start.sum()))
    out = np.zeros(len(mask), bool)
    out[mask] = length[run[mask]] >= min_run
    return out


def drop_shingles(h: np.ndarray, offsets: np.ndarray, drop: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, offsets) without the dropped shingles; a document may end up with none."""
    keep = ~drop
    doc = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    per_doc = np.bincount(doc[keep], minlength=len(offsets) - 1)
    return h[keep], np.concatenate([[0], np.cumsum(per_doc)]).astype(np.int64)
