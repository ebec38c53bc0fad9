"""Expansion reward on embeddings: reward(c) = mean cos(c, top set) − mean cos(c, bottom set).

Reads candidate, top-set and bottom-set embedding matrices (rows need not be normalized; they
are L2-normalized here). Picks the best and worst candidates with ties broken by tag. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def rewards(candidates: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """(n,) rewards of n candidate embeddings against the two reference sets. An empty
    reference set contributes 0 to its term."""
    cand = _unit(candidates)
    if cand.shape[0] == 0:
        return np.zeros(0)
    pos = (cand @ _unit(top).T).mean(axis=1) if len(top) else np.zeros(cand.shape[0])
    neg = (cand @ _unit(bottom).T).mean(axis=1) if len(bottom) else np.zeros(cand.shape[0])
    return pos - neg


def best_and_worst(tags: Sequence[str], scores: Sequence[float],
                   decimals: int = 6) -> tuple[int, int]:
    """Indices of the best and worst candidate. Scores are rounded to `decimals` first so
    float noise across runners never flips a choice; ties go to the smaller tag for the best
    and to the larger tag for the worst (so best != worst whenever two distinct tags exist)."""
    if not tags:
        raise ValueError("no candidates")
    rounded = [round(float(s), decimals) for s in scores]
    order = sorted(range(len(tags)), key=lambda i: (-rounded[i], tags[i]))
    return order[0], order[-1]
