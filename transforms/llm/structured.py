"""Schema validation and re-generation, the same for every backend (pure core).

`generate_validated(backend, requests, retries, retry_temperature)` calls the backend, parses
and validates every answer that has a JSON Schema (jsonschema), re-asks only the failing
requests (new seed; greedy requests get `retry_temperature`) up to `retries` times, and returns
one `Outcome` per request: a `ChatResult` or an error with the raw text. Nothing is dropped.
`agenerate_validated` does the same for one request on an event loop (the streaming path).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from transforms.llm import deadline
from transforms.llm.api import ChatRequest, ChatResult, SamplingParams
from transforms.llm.backend_base import Backend, Generation


@dataclass
class Outcome:
    """What became of one request: `result` or (`error`, `raw`); usage summed over attempts."""

    request: ChatRequest
    result: ChatResult | None = None
    error: str | None = None
    raw: str = ""
    attempts: int = 0
    retries: int = 0  # schema re-generations + transport retries
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def parse_json_answer(text: str) -> Any:
    """The JSON value in a model answer: the whole text, else the outermost {...} or [...]
    span (answers from unconstrained endpoints sometimes wrap JSON in prose or fences)."""
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    for open_c, close_c in (("{", "}"), ("[", "]")):
        i, j = stripped.find(open_c), stripped.rfind(close_c)
        if i != -1 and j > i:
            try:
                return json.loads(stripped[i:j + 1])
            except ValueError:
                continue
    raise ValueError("no JSON value in the answer")


def json_span_end(text: str, start: int) -> int | None:
    """Index just past the bracketed JSON value opening at text[start] ('{' or '['), reading
    strings and escapes; None when the text ends first (an answer cut off mid-value)."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _schema_text(schema: Any) -> str:
    return json.dumps(schema, sort_keys=True, default=str)


@functools.lru_cache(maxsize=256)
def _schema_problem(schema_text: str) -> str | None:
    import jsonschema

    schema = json.loads(schema_text)
    if not isinstance(schema, dict | bool):
        return f"expected an object, got {type(schema).__name__}"
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as e:
        return e.message[:200]
    return None


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str) -> Any:
    import jsonschema

    schema = json.loads(schema_text)
    return jsonschema.validators.validator_for(schema)(schema)


def schema_problem(schema: Any) -> str | None:
    """Why `schema` is not a usable JSON Schema, or None (also for no schema). Checked once
    per distinct schema in a process."""
    if schema is None:
        return None
    return _schema_problem(_schema_text(schema))


def validate_texts(texts: Sequence[str], schema: dict[str, Any]) -> tuple[list[Any] | None, str]:
    """(parsed values, '') when every text is valid JSON of `schema`, else (None, reason)."""
    validator = _validator(_schema_text(schema))
    parsed = []
    for k, text in enumerate(texts):
        try:
            value = parse_json_answer(text)
        except ValueError as e:
            return None, f"invalid_json (answer {k}): {e}"
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "<root>"
            return None, f"schema_violation (answer {k}) at {where}: {errors[0].message[:200]}"
        parsed.append(value)
    return parsed, ""


def retry_request(request: ChatRequest, attempt: int, retry_temperature: float) -> ChatRequest:
    """The request re-asked after `attempt` failed tries: a new seed, sampling if it was greedy."""
    s = request.sampling
    sampling = SamplingParams(
        temperature=s.temperature if s.temperature > 0 else retry_temperature,
        top_p=s.top_p, max_tokens=s.max_tokens, n=s.n,
        seed=(s.seed * 7919 + attempt * 104_729) & 0x7FFF_FFFF, stop=s.stop)
    return replace(request, sampling=sampling)


def _result(request: ChatRequest, gen: Generation, parsed: list[Any] | None,
            model: str) -> ChatResult:
    return ChatResult(
        key=request.key, texts=tuple(gen.texts),
        parsed=None if parsed is None else tuple(parsed), model=model,
        prompt_tokens=gen.prompt_tokens, completion_tokens=gen.completion_tokens,
        logprobs=None if gen.logprobs is None else tuple(gen.logprobs), cached=False,
        payload=request.payload, template_version=request.template_version,
        finish_reasons=None if gen.finish_reasons is None else tuple(gen.finish_reasons))


def _check_schemas(requests: Sequence[ChatRequest], outcomes: list[Outcome]) -> list[int]:
    """Indexes of requests worth asking; a broken schema is the caller's bug: it fails at
    once, without a model call."""
    pending = []
    for i, r in enumerate(requests):
        problem = schema_problem(r.json_schema)
        if problem is None:
            pending.append(i)
        else:
            outcomes[i].error = f"invalid_schema: {problem}"
            outcomes[i].raw = json.dumps(r.json_schema, sort_keys=True, default=str)
    return pending


def _absorb(o: Outcome, gen: Generation, attempt: int, model: str) -> bool:
    """Record one answer on its outcome; True when it failed its schema or count (worth a
    re-generation), False when it is done (valid, or a transport error already retried)."""
    req = o.request
    o.attempts += 1
    o.retries += gen.retries + (1 if attempt > 0 else 0)
    o.prompt_tokens += gen.prompt_tokens
    o.completion_tokens += gen.completion_tokens
    if gen.error is not None:  # the backend already retried its transport
        o.error, o.raw = gen.error, gen.raw or "\n".join(gen.texts)
        return False
    if len(gen.texts) != max(1, req.sampling.n):
        o.error = f"wrong_answer_count: {len(gen.texts)} for n={req.sampling.n}"
        o.raw = json.dumps(gen.texts, ensure_ascii=False)
        return True
    parsed = None
    if req.json_schema is not None:
        parsed, reason = validate_texts(gen.texts, req.json_schema)
        if parsed is None:
            o.error = reason
            o.raw = gen.texts[0] if len(gen.texts) == 1 else json.dumps(
                gen.texts, ensure_ascii=False)
            return True
    o.result, o.error = _result(req, gen, parsed, model), None
    return False


def generate_validated(backend: Backend, requests: Sequence[ChatRequest], retries: int,
                       retry_temperature: float = 0.7, model_id: str | None = None
                       ) -> list[Outcome]:
    """One Outcome per request (same order), after up to `retries` schema re-generations."""
    model = model_id if model_id is not None else backend.model_id
    outcomes = [Outcome(request=r) for r in requests]
    pending = _check_schemas(requests, outcomes)
    attempt = 0
    while pending:
        if deadline.passed():
            for i in pending:
                outcomes[i].error = deadline.PASSED
            break
        asked = [requests[i] if attempt == 0 else retry_request(requests[i], attempt,
                                                                 retry_temperature)
                 for i in pending]
        gens = backend.generate(asked)
        if len(gens) != len(asked):
            raise RuntimeError(f"backend returned {len(gens)} answers for {len(asked)} requests")
        pending = [i for i, gen in zip(pending, gens, strict=True)
                   if _absorb(outcomes[i], gen, attempt, model) and attempt < retries]
        attempt += 1
    return outcomes


async def agenerate_validated(backend: Backend, request: ChatRequest, retries: int,
                              retry_temperature: float = 0.7, model_id: str | None = None
                              ) -> Outcome:
    """`generate_validated` for one request, on an event loop: awaits the backend's
    `agenerate` when it has one, else runs its `generate` in a thread."""
    model = model_id if model_id is not None else backend.model_id
    outcome = Outcome(request=request)
    if not _check_schemas([request], [outcome]):
        return outcome
    agenerate = getattr(backend, "agenerate", None)
    for attempt in range(retries + 1):
        if deadline.passed():
            outcome.error = deadline.PASSED
            break
        asked = request if attempt == 0 else retry_request(request, attempt, retry_temperature)
        if agenerate is not None:
            gen = await agenerate(asked)
        else:
            gens = await asyncio.to_thread(backend.generate, [asked])
            if len(gens) != 1:
                raise RuntimeError(f"backend returned {len(gens)} answers for 1 request")
            gen = gens[0]
        if not _absorb(outcome, gen, attempt, model):
            break
    return outcome
