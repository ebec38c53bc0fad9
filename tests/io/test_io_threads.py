"""InFlight (transforms/io/_threads.py): results in put order with their element's timestamp
and window, at most `threads` elements in flight, errors raised on the bundle's thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from transforms.io import _threads
from transforms.io._threads import InFlight


def _slow_square(x: int) -> tuple[int, str]:
    time.sleep(0.02 * (x % 3))  # later elements often finish first
    return x * x, threading.current_thread().name


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_results_come_back_in_put_order_with_their_timestamp_and_window(threads: int) -> None:
    flight = InFlight(_slow_square, threads)
    out = []
    for x in range(10):
        out += list(flight.put(x, f"ts{x}", f"w{x}"))
        assert len(flight._pending) <= threads
    out += list(flight.drain())
    flight.close()
    assert [(r[0], ts, w) for r, ts, w in out] == [(x * x, f"ts{x}", f"w{x}") for x in range(10)]
    names = {r[1] for r, _, _ in out}
    assert (names == {threading.current_thread().name}) == (threads == 1)


def test_an_error_is_raised_on_the_bundle_thread_and_reset_forgets_the_rest() -> None:
    def fail_on_three(x: int) -> int:
        if x == 3:
            raise ValueError("bad element 3")
        return x

    flight = InFlight(fail_on_three, 2)
    got = []
    with pytest.raises(ValueError, match="bad element 3"):
        for x in range(6):
            got += [r for r, _, _ in flight.put(x, None, None)]
        got += [r for r, _, _ in flight.drain()]
    assert got == [0, 1, 2]
    flight.reset()  # a retried bundle starts from nothing pending
    assert list(flight.drain()) == []
    assert [r for r, _, _ in flight.put(7, None, None)] + [
        r for r, _, _ in flight.drain()] == [7]
    flight.close()


def test_thread_count_follows_the_load_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_threads.os, "cpu_count", lambda: 2)
    monkeypatch.delenv(_threads.THREADS_ENV, raising=False)
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (0.9, 0.0, 0.0))
    assert _threads.thread_count() == 2  # our own run is the only load: a core is idle
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (6.0, 0.0, 0.0))
    assert _threads.thread_count() == 1
    monkeypatch.setenv(_threads.THREADS_ENV, "2")
    assert _threads.thread_count() == 2


def test_an_ingest_only_run_writes_the_same_bytes_on_one_or_two_threads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.ingest_emit import make_records
    from pipeline.config import load_config
    from pipeline.run import run_config

    src = tmp_path / "in"
    src.mkdir()
    paths = [str(p) for p in make_records(src, 600, seed=3)]
    outputs = []
    for threads in ("1", "2"):
        monkeypatch.setenv(_threads.THREADS_ENV, threads)
        cfg = load_config(None, ["ingest.split_bytes=65536", "ingest.batch_rows=50",
                                 "emit.num_shards=3"], inputs=paths, out=str(tmp_path / threads))
        run = Path(run_config(cfg).run_dir)
        outputs.append({str(f.relative_to(run)): f.read_bytes() for f in sorted(run.rglob("*"))
                        if f.is_file() and f.suffix in (".parquet", ".jsonl")})
    assert len(outputs[0]) == 7  # 3 sft shards, 3 (empty) preference shards, the dead letter
    assert outputs[0] == outputs[1]
