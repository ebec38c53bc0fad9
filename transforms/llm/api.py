"""The serving layer's contract: what stages send and get back. No backend code here.

Stages build `ChatRequest`s (rendered prompt, sampling, optional JSON Schema), apply
`transforms.llm.generate.Generate(llm_config, stage=...)` to a PCollection of them, and get a
dict {MAIN: PCollection[ChatResult], DEADLETTER: PCollection[dict]}. Every request ends in one
of the two. `ChatResult.parsed` holds the schema-validated JSON answers when a schema was given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    n: int = 1
    seed: int = 0
    stop: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d

    def call_kwargs(self) -> dict[str, Any]:
        """The settings as the OpenAI API and vLLM both name them (`stop` only when set)."""
        d = self.as_dict()
        if not self.stop:
            del d["stop"]
        return d


@dataclass(frozen=True)
class ChatRequest:
    """One chat call. `key` identifies the caller's item (e.g. record id + step), and travels
    back on the result; `payload` is opaque caller state carried along (JSON-able)."""

    key: str
    messages: tuple[tuple[str, str], ...]  # ((role, content), ...)
    sampling: SamplingParams = field(default_factory=SamplingParams)
    json_schema: dict[str, Any] | None = None
    logprobs: int | None = None  # top-k logprobs per generated token, where supported
    template_version: str = ""
    payload: Any = None
    # assistant prefill: the model continues this assistant turn instead of starting a new
    # one (vLLM/SGLang `continue_final_message`); the answer texts hold the continuation only
    prefill: str = ""

    def message_dicts(self) -> list[dict[str, str]]:
        """The messages without the prefill."""
        return [{"role": r, "content": c} for r, c in self.messages]

    def chat_messages(self) -> list[dict[str, str]]:
        """The messages sent to the model: with the prefill as a final assistant turn when set."""
        msgs = self.message_dicts()
        if self.prefill:
            msgs.append({"role": "assistant", "content": self.prefill})
        return msgs

    def template_kwargs(self) -> dict[str, bool]:
        """Chat-template switches for the prefill (as vLLM, SGLang and transformers name them)."""
        if self.prefill:
            return {"add_generation_prompt": False, "continue_final_message": True}
        return {"add_generation_prompt": True}


@dataclass(frozen=True)
class ChatResult:
    """The answers to one request: `texts` has `n` entries; `parsed` the validated JSON
    (same order) when the request had a schema; `model` the backend's model id."""

    key: str
    texts: tuple[str, ...]
    parsed: tuple[Any, ...] | None = None
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    logprobs: tuple[Any, ...] | None = None
    cached: bool = False
    payload: Any = None
    template_version: str = ""  # copied from the request, for lineage
    # why each answer ended, as the OpenAI API says it: "stop" or "length" (max_tokens hit);
    # None when the backend did not say
    finish_reasons: tuple[str, ...] | None = None

    @property
    def finish_reason(self) -> str | None:
        """One reason for all `n` answers: "length" when any was cut, else the first known."""
        return overall_finish_reason(self.finish_reasons or ())


def overall_finish_reason(reasons: Sequence[str | None]) -> str | None:
    """One finish reason for n answers: "length" when any was cut, else the first known."""
    if "length" in reasons:
        return "length"
    return next((r for r in reasons if r), None)
