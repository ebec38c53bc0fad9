"""One asyncio event loop per process, running in a daemon thread.

Backends that speak HTTP keep their client, connection pool and concurrency limit on this loop
for the life of the worker process, so requests stay in flight across Beam batches and bundles.
Synchronous code hands it coroutines with `submit` and waits on the returned futures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_LOCK = threading.Lock()
_LOOP: tuple[int, asyncio.AbstractEventLoop] | None = None


def shared_loop() -> asyncio.AbstractEventLoop:
    """The process's loop, started on first use (again in a forked child)."""
    global _LOOP
    with _LOCK:
        if _LOOP is None or _LOOP[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="refinery-llm-loop",
                             daemon=True).start()
            _LOOP = (os.getpid(), loop)
        return _LOOP[1]


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Run `coro` on the process's loop; the future resolves with its result."""
    return asyncio.run_coroutine_threadsafe(coro, shared_loop())
