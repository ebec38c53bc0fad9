"""What every backend implements (transforms.llm.handler.make_backend picks one from the config).

A backend turns a list of `ChatRequest`s into one `Generation` per request (same order). It
never raises for a single bad request: a request that fails after the backend's own transport
retries comes back with `error` set (and whatever raw text it got). Schema validation and its
retries happen above the backend (transforms.llm.structured), identically for all backends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from transforms.llm.api import ChatRequest, overall_finish_reason
from transforms.llm.config import LLMConfig


@dataclass
class Generation:
    """One request's answer from a backend: `texts` has `n` entries unless `error` is set."""

    texts: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    logprobs: list[Any] | None = None  # one entry per text: [{token, logprob, top}] per token
    error: str | None = None
    raw: str = ""  # the raw payload when the backend could not produce texts
    retries: int = 0  # transport retries spent on this request
    finish_reasons: list[str] | None = None  # per text: "stop" | "length" (None: unknown)

    @property
    def finish_reason(self) -> str | None:
        """One reason for all texts (see ChatResult.finish_reason)."""
        return overall_finish_reason(self.finish_reasons or ())


class Backend(Protocol):
    model_id: str

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]: ...

    def close(self) -> None: ...


def backend_model_id(config: LLMConfig) -> str:
    """The model id a backend built from `config` reports, without loading it."""
    if config.backend == "local":
        from transforms.llm.local_model import model_id

        return f"local:{model_id(config)}"
    return f"{config.backend}:{config.model}"
