"""Paraphrase check: cosine similarity of row embeddings to benchmark item embeddings.

Reads row texts, returns for each the most similar item and its cosine (ties → lowest item
index). Exact search with blocked numpy matrix products; embeddings are L2-normalized by the
shared `Embedder`, so the dot product is the cosine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_BLOCK = 4096


class ParaphraseIndex:
    """Item embeddings held in memory; `best(texts)` → (item index, cosine) per text."""

    def __init__(self, item_texts: list[str], embedder: Any):
        self.embedder = embedder
        self.matrix = np.ascontiguousarray(embedder.encode(item_texts), dtype=np.float32)

    def best(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if not texts or len(self.matrix) == 0:
            return np.zeros(len(texts), np.int64), np.zeros(len(texts), np.float32)
        queries = np.asarray(self.embedder.encode(texts), dtype=np.float32)
        best_item = np.zeros(len(texts), np.int64)
        best_cos = np.full(len(texts), -np.inf, np.float32)
        for start in range(0, len(self.matrix), _BLOCK):
            sims = queries @ self.matrix[start:start + _BLOCK].T
            arg = sims.argmax(axis=1)
            val = sims[np.arange(len(texts)), arg]
            better = val > best_cos  # strict: an earlier block wins ties
            best_cos[better] = val[better]
            best_item[better] = arg[better] + start
        return best_item, best_cos
