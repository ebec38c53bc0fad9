"""Plain progress lines from workers: `[refinery] quality: 4,000 in, 3,812 out (6.1 s, 650.0 in/s)`.

Stages call `tick(stage, ...)` as batches pass and wrap long calls (a model batch, an
embedding pass) in `working(stage, what)`. Each worker process prints at most one line per
stage every `REFINERY_PROGRESS_S` seconds (default 10; 0 turns lines off) to stderr: when a
tick finds the interval passed, and, from a daemon thread, while a `working` block runs longer
than the interval (`working on a batch of 8 requests for 24 s, ~12 s left`: the time left is
what earlier blocks of the stage took on average), and at the next tick after such a block.
While the driver runs a pipeline (`running()`), an interval with no line at all gets one:
`[refinery] run: pipeline running for 45 s; so far quality 66 in, 65 out`. No carriage returns or cursor codes, so a
terminal, a pipe and a CI log read the same. Counts are per worker process.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class _StageProgress:
    started: float = field(default_factory=lambda: time.monotonic())  # first batch ended
    last_print: float = field(default_factory=lambda: time.monotonic())  # first line: 1 interval
    counts: dict[str, int] = field(default_factory=dict)
    busy: dict[int, tuple[float, str, bool]] = field(default_factory=dict)  # id → start, what, eta
    done_s: float = 0.0  # time spent in finished `working` blocks
    done_n: int = 0
    owed: bool = False  # a line said "working on ...": the next tick says how it ended


_LOCK = threading.Lock()
_STAGES: dict[str, _StageProgress] = {}
_BLOCK_IDS = iter(range(1 << 62))
_BEAT: list[threading.Thread] = []
_LAST = [0.0]  # when this process last printed a line
_RUN: list[tuple[float, str]] = []  # (start, what) of the driver's work (see `running`)


def interval_s() -> float:
    try:
        return float(os.environ.get("REFINERY_PROGRESS_S", "10"))
    except ValueError:
        return 10.0


def format_line(stage: str, counts: dict[str, int], elapsed: float, unit_rate: str | None,
                working: str = "") -> str:
    parts = [f"{n:,} {name}" for name, n in counts.items()]
    rate = ""
    if unit_rate and elapsed > 0 and counts.get(unit_rate):
        rate = f", {counts[unit_rate] / elapsed:.1f} {unit_rate}/s"
    done = ", ".join(parts) if parts else "started"
    return f"[refinery] {stage}: {done} ({elapsed:.1f} s{rate}){working}"


def _working_text(state: _StageProgress, now: float) -> str:
    if not state.busy:
        return ""
    start, what, eta = min(state.busy.values())
    busy_for = now - start
    text = f"; working on {what or 'a batch'} for {busy_for:.0f} s"
    if eta and state.done_n:
        left = state.done_s / state.done_n - busy_for
        text += f", ~{left:.0f} s left" if left >= 1 else ", taking longer than earlier ones"
    return text


def _rate_unit(state: _StageProgress) -> str | None:
    return next(iter(state.counts), None)


def tick(stage: str, rate_of: str | None = None, **increments: int) -> None:
    """Add `increments` (e.g. in=2000, out=1900) to the stage's counts; print a line when the
    stage's interval has passed. `rate_of` names the count shown as a rate."""
    every = interval_s()
    with _LOCK:
        state = _STAGES.setdefault(stage, _StageProgress())
        for name, n in increments.items():
            state.counts[name] = state.counts.get(name, 0) + int(n)
        now = time.monotonic()
        owed = state.owed and not state.busy
        if every <= 0 or (now - state.last_print < every and not owed):
            return
        state.last_print, state.owed, _LAST[0] = now, False, now
        line = format_line(stage, state.counts, now - state.started, rate_of,
                           _working_text(state, now))
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def working(stage: str, what: str = "", eta: bool = True) -> Iterator[None]:
    """Mark a long call of `stage` (e.g. `what="a batch of 8 requests"`): while it runs longer
    than the interval, a line says so every interval (with the time left when `eta` and
    earlier calls give an average)."""
    if interval_s() > 0:
        _start_beat()
    with _LOCK:
        state = _STAGES.setdefault(stage, _StageProgress())
        block = next(_BLOCK_IDS)
        state.busy[block] = (time.monotonic(), what, eta)
    try:
        yield
    finally:
        with _LOCK:
            start, _, timed = state.busy.pop(block)
            if timed:  # a model load is not a batch: it would skew the time left
                state.done_s += time.monotonic() - start
                state.done_n += 1


def beat_lines(now: float | None = None) -> list[str]:
    """The lines due now for stages inside a `working` block (their interval has passed since
    their last line); marks them printed."""
    every = interval_s()
    if every <= 0:
        return []
    lines = []
    with _LOCK:
        now = time.monotonic() if now is None else now
        for stage, state in _STAGES.items():
            if state.busy and now - state.last_print >= every:
                state.last_print, state.owed = now, True
                lines.append(format_line(stage, state.counts, now - state.started,
                                         _rate_unit(state), _working_text(state, now)))
        if _RUN and not lines and now - max(_LAST[0], _RUN[0][0]) >= every:
            done = "; ".join(f"{stage} " + ", ".join(f"{n:,} {k}" for k, n in st.counts.items())
                             for stage, st in _STAGES.items() if st.counts)
            lines.append(f"[refinery] run: {_RUN[0][1]} for {now - _RUN[0][0]:.0f} s"
                         + (f"; so far {done}" if done else ""))
        if lines:
            _LAST[0] = now
    return lines


@contextlib.contextmanager
def running(what: str = "pipeline running") -> Iterator[None]:
    """The driver is at work (its pipeline runs, it writes the report): when nothing has
    printed for an interval, a line says what and for how long, and what the stages in this
    process have done so far."""
    if interval_s() > 0:
        _start_beat()
    with _LOCK:
        _RUN[:] = [(time.monotonic(), what)]
    try:
        yield
    finally:
        with _LOCK:
            _RUN.clear()


def _beat() -> None:
    while True:
        time.sleep(min(1.0, max(interval_s(), 0.1)))
        for line in beat_lines():
            print(line, file=sys.stderr, flush=True)


def _start_beat() -> None:
    with _LOCK:
        if _BEAT and _BEAT[0].is_alive():
            return
        thread = threading.Thread(target=_beat, name="refinery-progress", daemon=True)
        _BEAT[:] = [thread]
    thread.start()
