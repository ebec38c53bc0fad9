"""The openai backend under load: the AIMD limit (pure, on an event loop), requests kept in
flight across Beam batches, and every fault under 128 concurrent requests with nothing lost."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.llm._openai_server import ChatServer
from tests.llm.helpers import counters, run_generate
from transforms.llm.aimd import AdaptiveLimit
from transforms.llm.api import ChatRequest
from transforms.llm.backend_openai import OpenAIBackend
from transforms.llm.config import LLMConfig

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}},
          "required": ["answer"], "additionalProperties": False}
FAULTS = ["500*2", "timeout*1", "drop*1", "malformed*1", "empty*1", "badanswer*1"]
LOST = ["500*all", "400*all", "badanswer*all"]


def _req(text: str) -> ChatRequest:
    return ChatRequest(key=text, messages=(("user", text),), json_schema=SCHEMA)


def _config(server: ChatServer, **kw) -> LLMConfig:
    base = dict(backend="openai", model="load-model", base_url=server.base_url,
                api_key_env=None, timeout_s=1.0, max_retries=3, backoff_base_s=0.01,
                backoff_max_s=1.0, concurrency=128, batch_size=16, retries=1, cache=False,
                progress=False)
    base.update(kw)
    return LLMConfig(**base)


def test_aimd_halves_once_per_round_and_grows_back():
    async def scenario() -> list[float]:
        limit = AdaptiveLimit(8, minimum=1)
        seen = []
        tickets = [await limit.acquire() for _ in range(8)]
        assert limit.in_flight == 8
        limit.on_overload(tickets[0])
        limit.on_overload(tickets[1])  # same round: no second cut
        seen.append(limit.limit)
        for _ in tickets:
            limit.release()
        limit.on_overload(await limit.acquire())  # a request of the new round cuts again
        limit.release()
        seen.append(limit.limit)
        for _ in range(100):
            limit.on_success()
        seen.append(limit.limit)
        for _ in range(5):
            limit.on_overload(await limit.acquire())
            limit.release()
        seen.append(limit.limit)
        return seen

    assert asyncio.run(scenario()) == [4.0, 2.0, 8.0, 1.0]


def test_aimd_never_exceeds_its_limit_and_serves_in_order():
    async def scenario() -> tuple[int, list[int]]:
        limit = AdaptiveLimit(3)
        peak, order, active = 0, [], 0

        async def work(i: int) -> None:
            nonlocal peak, active
            await limit.acquire()
            active += 1
            peak = max(peak, active)
            order.append(i)
            await asyncio.sleep(0.001)
            active -= 1
            limit.release()

        await asyncio.gather(*(work(i) for i in range(30)))
        return peak, order

    peak, order = asyncio.run(scenario())
    assert peak == 3 and order == list(range(30))


def test_aimd_cancelled_waiter_gives_its_slot_back():
    async def scenario() -> int:
        limit = AdaptiveLimit(1)
        await limit.acquire()
        waiter = asyncio.ensure_future(limit.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        limit.release()
        await asyncio.wait_for(limit.acquire(), 1)  # the slot is free again
        return limit.in_flight

    assert asyncio.run(scenario()) == 1


def test_requests_stay_in_flight_across_batches():
    """batch_size 4, concurrency 24: with one RunInference batch at a time the server would
    never serve more than 4 at once."""
    with ChatServer(delay_s=0.1) as server:
        cfg = _config(server, concurrency=24, batch_size=4)
        result, main, dead = run_generate([_req(f"q{i}") for i in range(96)], cfg, stage="wide")
    assert len(main) == 96 and not dead
    assert server.peak > 2 * cfg.batch_size
    assert server.peak <= cfg.concurrency
    c = counters(result, "wide")
    assert c["requests"] == 96 and c["model_calls"] == 96 and c["generate_ms"] > 0


def test_backend_backs_off_on_429_and_recovers():
    with ChatServer() as server:
        backend = OpenAIBackend(_config(server, concurrency=32))
        texts = [f"[fault:429*1] r{i}" for i in range(64)]
        gens = backend.generate([_req(t) for t in texts])
    assert all(g.error is None for g in gens)
    assert backend.limit.decreases >= 1  # halved at least once, not once per 429
    assert backend.limit.decreases < 64
    assert server.peak <= 32


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_faults_under_128_concurrent_requests_lose_nothing(workers):
    """Every fault kind, many times over, with 128 requests on the wire per worker: each
    request ends in MAIN or the dead letter, with the answer it asked for. The 429s come last
    (they halve the concurrency limit, by design)."""
    texts = [f"[fault:{FAULTS[i % len(FAULTS)]}] f{i}" if i % 3 else f"plain {i}"
             for i in range(360)] + [f"[fault:{f}] lost{i}" for i, f in enumerate(LOST * 3)]
    texts += [f"[fault:429*1] late{i}" if i % 2 else f"late {i}" for i in range(60)]
    opts = {"direct_running_mode": "multi_processing", "direct_num_workers": 2} \
        if workers > 1 else None
    # timeout_s is the whole request's deadline: 5 s leaves room for 128 answers in flight per
    # worker on a loaded CI machine (server and clients share its cores), a hang (6 s) trips it
    with ChatServer(hang_s=6.0, delay_s=0.3) as server:
        result, main, dead = run_generate([_req(t) for t in texts],
                                          _config(server, timeout_s=5.0),
                                          stage="load", options=opts)
        peak = server.peak
    assert sorted(r.key for r in main) == sorted(t for t in texts if "lost" not in t)
    assert sorted(d["record_id"] for d in dead) == sorted(t for t in texts if "lost" in t)
    assert all(r.parsed == ({"answer": r.key},) for r in main)
    assert all(json.loads(d["raw"])["messages"] for d in dead)
    c = counters(result, "load")
    assert c["requests"] == len(texts) and c["failures"] == len(dead) == 9
    # the load was real: up to 128 per worker on the wire; faults that answer at once (500,
    # malformed, drop) leave the server sooner than the 0.3 s answers, so fewer overlap there
    assert peak > 64
