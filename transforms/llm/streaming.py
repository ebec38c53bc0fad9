"""`StreamInference`: Jobs → PredictionResult(job, Outcome), with requests kept in flight.

RunInference calls a backend one batch at a time, so an HTTP server idles at the tail of every
batch and never sees more than one batch's requests. For backends that speak HTTP (openai) this
DoFn instead hands each job to the process's event loop as it arrives (`agenerate_validated`:
transport retries, schema validation and re-generation, per request), keeps up to
`2 × concurrency` jobs queued or on the wire, and emits each result as soon as it is done. How
many are on the wire is the backend's AIMD limit (at most `concurrency`, fewer while the server
answers 429/503). finish_bundle waits for the rest. Every `batch_size` finished jobs are counted
and cached as one group (`record_outcomes`, like a RunInference batch); generate_ms is the
bundle's wall time from its first job to its last answer.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import PredictionResult
from apache_beam.utils.windowed_value import WindowedValue

from transforms.base import METRICS_NAMESPACE
from transforms.llm._loop import submit
from transforms.llm.backend_base import Backend
from transforms.llm.handler import ChatModelHandler, Job, record_outcomes
from transforms.llm.structured import Outcome, agenerate_validated

_LOCK = threading.Lock()
_BACKENDS: dict[str, Backend] = {}  # config (JSON) → backend, one per process


def shared_backend(handler: ChatModelHandler) -> Backend:
    """The handler's backend, one per process and config (so steps that call the same server
    share its connection pool and concurrency limit); a test's backend_factory makes its own."""
    if handler.backend_factory is not None:
        return handler.load_model()
    key = handler.config.model_dump_json()
    with _LOCK:
        if key not in _BACKENDS:
            _BACKENDS[key] = handler.load_model()
        return _BACKENDS[key]


class StreamInference(beam.DoFn):
    def __init__(self, handler: ChatModelHandler):
        self._handler = handler

    def setup(self) -> None:
        self._backend = shared_backend(self._handler)

    def start_bundle(self) -> None:
        self._pending: dict[int, tuple[Job, Any, Any]] = {}
        self._finished: queue.SimpleQueue[tuple[int, Future[Outcome]]] = queue.SimpleQueue()
        self._group: list[tuple[Job, Outcome]] = []
        self._started: float | None = None
        self._completion = 0
        self._next_id = 0

    def process(self, job: Job, timestamp: Any = beam.DoFn.TimestampParam,
                window: Any = beam.DoFn.WindowParam) -> Iterable[WindowedValue]:
        cfg = self._handler.config
        if self._started is None:
            self._started = time.perf_counter()
        job_id, self._next_id = self._next_id, self._next_id + 1
        self._pending[job_id] = (job, timestamp, window)
        future = submit(agenerate_validated(self._backend, job.request, cfg.retries,
                                            cfg.retry_temperature,
                                            model_id=self._handler.model_id))
        future.add_done_callback(lambda f, i=job_id: self._finished.put((i, f)))
        yield from self._collect(wait_for=len(self._pending) - 2 * cfg.concurrency + 1)

    def finish_bundle(self) -> Iterable[WindowedValue]:
        yield from self._collect(wait_for=len(self._pending))
        self._record()
        if self._started is not None:
            elapsed = time.perf_counter() - self._started
            ns = f"{METRICS_NAMESPACE}.{self._handler.stage}"
            beam.metrics.Metrics.counter(ns, "generate_ms").inc(int(elapsed * 1000))
            if elapsed > 0:
                beam.metrics.Metrics.gauge(ns, "tokens_per_s").set(
                    int(self._completion / elapsed))

    def _collect(self, wait_for: int) -> Iterable[WindowedValue]:
        """Results of finished jobs: at least `wait_for` of them (blocking), then every one
        already done."""
        while self._pending:
            try:
                job_id, future = self._finished.get(block=wait_for > 0)
            except queue.Empty:
                break
            wait_for -= 1
            job, timestamp, window = self._pending.pop(job_id)
            outcome = future.result()  # a bug in the serving layer fails the bundle (retried)
            self._group.append((job, outcome))
            if len(self._group) >= self._handler.config.batch_size:
                self._record()
            yield WindowedValue(PredictionResult(job, outcome, self._handler.model_id),
                                timestamp, (window,))

    def _record(self) -> None:
        if self._group:
            jobs, outcomes = zip(*self._group, strict=True)
            self._completion += record_outcomes(self._handler.stage, self._handler.cache_dir,
                                                jobs, outcomes, None)
            self._group = []


def is_streaming(config: Any) -> bool:
    """Whether `Generate` streams jobs (HTTP backends) instead of running RunInference."""
    return getattr(config, "backend", None) == "openai"

