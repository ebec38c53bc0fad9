"""Requests/s of `Generate` (openai backend) against a served model with limited capacity, vs
a plain asyncio httpx client at the same concurrency, without Beam.

The server runs in its own process (uvicorn, a bare ASGI app speaking /v1/chat/completions)
and simulates a model server's capacity: at most `--slots` requests are served at once, each
takes `--service-ms`; the rest queue. Its theoretical maximum is slots / service time
(32 / 0.2 s = 160 requests/s by default). Both sides send the same `--n` distinct requests with
a JSON Schema (the server's answers satisfy it) at concurrency `--concurrency`. `Generate`
runs in a real DirectRunner pipeline, timed from `run()` to the end, cache off. Then, with the
cache on, a run fills the cache and a second run must make zero calls (counted by the server).
Both sides are warmed up first (64 requests each); runs alternate (client, ours, client, ours)
so a busy machine hits both sides alike.
Prints a table, then one JSON line: ours_requests_per_s, client_requests_per_s,
server_max_requests_per_s, ratio_vs_client, ratio_vs_max, cached_run_server_calls.

    .venv/bin/python bench/llm_served.py [--n 2000] [--reps 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}},
          "required": ["answer"], "additionalProperties": False}


# ---------------------------------------------------------------- the simulated model server

def _serve(port: int, slots: int, service_s: float) -> None:
    import uvicorn

    state: dict[str, Any] = {"calls": 0, "sem": None}

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        if scope["path"].endswith("/stats"):
            payload = json.dumps({"calls": state["calls"]}).encode()
        else:
            state["calls"] += 1
            if state["sem"] is None:
                state["sem"] = asyncio.Semaphore(slots)
            req = json.loads(body)
            async with state["sem"]:  # the model's capacity: `slots` at once, `service_s` each
                await asyncio.sleep(service_s)
            text = req["messages"][-1]["content"]
            payload = json.dumps({
                "id": "x", "object": "chat.completion", "model": req["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": json.dumps({"answer": text})}}],
                "usage": {"prompt_tokens": len(text.split()), "completion_tokens": 8}}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                backlog=4096, timeout_keep_alive=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(slots: int, service_s: float) -> tuple[multiprocessing.Process, str]:
    port = _free_port()
    proc = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(port, slots, service_s), daemon=True)
    proc.start()
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the bench server did not start")


def server_calls(base_url: str) -> int:
    import httpx

    return int(httpx.post(f"{base_url}/stats", content=b"{}").json()["calls"])


# ---------------------------------------------------------------- the two sides

def texts(n: int, run: str) -> list[str]:
    return [f"Question {i} of run {run}: what is {i} plus {i}?" for i in range(n)]


def run_client(base_url: str, prompts: list[str], concurrency: int) -> tuple[float, int]:
    """What a user would write: asyncio + httpx, a semaphore, gather; (seconds, answers)."""
    import httpx

    async def main() -> int:
        sem = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency,
                              max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60) as client:
            async def one(text: str) -> dict:
                body = {"model": "bench", "messages": [{"role": "user", "content": text}],
                        "max_tokens": 16, "response_format": {
                            "type": "json_schema",
                            "json_schema": {"name": "answer", "schema": SCHEMA}}}
                async with sem:
                    resp = await client.post("/chat/completions", json=body)
                return json.loads(resp.json()["choices"][0]["message"]["content"])

            answers = await asyncio.gather(*(one(t) for t in prompts))
        return sum(1 for a in answers if "answer" in a)

    start = time.perf_counter()
    ok = asyncio.run(main())
    return time.perf_counter() - start, ok


def run_ours(base_url: str, prompts: list[str], concurrency: int,
             cache_dir: str | None = None) -> tuple[float, int, dict[str, int]]:
    """`Generate` in a DirectRunner pipeline; (seconds from run() to the end, answers, counters)."""
    import apache_beam as beam
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions

    from transforms.base import MAIN
    from transforms.llm.api import ChatRequest, SamplingParams
    from transforms.llm.config import LLMConfig
    from transforms.llm.generate import Generate

    cfg = LLMConfig(backend="openai", model="bench", base_url=base_url, api_key_env=None,
                    concurrency=concurrency, cache=cache_dir is not None, cache_dir=cache_dir,
                    progress=False)
    reqs = [ChatRequest(key=f"r{i}", messages=(("user", t),), json_schema=SCHEMA,
                        sampling=SamplingParams(max_tokens=16)) for i, t in enumerate(prompts)]
    p = beam.Pipeline(options=PipelineOptions(flags=[], runner="DirectRunner"))
    out = p | beam.Create(reqs, reshuffle=False) | Generate(cfg, stage="bench")
    _ = out[MAIN] | beam.combiners.Count.Globally()
    start = time.perf_counter()
    result = p.run()
    result.wait_until_finish()
    elapsed = time.perf_counter() - start
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(
        MetricsFilter().with_namespace("refinery.bench"))["counters"]}
    answered = counters.get("requests", 0) - counters.get("failures", 0)
    return elapsed, answered, counters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="requests per run")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--slots", type=int, default=32, help="server: requests served at once")
    ap.add_argument("--service-ms", type=float, default=200.0, help="server: time per request")
    ap.add_argument("--reps", type=int, default=2, help="timed runs of each side")
    args = ap.parse_args()

    server_max = args.slots / (args.service_ms / 1000)
    proc, base_url = start_server(args.slots, args.service_ms / 1000)
    try:
        # warm-ups: the server, and each side's lazy imports (Beam's runner for ours)
        run_client(base_url, texts(64, "warm"), args.concurrency)
        run_ours(base_url, texts(64, "warm-ours"), args.concurrency)
        rows = []
        for rep in range(args.reps):
            for side in ("client", "ours"):
                prompts = texts(args.n, f"{side}-{rep}")
                if side == "client":
                    sec, ok = run_client(base_url, prompts, args.concurrency)
                else:
                    sec, ok, _ = run_ours(base_url, prompts, args.concurrency)
                rows.append((side, rep, ok, sec))
                print(f"rep {rep} {side}: {ok}/{args.n} answered in {sec:.2f}s",
                      file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as cache_dir:
            prompts = texts(args.n, "cached")
            before = server_calls(base_url)
            fill_s, fill_ok, _ = run_ours(base_url, prompts, args.concurrency, cache_dir)
            mid = server_calls(base_url)
            again_s, again_ok, again = run_ours(base_url, prompts, args.concurrency, cache_dir)
            cached_calls = server_calls(base_url) - mid
    finally:
        proc.kill()

    print(f"{'side':8}{'rep':>4}{'answered':>10}{'wall s':>9}{'req/s':>9}")
    for side, rep, ok, sec in rows:
        print(f"{side:8}{rep:>4}{ok:>10}{sec:>9.2f}{ok / sec:>9.1f}")
    print(f"cache on: fill run {fill_ok} answered, {mid - before} server calls, {fill_s:.2f}s; "
          f"second run {again_ok} answered, {cached_calls} server calls "
          f"({again.get('cache_hits', 0)} cache hits), {again_s:.2f}s")

    def rate(side: str) -> float:
        return sum(r[2] for r in rows if r[0] == side) / sum(r[3] for r in rows if r[0] == side)

    ours, client = rate("ours"), rate("client")
    print(f"server max {server_max:.1f} req/s; ours {ours:.1f} req/s; client {client:.1f} req/s")
    print(f"ours / client = {ours / client:.3f}; ours / server max = {ours / server_max:.3f}")
    print(json.dumps({
        "bench": "llm_served", "requests": args.n, "concurrency": args.concurrency,
        "reps": args.reps, "ours_requests_per_s": round(ours, 1),
        "client_requests_per_s": round(client, 1),
        "server_max_requests_per_s": round(server_max, 1),
        "ratio_vs_client": round(ours / client, 3), "ratio_vs_max": round(ours / server_max, 3),
        "ours_per_rep": [round(r[2] / r[3], 1) for r in rows if r[0] == "ours"],
        "client_per_rep": [round(r[2] / r[3], 1) for r in rows if r[0] == "client"],
        "cached_run_server_calls": cached_calls,
        "cached_run_cache_hits": again.get("cache_hits", 0)}))


if __name__ == "__main__":
    main()
