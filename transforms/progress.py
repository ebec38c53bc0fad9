"""Plain progress lines from workers: `[refinery] quality: 4,000 in, 3,812 out (6.1 s)`.

Stages call `tick(stage, ...)` as batches pass; each worker process prints at most one line per
stage every `REFINERY_PROGRESS_S` seconds (default 10; 0 turns lines off) to stderr, and nothing
else: no carriage returns or cursor codes, so a terminal, a pipe and a CI log read the same.
Counts are per worker process (a run on several workers prints one line per worker).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field


@dataclass
class _StageProgress:
    started: float = field(default_factory=lambda: time.monotonic())  # first batch ended
    last_print: float = field(default_factory=lambda: time.monotonic())  # first line: 1 interval
    counts: dict[str, int] = field(default_factory=dict)


_LOCK = threading.Lock()
_STAGES: dict[str, _StageProgress] = {}


def interval_s() -> float:
    try:
        return float(os.environ.get("REFINERY_PROGRESS_S", "10"))
    except ValueError:
        return 10.0


def format_line(stage: str, counts: dict[str, int], elapsed: float, unit_rate: str | None) -> str:
    parts = [f"{n:,} {name}" for name, n in counts.items()]
    rate = ""
    if unit_rate and elapsed > 0 and unit_rate in counts:
        rate = f", {counts[unit_rate] / elapsed:.1f} {unit_rate}/s"
    return f"[refinery] {stage}: {', '.join(parts)} ({elapsed:.1f} s{rate})"


def tick(stage: str, rate_of: str | None = None, **increments: int) -> None:
    """Add `increments` (e.g. in=2000, out=1900) to the stage's counts; print a line when the
    stage's interval has passed. `rate_of` names the count shown as a rate."""
    every = interval_s()
    with _LOCK:
        state = _STAGES.setdefault(stage, _StageProgress())
        for name, n in increments.items():
            state.counts[name] = state.counts.get(name, 0) + int(n)
        now = time.monotonic()
        if every <= 0 or now - state.last_print < every:
            return
        state.last_print = now
        line = format_line(stage, state.counts, now - state.started, rate_of)
    print(line, file=sys.stderr, flush=True)
