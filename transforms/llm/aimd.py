"""An adaptive concurrency limit for a shared server (AIMD, as TCP congestion control).

`AdaptiveLimit(maximum)` lets at most `limit` coroutines hold it. A success adds 1/limit
(so the limit grows by about one per round of requests, up to `maximum`); an overload answer
(429, 503) halves it, at least to `minimum`, once per round: overloads reported by requests
that started before the last decrease do not cut again (they saw the old limit).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass


@dataclass
class Ticket:
    """What one holder of the limit carries: the epoch it started in (see `on_overload`)."""

    epoch: int


class AdaptiveLimit:
    """Waiters queue first in, first out; a freed slot is handed to the next waiter directly
    (one wake-up per release, however many wait)."""

    def __init__(self, maximum: int, minimum: int = 1):
        if maximum < 1 or not 1 <= minimum <= maximum:
            raise ValueError(f"need 1 <= minimum <= maximum, got {minimum}, {maximum}")
        self.maximum, self.minimum = maximum, minimum
        self.limit = float(maximum)
        self.in_flight = 0
        self.decreases = 0
        self._epoch = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> Ticket:
        if not self._waiters and self.in_flight < int(self.limit):
            self.in_flight += 1
            return Ticket(self._epoch)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # `_wake` counted us in before resolving it
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # a slot was handed over just as we were cancelled
            else:
                self._waiters.remove(waiter)
            raise
        return Ticket(self._epoch)

    def release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def on_success(self) -> None:
        self.limit = min(float(self.maximum), self.limit + 1.0 / max(1.0, self.limit))
        self._wake()

    def on_overload(self, ticket: Ticket) -> None:
        if ticket.epoch != self._epoch:  # started before the last decrease: already counted
            return
        self._epoch += 1
        self.decreases += 1
        self.limit = max(float(self.minimum), self.limit / 2)
