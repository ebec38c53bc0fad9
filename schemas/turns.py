"""Prompt-only examples: an Example whose last message is a user turn has no response yet
(seed prompts, MT-Bench-style multi-turn prompts); synthesis answers it, curation scores
its prompt only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def is_prompt_only(messages: Sequence[Mapping[str, Any]] | None) -> bool:
    """True when the conversation ends with a user turn (it awaits an answer)."""
    return bool(messages) and messages[-1].get("role") == "user"


def prompt_only_mask(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """`is_prompt_only` of every row of an Example batch, vectorized (bool array)."""
    col = batch.column("messages")
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    n = len(col)
    if n == 0:
        return np.zeros(0, bool)
    lengths = col.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = col.offsets.to_numpy()[:-1].astype(np.int64)  # into col.values, slices included
    has = lengths > 0
    last = offsets + np.maximum(lengths, 1) - 1
    roles = col.values.field("role")
    out = np.zeros(n, bool)
    if has.any():
        picked = roles.take(pa.array(last[has]))
        out[has] = np.asarray(pc.equal(picked, "user").fill_null(False)
                              .to_numpy(zero_copy_only=False), bool)
    return out
