"""Expansion reward on embeddings: reward(c) = mean cos(c, top set) − mean cos(c, bottom set),
and when a best/worst pair carries a real preference signal. Pure numpy.
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


def best_and_worst(scores: Sequence[float], decimals: int = 6) -> tuple[int, int]:
    """Indices of the best and worst candidate. Scores are rounded to `decimals` first so
    float noise across runners never flips a choice; ties go to the earlier sample for the
    best and to the later one for the worst."""
    if not len(scores):
        raise ValueError("no candidates")
    rounded = [round(float(s), decimals) for s in scores]
    order = sorted(range(len(rounded)), key=lambda i: (-rounded[i], i))
    return order[0], order[-1]


def pair_skip_reason(valid: int, has_references: bool, margin: float,
                     min_margin: float | None, decimals: int = 6) -> str | None:
    """Why best vs worst would be no preference signal, or None (write the pair):
    fewer than 2 valid candidates, an empty top or bottom reference set (every reward is 0),
    equal rewards, or a margin below `min_margin` (the last two only when it is set; None =
    the paper's rule: any 2 parseable candidates)."""
    if valid < 2:
        return "single_candidate"
    if not has_references:
        return "no_reference_sets"
    if min_margin is None:
        return None
    margin = round(float(margin), decimals)
    if margin == 0:
        return "reward_tie"
    if margin < min_margin:
        return "margin_below_min"
    return None
