"""The composite quality score: a weighted mean of signals scaled to [0, 1].

Reads the meta fields named by the terms; returns `quality_score` (float64). Per row, terms
whose signal is absent or null are left out and the weights renormalized; a row with no usable
term scores null. Dedup keeps the best-scored row of a cluster; selection ranks by it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from transforms.quality.config import CompositeTerm
from transforms.quality.filters import OPTIONAL_SIGNALS, meta_frame


def scale(values: np.ndarray, term: CompositeTerm) -> np.ndarray:
    """One term's values mapped to [0, 1] (NaN stays NaN)."""
    x, lo, hi = values.astype(np.float64), term.lo, term.hi
    if term.log:
        x, lo, hi = np.log1p(np.maximum(x, 0.0)), np.log1p(max(lo, 0.0)), np.log1p(max(hi, 0.0))
    span = hi - lo
    s = np.where(x >= hi, 1.0, 0.0) if span == 0 else np.clip((x - lo) / span, 0.0, 1.0)
    s = np.where(np.isnan(x), np.nan, s)
    return 1.0 - s if term.invert else s


def composite_score(batch: pa.RecordBatch, terms: Sequence[CompositeTerm]) -> pa.Array:
    """meta.quality_score for every row of `batch`."""
    n = batch.num_rows
    frame = meta_frame(batch, [t.signal for t in terms])
    num = np.zeros(n)
    den = np.zeros(n)
    for term in terms:
        if term.signal not in frame.columns:
            if term.signal not in OPTIONAL_SIGNALS:
                raise ValueError(f"composite term on unknown signal {term.signal!r}")
            continue
        col = frame[term.signal].cast(float).fill_null(np.nan).to_numpy()
        s = scale(col, term)
        ok = ~np.isnan(s)
        num[ok] += term.weight * s[ok]
        den[ok] += term.weight
    score = np.full(n, np.nan)
    np.divide(num, den, out=score, where=den > 0)
    return pa.array(score, pa.float64(), from_pandas=True)
