"""Run a DoFn's pure per-element work on a few threads, so one bundle uses more than one core.

The DirectRunner's default mode runs every bundle on one thread; the heavy parts of ingest
and emit (pyarrow.json parsing, Arrow compute, RE2, sorting, zstd Parquet writing) release
the GIL, so two elements converted at once overlap when a core is idle. `InFlight` keeps at
most `threads` elements in flight, hands results back in submission order (the same order as
one thread) with each element's timestamp and window, and finishes the rest at `drain`
(finish_bundle).
The work function must be pure: Beam metrics and outputs stay on the bundle's thread.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

MAX_THREADS = 2  # each thread holds one element's data (a split, a shard) in memory
THREADS_ENV = "REFINERY_IO_THREADS"  # a fixed count instead of the load rule (benchmarks)


def thread_count() -> int:
    """Threads per DoFn instance: up to MAX_THREADS while the machine has a core to spare
    (1-minute load average under CPUs - 0.5), else 1: on a busy machine the second thread
    only adds CPU time (bench/README.md, ingest_emit). REFINERY_IO_THREADS overrides."""
    if os.environ.get(THREADS_ENV, "").isdigit():
        return max(1, int(os.environ[THREADS_ENV]))
    cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        load = 0.0
    return max(1, min(MAX_THREADS, cpus)) if load < cpus - 0.5 else 1


class InFlight:
    """`fn(element)` on up to `threads` threads; yields (result, timestamp, window) in the
    order elements were put."""

    def __init__(self, fn: Callable[[Any], Any], threads: int | None = None):
        self._fn = fn
        self._threads = threads or thread_count()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[tuple[Future, Any, Any]] = deque()

    def put(self, element: Any, timestamp: Any, window: Any) -> Iterator[tuple[Any, Any, Any]]:
        """Start `element`; yields the results that are ready (waits while too many run)."""
        if self._threads == 1:
            yield self._fn(element), timestamp, window
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="refinery-io")
        self._pending.append((self._pool.submit(self._fn, element), timestamp, window))
        while self._pending and (len(self._pending) > self._threads
                                 or self._pending[0][0].done()):
            yield self._pop()

    def drain(self) -> Iterator[tuple[Any, Any, Any]]:
        """Every result still pending, in order (an element's error is raised here)."""
        while self._pending:
            yield self._pop()

    def reset(self) -> None:
        """Forget pending work (a bundle that failed is retried from its start)."""
        for future, _, _ in self._pending:
            future.cancel()
        self._pending.clear()

    def close(self) -> None:
        self.reset()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _pop(self) -> tuple[Any, Any, Any]:
        future, timestamp, window = self._pending.popleft()
        return future.result(), timestamp, window
