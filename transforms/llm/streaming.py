"""`StreamInference`: Jobs → PredictionResult(job, Outcome), with requests kept in flight.

RunInference calls a backend one batch at a time, so an HTTP server idles at the tail of every
batch and never sees more than one batch's requests. For backends that speak HTTP (openai) this
DoFn instead starts each job on its own asyncio event loop as it arrives (`agenerate_validated`:
transport retries, schema validation and re-generation, per request), keeps up to
`2 × concurrency` jobs queued or on the wire, and emits each result as soon as it is done. How
many are on the wire is the backend's AIMD limit (at most `concurrency`, fewer while the server
answers 429/503). The loop runs in the DoFn's own thread, a little at each element (and until a
job finishes when the queue is full), so no second thread competes for the GIL on a busy
machine; finish_bundle runs it until every job is done. Every `batch_size` finished jobs are
counted and cached as one group (`record_outcomes`, like a RunInference batch); generate_ms is
the bundle's wall time from its first job to its last answer.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import PredictionResult
from apache_beam.utils.windowed_value import WindowedValue

from transforms import progress
from transforms.base import METRICS_NAMESPACE
from transforms.llm.handler import ChatModelHandler, Job, record_outcomes, secret_envs
from transforms.llm.structured import Outcome, agenerate_validated


def is_streaming(config: Any) -> bool:
    """Whether `Generate` streams jobs (HTTP backends) instead of running RunInference."""
    return getattr(config, "backend", None) == "openai"


class StreamInference(beam.DoFn):
    def __init__(self, handler: ChatModelHandler):
        self._handler = handler

    def setup(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._backend = self._handler.load_model()  # its client and limit live on this loop

    def teardown(self) -> None:
        aclose = getattr(self._backend, "aclose", None)
        if aclose is not None:
            self._loop.run_until_complete(aclose())
        self._loop.close()

    def start_bundle(self) -> None:
        self._pending: dict[asyncio.Task[Outcome], tuple[Job, Any, Any]] = {}
        self._done: deque[asyncio.Task[Outcome]] = deque()
        self._wake: asyncio.Future[None] | None = None
        self._group: list[tuple[Job, Outcome]] = []
        self._started: float | None = None
        self._completion = 0

    def _finished(self, task: asyncio.Task[Outcome]) -> None:
        self._done.append(task)
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def process(self, job: Job, timestamp: Any = beam.DoFn.TimestampParam,
                window: Any = beam.DoFn.WindowParam) -> Iterable[WindowedValue]:
        cfg = self._handler.config
        if self._started is None:
            self._started = time.perf_counter()
        task = self._loop.create_task(agenerate_validated(
            self._backend, job.request, cfg.retries, cfg.retry_temperature,
            model_id=self._handler.model_id))
        task.add_done_callback(self._finished)
        self._pending[task] = (job, timestamp, window)
        self._drive(block=len(self._pending) >= 2 * cfg.concurrency)
        yield from self._harvest()

    def finish_bundle(self) -> Iterable[WindowedValue]:
        while self._pending:
            self._drive(block=True)
            yield from self._harvest()
        self._record()
        if self._started is not None:
            elapsed = time.perf_counter() - self._started
            ns = f"{METRICS_NAMESPACE}.{self._handler.stage}"
            beam.metrics.Metrics.counter(ns, "generate_ms").inc(int(elapsed * 1000))
            if elapsed > 0:
                beam.metrics.Metrics.gauge(ns, "tokens_per_s").set(
                    int(self._completion / elapsed))

    def _drive(self, block: bool) -> None:
        """Run the loop: until some job finishes (`block`), else one pass over what is ready
        (send new requests, read answers that arrived)."""
        if block and not self._done:
            self._wake = self._loop.create_future()
            with progress.working(f"llm {self._handler.stage}",
                                  f"{len(self._pending)} requests in flight", eta=False):
                self._loop.run_until_complete(self._wake)
            self._wake = None
        else:
            self._loop.run_until_complete(asyncio.sleep(0))

    def _harvest(self) -> Iterable[WindowedValue]:
        while self._done:
            task = self._done.popleft()
            job, timestamp, window = self._pending.pop(task)
            outcome = task.result()  # a bug in the serving layer fails the bundle (retried)
            self._group.append((job, outcome))
            if len(self._group) >= self._handler.config.batch_size:
                self._record()
            yield WindowedValue(PredictionResult(job, outcome, self._handler.model_id),
                                timestamp, (window,))

    def _record(self) -> None:
        if self._group:
            jobs, outcomes = zip(*self._group, strict=True)
            self._completion += record_outcomes(self._handler.stage, self._handler.cache_dir,
                                                jobs, outcomes, None,
                                                secret_envs(self._handler.config))
            progress.tick(f"llm {self._handler.stage}", rate_of="requests",
                          requests=len(jobs))
            self._group = []
