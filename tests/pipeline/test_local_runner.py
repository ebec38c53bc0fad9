"""pipeline_options turns off the local runner's time-based input flush, which loses writes.

Beam's TimeBasedBufferingClosableOutputStream flushes from a timer thread: it reads the
buffer, calls the send callback, then clears the buffer. A write made while the callback
runs (the runner's send queue is full when a bundle's input is large) is cleared unsent.
The first test reproduces that race on Beam's own class with a slow callback; the second
checks that after pipeline_options the runner's streams are size-flushed and lose nothing
under the same writes.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.runners.direct import transform_evaluator
from apache_beam.runners.portability.fn_api_runner import worker_handlers
from apache_beam.runners.worker import data_plane
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate

from pipeline.config import BeamConfig
from pipeline.runner.local_runner import malloc_returns_freed_memory, remember_dofn_specs
from pipeline.runner.options import pipeline_options

CHUNK = b"x" * 1024


def _sent_while_writing(time_limit_ms: int, seconds: float = 0.3) -> tuple[int, int]:
    """(bytes written, bytes that reached the callbacks) for a stream whose send callback
    takes 20 ms, written from this thread for `seconds`, as the runner writes bundle input."""
    sent = []
    lock = threading.Lock()

    def slow_send(data: bytes) -> None:
        time.sleep(0.02)  # a full send queue
        with lock:
            sent.append(len(data))

    stream = data_plane.ClosableOutputStream.create(slow_send, slow_send, time_limit_ms)
    written, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        stream.write(CHUNK)
        written += len(CHUNK)
        time.sleep(0.0005)
    stream.close()
    return written, sum(sent)


def test_beams_time_based_flush_drops_writes_made_during_a_slow_send() -> None:
    written, sent = _sent_while_writing(time_limit_ms=5)
    assert sent < written  # the race the workaround avoids (if this fails, Beam fixed it)


def test_pipeline_options_make_the_runner_data_plane_size_flushed_and_lossless(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_handlers, "DATA_BUFFER_TIME_LIMIT_MS", 1000)  # Beam's default
    pipeline_options(BeamConfig(direct_running_mode="multi_processing", direct_num_workers=2))
    assert worker_handlers.DATA_BUFFER_TIME_LIMIT_MS == 0
    # the runner's data channel to a worker, as worker_handlers.GrpcServer builds it
    channel = data_plane.BeamFnDataServicer(
        worker_handlers.DATA_BUFFER_TIME_LIMIT_MS).get_conn_by_worker_id("worker_1")
    stream = channel.output_stream("bundle_1", "read")
    assert not isinstance(stream, data_plane.TimeBasedBufferingClosableOutputStream)
    written, sent = _sent_while_writing(worker_handlers.DATA_BUFFER_TIME_LIMIT_MS)
    assert sent == written


def test_glibc_takes_the_malloc_settings() -> None:
    assert malloc_returns_freed_memory()  # glibc (Linux) accepts each mallopt parameter


@pytest.mark.parametrize("chosen", [None, "system"])
def test_arrow_pool_is_jemalloc_unless_the_environment_chooses(chosen: str | None) -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if chosen:
        env["ARROW_DEFAULT_MEMORY_POOL"] = chosen
    code = ("import os, pyarrow as pa\n"
            "from pipeline.runner.local_runner import arrow_reuses_freed_memory as switch\n"
            "print(switch(), pa.default_memory_pool().backend_name,"
            " os.environ['ARROW_DEFAULT_MEMORY_POOL'])")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2]).stdout.split()
    assert out == (["False", chosen, chosen] if chosen else ["True", "jemalloc", "jemalloc"])


_REUSE = """
import resource, sys, threading
import numpy as np
import pipeline  # sets Arrow's jemalloc options before pyarrow is loaded
import pyarrow as pa
from pipeline.runner.local_runner import arrow_reuses_freed_memory
assert arrow_reuses_freed_memory()
def faults(): return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
def fill():  # a 64 MiB Arrow buffer, every page written, then freed
    buf = pa.allocate_buffer(64 << 20); np.frombuffer(buf, np.uint8)[:] = 1
before = faults()
fill()
fresh = faults() - before  # the faults of a buffer on pages never touched before
before = faults()
for _ in range(4): fill()
main = faults() - before
out = []
def other(): before = faults(); fill(); out.append(faults() - before)
t = threading.Thread(target=other); t.start(); t.join()
print(fresh, main, out[0])
"""


@pytest.mark.parametrize("conf", [None, ""])
def test_arrow_buffers_reuse_freed_pages_across_threads(conf: str | None) -> None:
    """With the options pipeline/__init__.py gives Arrow's jemalloc, a freed 64 MiB buffer's
    pages serve the next buffer, in the same thread and in another; with the options emptied
    (jemalloc as Arrow configures it) each buffer faults as a fresh one does. Counted against
    the process's own first buffer, so page size and huge pages do not matter."""
    import subprocess

    env = {k: v for k, v in os.environ.items()
           if k not in ("ARROW_DEFAULT_MEMORY_POOL", "JE_ARROW_MALLOC_CONF")}
    if conf is not None:
        env["JE_ARROW_MALLOC_CONF"] = conf
    out = subprocess.run([sys.executable, "-c", _REUSE], env=env, capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[2])
    fresh, same_thread, other_thread = map(int, out.stdout.split())
    assert fresh > 0
    if conf is None:  # four buffers in one thread, then one in another
        assert same_thread < fresh and other_thread < fresh // 4
    else:
        assert same_thread > 3 * fresh and other_thread > fresh // 2


def test_only_pipelines_whose_shuffles_carry_rows_get_the_malloc_settings(monkeypatch) -> None:
    from pipeline.config import load_config
    from pipeline.run import _stage_names
    from pipeline.runner import local_runner

    calls: list[bool] = []
    monkeypatch.setattr(local_runner, "malloc_returns_freed_memory", lambda: calls.append(True))
    local_runner.prepare_local_runner(shuffles_rows=False)
    assert calls == []
    pipeline_options(BeamConfig(), shuffles_rows=True)
    assert calls == [True]
    assert _stage_names(load_config(None, [], inputs=["x.jsonl"], out="o")) == []
    assert _stage_names(load_config(None, ["stages.dedup.enabled=true"], inputs=["x.jsonl"],
                                    out="o")) == ["dedup"]


class _Stateful(beam.DoFn):
    COUNT = userstate.CombiningValueStateSpec("count", sum)

    def process(self, kv, count=beam.DoFn.StateParam(COUNT)):  # noqa: B008 (Beam's idiom)
        count.add(1)
        yield kv


def test_remembered_dofn_specs_match_beams_answer_and_are_asked_once(monkeypatch) -> None:
    asked = []
    assert userstate.get_dofn_specs._refinery_remembers  # installed by the session fixture
    original = userstate.get_dofn_specs.__wrapped__

    def counting(dofn):
        asked.append(dofn)
        return original(dofn)

    monkeypatch.setattr(userstate, "get_dofn_specs", counting)
    monkeypatch.setattr(transform_evaluator, "get_dofn_specs", counting)
    remember_dofn_specs()
    dofn, plain = _Stateful(), beam.DoFn()
    first = userstate.get_dofn_specs(dofn)
    assert first == original(dofn) and len(first[0]) == 1
    first[0].clear()  # a caller's set is its own
    assert userstate.get_dofn_specs(dofn) == original(dofn)
    assert transform_evaluator.get_dofn_specs(plain) == (set(), set())
    assert asked == [dofn, plain]  # each object asked Beam once
    remember_dofn_specs()  # idempotent: no second wrapper
    assert userstate.get_dofn_specs(dofn) == original(dofn) and asked == [dofn, plain]
    with beam.Pipeline() as p:  # a stateful pipeline still runs with the wrapper
        got = p | beam.Create([("a", 1), ("a", 2)]) | beam.ParDo(_Stateful())
        assert_that(got, equal_to([("a", 1), ("a", 2)]))
