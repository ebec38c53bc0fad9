"""Our RunInference ModelHandler: a batch of `Job`s → one `Outcome` per job.

The handler loads the configured backend once per worker process (or once per machine with
`share_model_across_processes`), runs `generate_validated` on each batch, counts metrics in
`refinery.<stage>`, writes the batch's valid answers to the response cache right away, and
ticks a progress bar for local runs. Batch sizes come from the config.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from transforms import progress
from transforms.base import METRICS_NAMESPACE
from transforms.llm.api import ChatRequest
from transforms.llm.backend_base import Backend, backend_model_id
from transforms.llm.cache import entry_from_result, write_entries
from transforms.llm.config import LLMConfig
from transforms.llm.structured import Outcome, generate_validated

log = logging.getLogger(__name__)
_PROGRESS: dict[str, Any] = {}


@dataclass(frozen=True)
class Job:
    """One model call: the request, its cache key, and other requests with the same key
    (same content) that get the same answer."""

    cache_key: str
    request: ChatRequest
    aliases: tuple[ChatRequest, ...] = ()


def _progress(stage: str) -> Any:
    if stage not in _PROGRESS:
        from tqdm.auto import tqdm

        _PROGRESS[stage] = tqdm(desc=f"llm {stage}", unit="req", dynamic_ncols=True,
                                mininterval=1.0)
    return _PROGRESS[stage]


def secret_envs(config: LLMConfig) -> list[str]:
    """Env vars whose values must never reach the response cache (the API key's)."""
    return [e for e in (getattr(config, "api_key_env", None),) if e]


def record_outcomes(stage: str, cache_dir: str | None, jobs: Sequence[Job],
                    outcomes: Sequence[Outcome], elapsed_s: float | None,
                    secrets: Sequence[str] = ()) -> int:
    """Count a finished group of jobs in `refinery.<stage>` and write its valid answers to the
    response cache; returns the completion tokens. `elapsed_s` (wall time spent generating) is
    added to generate_ms when given."""
    ns = f"{METRICS_NAMESPACE}.{stage}"
    counter = beam.metrics.Metrics.counter
    completion = sum(o.completion_tokens for o in outcomes)
    counter(ns, "model_calls").inc(sum(o.attempts for o in outcomes))
    counter(ns, "retries").inc(sum(o.retries for o in outcomes))
    counter(ns, "prompt_tokens").inc(sum(o.prompt_tokens for o in outcomes))
    counter(ns, "completion_tokens").inc(completion)
    counter(ns, "failures").inc(sum(1 + len(j.aliases) for j, o in zip(jobs, outcomes, strict=True)
                                    if o.result is None))
    if elapsed_s is not None:
        counter(ns, "generate_ms").inc(int(elapsed_s * 1000))
        if elapsed_s > 0:
            beam.metrics.Metrics.gauge(ns, "tokens_per_s").set(int(completion / elapsed_s))
    if cache_dir is not None:
        try:
            write_entries(cache_dir, [entry_from_result(j.cache_key, o.result)
                                      for j, o in zip(jobs, outcomes, strict=True)
                                      if o.result is not None], secret_envs=list(secrets))
        except Exception as e:  # answers still flow on; the next run asks again
            log.warning("cannot write to the response cache %s: %s", cache_dir, e)
            counter(ns, "cache_write_errors").inc()
    return completion


def make_backend(config: LLMConfig) -> Backend:
    """The backend named by `config.backend`; heavy libraries are imported only here."""
    if config.backend == "local":
        from transforms.llm.backend_local import LocalBackend

        return LocalBackend(config)
    if config.backend == "vllm":
        from transforms.llm.backend_vllm import VLLMBackend

        return VLLMBackend(config)
    if config.backend == "openai":
        from transforms.llm.backend_openai import OpenAIBackend

        return OpenAIBackend(config)
    raise ValueError(f"unknown llm backend {config.backend!r}")


class ChatModelHandler(ModelHandler[Job, Outcome, Backend]):
    """RunInference handler over any backend of `make_backend` (or `backend_factory`)."""

    def __init__(self, config: LLMConfig, stage: str, cache_dir: str | None = None,
                 backend_factory: Callable[[LLMConfig], Backend] | None = None):
        super().__init__(min_batch_size=config.min_batch_size or config.batch_size,
                         max_batch_size=config.batch_size)
        self.config = config
        self.stage = stage
        self.cache_dir = cache_dir
        self.backend_factory = backend_factory
        self.model_id = backend_model_id(config)

    def load_model(self) -> Backend:
        factory = self.backend_factory or make_backend
        with progress.working(f"llm {self.stage}", f"loading {self.model_id}", eta=False):
            return factory(self.config)

    def run_inference(self, batch: Sequence[Job], model: Backend,
                      inference_args: dict[str, Any] | None = None
                      ) -> Iterable[PredictionResult]:
        start = time.perf_counter()
        with progress.working(f"llm {self.stage}", f"a batch of {len(batch)} requests"):
            outcomes = generate_validated(model, [j.request for j in batch],
                                          self.config.retries, self.config.retry_temperature,
                                          model_id=self.model_id)
        elapsed = time.perf_counter() - start
        completion = record_outcomes(self.stage, self.cache_dir, batch, outcomes, elapsed,
                                     secret_envs(self.config))
        progress.tick(f"llm {self.stage}", rate_of="requests", requests=len(batch),
                      completion_tokens=completion)
        if self.config.progress and self.config.backend == "local":
            bar = _progress(self.stage)
            bar.update(len(batch))
            bar.set_postfix(tok_s=f"{completion / elapsed:.0f}" if elapsed > 0 else "-",
                            refresh=False)
        return [PredictionResult(j, o, self.model_id)
                for j, o in zip(batch, outcomes, strict=True)]

    def get_num_bytes(self, batch: Sequence[Job]) -> int:
        return sum(sum(len(c) for _, c in j.request.messages) + len(j.request.prefill)
                   for j in batch)

    def share_model_across_processes(self) -> bool:
        return self.config.share_model_across_processes

    def model_copies(self) -> int:
        return 1
