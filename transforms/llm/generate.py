"""`Generate`: the one way stages reach a model.

Reads a PCollection of `ChatRequest`s; returns {MAIN: ChatResult, DEADLETTER: dict}. Each request
ends in exactly one of them: MAIN with schema-valid answers (from the response cache or the
model), DEADLETTER (`deadletter_entry`, record_id = request key, raw = the last answer text,
the messages and the payload) when the backend failed or no answer passed the schema after the
configured retries. Local and vLLM backends get batches through `RunInference`; the openai
backend streams (`transforms.llm.streaming`): each worker keeps up to `concurrency` requests on
the wire across batch boundaries. With the cache on, earlier answers are read from `cache_dir` and joined with
the requests by cache key; only misses reach `RunInference`. Requests with identical content
share one model call. Metrics in `refinery.<stage>`: requests, cache_hits, model_calls,
retries, prompt_tokens, completion_tokens, failures, generate_ms, tokens_per_s (gauge).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import PredictionResult, RunInference

from transforms.base import DEADLETTER, MAIN, METRICS_NAMESPACE, deadletter_entry
from transforms.llm.api import ChatRequest
from transforms.llm.backend_base import Backend, backend_model_id
from transforms.llm.cache import (
    cache_key,
    list_cache_files,
    read_entries,
    resolve_cache_dir,
    result_from_entry,
)
from transforms.llm.config import LLMConfig
from transforms.llm.handler import ChatModelHandler, Job
from transforms.llm.streaming import StreamInference, is_streaming

MISS = "miss"


class _KeyRequests(beam.DoFn):
    def __init__(self, stage: str, model_id: str):
        self._ns = f"{METRICS_NAMESPACE}.{stage}"
        self._model_id = model_id

    def process(self, request: ChatRequest) -> Iterable[tuple[str, ChatRequest]]:
        beam.metrics.Metrics.counter(self._ns, "requests").inc()
        yield cache_key(request, self._model_id), request


class _ServeFromCache(beam.DoFn):
    """(key, {req: [...], hit: [...]}) → cached ChatResults, or one Job on the MISS output."""

    def __init__(self, stage: str):
        self._ns = f"{METRICS_NAMESPACE}.{stage}"

    def process(self, element: tuple[str, dict[str, list[Any]]]) -> Iterable[Any]:
        key, groups = element
        requests = sorted(groups["req"], key=lambda r: r.key)
        if not requests:
            return
        if groups["hit"]:
            beam.metrics.Metrics.counter(self._ns, "cache_hits").inc(len(requests))
            # several files may hold the key (reruns on other workers): pick one deterministically
            entry = min(groups["hit"], key=lambda e: json.dumps(e, sort_keys=True))
            for req in requests:
                yield result_from_entry(entry, req)
        else:
            yield beam.pvalue.TaggedOutput(MISS, Job(key, requests[0], tuple(requests[1:])))


def _dead_entry(stage: str, request: ChatRequest, error: str, raw: str,
                step: str | None = None) -> dict[str, Any]:
    return deadletter_entry(
        stage, error,
        {"answer": raw, "messages": request.chat_messages(), "payload": request.payload,
         "template_version": request.template_version},
        record_id=request.key, step=step)


class _Route(beam.DoFn):
    """PredictionResult(Job, Outcome) → a ChatResult per request, or dead-letter entries."""

    def __init__(self, stage: str, step: str | None = None):
        self._stage, self._step = stage, step

    def process(self, pred: PredictionResult) -> Iterable[Any]:
        job: Job = pred.example
        outcome = pred.inference
        if outcome.result is not None:
            yield outcome.result
            for alias in job.aliases:
                yield replace(outcome.result, key=alias.key, payload=alias.payload,
                              template_version=alias.template_version)
            return
        for req in (job.request, *job.aliases):
            yield beam.pvalue.TaggedOutput(
                DEADLETTER, _dead_entry(self._stage, req, outcome.error or "unknown", outcome.raw,
                                        self._step))


class ReadResponseCache(beam.PTransform):
    """(cache key, entry) for every answer persisted under `cache_dir` (read at run time)."""

    def __init__(self, cache_dir: str, label: str | None = None):
        super().__init__(label)
        self._cache_dir = cache_dir

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (pbegin
                | "CacheDir" >> beam.Create([self._cache_dir])
                | "ListFiles" >> beam.FlatMap(list_cache_files)
                | "Spread" >> beam.Reshuffle()
                | "ReadFiles" >> beam.FlatMap(read_entries))


class Generate(beam.PTransform):
    """ChatRequests → {MAIN: ChatResult, DEADLETTER: dict}, through RunInference + our handler.

    `cache_dir` (or `llm_config.cache_dir`, or `<work_dir>/llm_cache`) is where answers are
    persisted and found again; `backend_factory` replaces the configured backend (tests use it
    to inject faults). Metrics go to `refinery.<stage>`; dead-letter entries name
    `deadletter_stage` (default `stage`) and, when given, `step`. Stages call it through
    `transforms.kit.GenerateStep`, which sets all of these from the run context."""

    def __init__(self, llm_config: LLMConfig | None = None, stage: str = "llm",
                 cache_dir: str | None = None, work_dir: str | None = None,
                 backend_factory: Callable[[LLMConfig], Backend] | None = None,
                 label: str | None = None, deadletter_stage: str | None = None,
                 step: str | None = None):
        super().__init__(label)
        self.config = llm_config or LLMConfig()
        self.stage = stage
        self.deadletter_stage = deadletter_stage or stage
        self.step = step
        self.cache_dir = resolve_cache_dir(cache_dir or self.config.cache_dir, work_dir) \
            if self.config.cache else None
        self.backend_factory = backend_factory

    def expand(self, requests: beam.PCollection) -> dict[str, beam.PCollection]:
        model_id = backend_model_id(self.config)
        keyed = requests | "KeyRequests" >> beam.ParDo(_KeyRequests(self.stage, model_id))
        handler = ChatModelHandler(self.config, self.stage, self.cache_dir, self.backend_factory)
        if self.cache_dir is None:
            jobs = keyed | "ToJobs" >> beam.MapTuple(lambda k, r: Job(k, r))
            hits = None
        else:
            cached = requests.pipeline | "ReadCache" >> ReadResponseCache(self.cache_dir)
            served = ({"req": keyed, "hit": cached}
                      | "JoinCache" >> beam.CoGroupByKey()
                      | "ServeFromCache" >> beam.ParDo(_ServeFromCache(self.stage))
                      .with_outputs(MISS, main=MAIN))
            jobs, hits = served[MISS], served[MAIN]
        infer = beam.ParDo(StreamInference(handler)) if is_streaming(self.config) else \
            RunInference(handler)
        routed = (jobs
                  | "RunInference" >> infer
                  | "Route" >> beam.ParDo(_Route(self.deadletter_stage, self.step))
                  .with_outputs(DEADLETTER, main=MAIN))
        main = routed[MAIN] if hits is None else \
            (hits, routed[MAIN]) | "AllResults" >> beam.Flatten()
        return {MAIN: main, DEADLETTER: routed[DEADLETTER]}
