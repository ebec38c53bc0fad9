"""The run's deadline for model calls (`llm.max_run_s`): set by the driver when a run starts,
read by every backend call. It travels as an environment variable holding the absolute time,
so worker processes started by the runner see the same deadline as the driver."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

ENV = "REFINERY_LLM_DEADLINE"
PASSED = "max_run_s: the run's time for model calls is over (llm.max_run_s)"


def remaining() -> float | None:
    """Seconds left before the run's deadline (at least 0), or None when there is none."""
    value = os.environ.get(ENV)
    if not value:
        return None
    try:
        return max(0.0, float(value) - time.time())
    except ValueError:
        return None


def passed() -> bool:
    left = remaining()
    return left is not None and left <= 0


@contextlib.contextmanager
def run_deadline(max_run_s: float | None) -> Iterator[None]:
    """Set the deadline `max_run_s` from now for the block (nothing when None)."""
    before = os.environ.get(ENV)
    if max_run_s is not None:
        os.environ[ENV] = repr(time.time() + max_run_s)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before
