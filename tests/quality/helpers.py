"""Builders shared by the quality tests."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from schemas.records import example_row, examples_to_batch
from transforms.quality.signals import compute_signals


def conv(prompt: str | None, response: str | None, rid: str = "r0") -> dict[str, Any]:
    msgs = []
    if prompt is not None:
        msgs.append({"role": "user", "content": prompt})
    if response is not None:
        msgs.append({"role": "assistant", "content": response})
    return example_row(rid, msgs)


def batch_of(pairs: list[tuple[str | None, str | None]]) -> pa.RecordBatch:
    return examples_to_batch([conv(p, r, f"r{i:04d}") for i, (p, r) in enumerate(pairs)])


def signals_of(prompt: str | None, response: str | None) -> dict[str, Any]:
    """Vectorized signals of one conversation, as a plain dict."""
    arrays = compute_signals(batch_of([(prompt, response)]))
    return {k: v[0].as_py() for k, v in arrays.items()}
