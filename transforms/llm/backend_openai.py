"""The openai backend: any OpenAI-compatible /v1/chat/completions endpoint.

Async httpx on one event loop per process, at most `concurrency` requests in flight (halved on
429/503 and grown back one at a time: AIMD), a per-request timeout, and retries
with exponential backoff and jitter for 5xx, 408/409/429 (waiting what Retry-After asks, up to
`backoff_max_s`), timeouts, dropped connections and malformed or empty bodies. Other 4xx fail at
once. Each request comes back as a `Generation`, with `error` and the raw body when it failed
for good. The API key is read from the environment variable named by `api_key_env` and sent only
in the Authorization header; it is never logged or returned.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from transforms.llm import deadline
from transforms.llm._loop import submit
from transforms.llm.aimd import AdaptiveLimit
from transforms.llm.api import ChatRequest
from transforms.llm.backend_base import Generation, backend_model_id
from transforms.llm.config import LLMConfig

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 429})
OVERLOAD_STATUS = frozenset({429, 503})  # the server asks for less: the concurrency limit halves


class _Malformed(Exception):
    pass


def build_payload(request: ChatRequest, config: LLMConfig) -> dict[str, Any]:
    """The JSON body of one chat completion call."""
    body: dict[str, Any] = {"model": config.model, "messages": request.chat_messages(),
                            **request.sampling.call_kwargs()}
    if request.prefill:  # vLLM's and SGLang's servers continue the final assistant turn
        body.update(request.template_kwargs())
    if request.json_schema is not None and config.json_mode == "json_schema":
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "answer", "schema": request.json_schema}}
    elif request.json_schema is not None and config.json_mode == "json_object":
        body["response_format"] = {"type": "json_object"}
    if request.logprobs is not None:
        body["logprobs"] = True
        if request.logprobs > 0:
            body["top_logprobs"] = request.logprobs
    return body


def parse_response(body: Any, n: int) -> Generation:
    """A Generation from a decoded 200 body; raises _Malformed when it is not a usable answer."""
    if not isinstance(body, dict):
        raise _Malformed("body is not a JSON object")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _Malformed("empty choices")
    choices = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
    texts, logprobs, finish = [], [], []
    for c in choices:
        message = c.get("message") if isinstance(c, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise _Malformed("choice without message content")
        texts.append(content)
        finish.append(str(c.get("finish_reason") or ""))
        lp = (c.get("logprobs") or {}).get("content") if isinstance(c.get("logprobs"), dict) else None
        logprobs.append([{"token": t.get("token"), "logprob": t.get("logprob"),
                          "top": [[x.get("token"), x.get("logprob")]
                                  for x in t.get("top_logprobs") or []]}
                         for t in lp or []])
    if len(texts) < n:
        raise _Malformed(f"{len(texts)} choices for n={n}")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return Generation(texts=texts[:n], prompt_tokens=int(usage.get("prompt_tokens") or 0),
                      completion_tokens=int(usage.get("completion_tokens") or 0),
                      logprobs=logprobs[:n] if any(logprobs) else None,
                      finish_reasons=finish[:n] if any(finish) else None)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds asked by a Retry-After header (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _budget(timeout_s: float) -> tuple[float, bool]:
    """Seconds one request may take: timeout_s, or less when the run's deadline is nearer
    (then True)."""
    left = deadline.remaining()
    return (left, True) if left is not None and left < timeout_s else (timeout_s, False)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: uniform in [d/2, d], d = min(cap, base * 2**attempt)."""
    d = min(cap, base * (2 ** attempt))
    return d * (0.5 + 0.5 * rng.random())


class OpenAIBackend:
    """Chat completions over HTTP: `agenerate` on the caller's event loop (the Beam path,
    `transforms.llm.streaming`), or `generate` from sync code on the process's shared loop
    (`transforms.llm._loop`). One client and connection pool per backend, made on the loop
    that first uses it, and at most `concurrency` requests in flight (fewer while the server
    pushes back)."""

    supports_async = True

    def __init__(self, config: LLMConfig,
                 sleep: Callable[[float], Awaitable[Any]] | None = None):
        self.config = config
        self.model_id = backend_model_id(config)
        self._sleep = sleep or asyncio.sleep
        self._rng = random.Random()
        self.limit = AdaptiveLimit(config.concurrency)
        self._client: Any = None

    def close(self) -> None:
        """Close the client made by `generate` (on the process's shared loop)."""
        if self._client is not None:
            try:
                submit(self.aclose()).result(timeout=10)
            except Exception as e:  # the loop may be gone at interpreter exit
                log.debug("closing the http client: %s", e)

    async def aclose(self) -> None:
        """Close the client, on the loop that made it."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env) if self.config.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _http(self) -> Any:
        """The client, made on the loop's thread on first use."""
        if self._client is None:
            import httpx

            n = self.config.concurrency
            self._client = httpx.AsyncClient(
                base_url=self.config.base_url.rstrip("/"), headers=self._headers(),
                limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
                timeout=httpx.Timeout(self.config.timeout_s))
        return self._client

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        futures = [submit(self.agenerate(r)) for r in requests]
        return [f.result() for f in futures]

    async def agenerate(self, request: ChatRequest) -> Generation:
        """One request, with transport retries; never raises for a failed call."""
        import httpx

        client = self._http()
        payload = build_payload(request, self.config)
        n = max(1, request.sampling.n)
        cfg = self.config
        attempt = 0
        while True:
            wait: float | None = None
            raw = ""
            ticket = await self.limit.acquire()
            budget, by_run = _budget(cfg.timeout_s)
            try:  # timeout_s bounds the whole request: a trickling answer is cut off too
                resp = await asyncio.wait_for(client.post("/chat/completions", json=payload),
                                              budget)
                raw = resp.text[:4000]
                if resp.status_code == 200:
                    self.limit.on_success()
                    try:
                        gen = parse_response(json.loads(resp.content), n)
                    except (ValueError, _Malformed) as e:
                        error = f"malformed_response: {e}"
                    else:
                        gen.retries = attempt
                        return gen
                elif resp.status_code in RETRY_STATUS or resp.status_code >= 500:
                    error = f"http_{resp.status_code}"
                    wait = retry_after_seconds(resp.headers.get("retry-after"))
                    if resp.status_code in OVERLOAD_STATUS:
                        self.limit.on_overload(ticket)
                else:
                    return Generation(error=f"http_{resp.status_code}", raw=raw, retries=attempt)
            except (httpx.TimeoutException, TimeoutError) as e:
                error = deadline.PASSED if by_run else \
                    f"timeout: no complete answer within timeout_s={cfg.timeout_s}s " \
                    f"({type(e).__name__})"
            except httpx.TransportError as e:
                error = f"connection_error: {type(e).__name__}"
            finally:
                self.limit.release()
            if attempt >= cfg.max_retries or deadline.passed():
                return Generation(error=f"{error} (gave up after {attempt + 1} tries)", raw=raw,
                                  retries=attempt)
            delay = min(wait, cfg.backoff_max_s) if wait is not None else \
                backoff_delay(attempt, cfg.backoff_base_s, cfg.backoff_max_s, self._rng)
            left = deadline.remaining()
            delay = delay if left is None else min(delay, left)
            log.debug("retrying %s after %s in %.2fs", request.key, error, delay)
            await self._sleep(delay)
            attempt += 1
