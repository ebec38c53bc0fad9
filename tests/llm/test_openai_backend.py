"""The openai backend against a real HTTP server on 127.0.0.1 with injected faults, directly and
through the Beam stage (every request ends in MAIN or DEADLETTER; the API key never leaks)."""

from __future__ import annotations

import asyncio
import json
import logging

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from tests.llm._openai_server import ChatServer
from tests.llm.helpers import counters, run_generate
from transforms.llm.api import ChatRequest, SamplingParams
from transforms.llm.backend_openai import (
    OpenAIBackend,
    build_payload,
    parse_response,
    retry_after_seconds,
)
from transforms.llm.config import LLMConfig

KEY = "sk-test-SECRET-0123456789"
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}},
          "required": ["answer"], "additionalProperties": False}


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("REFINERY_TEST_KEY", KEY)
    with ChatServer(api_key=KEY, hang_s=1.5) as s:
        yield s


def _config(server: ChatServer, **kw) -> LLMConfig:
    base = dict(backend="openai", model="test-model", base_url=server.base_url,
                api_key_env="REFINERY_TEST_KEY", timeout_s=0.5, max_retries=3,
                backoff_base_s=0.01, backoff_max_s=2.0, concurrency=4, batch_size=8,
                retries=1, cache=False)
    base.update(kw)
    return LLMConfig(**base)


def _req(text: str, **kw) -> ChatRequest:
    return ChatRequest(key=text, messages=(("system", "be brief"), ("user", text)),
                       json_schema=kw.pop("json_schema", SCHEMA), **kw)


def test_build_payload_and_parse():
    cfg = LLMConfig(backend="openai", model="m")
    req = ChatRequest(key="k", messages=(("user", "hi"),), json_schema=SCHEMA, logprobs=3,
                      sampling=SamplingParams(temperature=0.2, max_tokens=7, n=2, seed=5,
                                              stop=("\n\n",)))
    body = build_payload(req, cfg)
    assert body["model"] == "m" and body["messages"] == [{"role": "user", "content": "hi"}]
    assert (body["temperature"], body["max_tokens"], body["n"], body["seed"], body["stop"]) == \
        (0.2, 7, 2, 5, ["\n\n"])
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert body["logprobs"] is True and body["top_logprobs"] == 3
    plain = build_payload(ChatRequest(key="k", messages=(("user", "hi"),)), cfg)
    assert "response_format" not in plain and "logprobs" not in plain and "stop" not in plain
    gen = parse_response({"choices": [
        {"index": 1, "message": {"content": "b"}, "finish_reason": "length"},
        {"index": 0, "message": {"content": "a"}, "finish_reason": "stop", "logprobs": {"content": [
            {"token": "a", "logprob": -0.1, "top_logprobs": [{"token": "a", "logprob": -0.1}]}]}}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2}}, n=2)
    assert gen.texts == ["a", "b"] and gen.prompt_tokens == 4 and gen.completion_tokens == 2
    assert gen.logprobs[0] == [{"token": "a", "logprob": -0.1, "top": [["a", -0.1]]}]
    assert gen.finish_reasons == ["stop", "length"]
    assert parse_response({"choices": [{"message": {"content": "x"}}]}, n=1).finish_reasons is None


def test_retry_after_forms():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_faults_recover_with_retries(server):
    delays: list[float] = []

    async def sleep(d: float) -> None:
        delays.append(d)
        await asyncio.sleep(min(d, 0.05))

    backend = OpenAIBackend(_config(server), sleep=sleep)
    texts = ["ok", "[fault:500*2] a", "[fault:429*1] b", "[fault:timeout*1] c",
             "[fault:drop*2] d", "[fault:malformed*1] e", "[fault:empty*2] f"]
    gens = backend.generate([_req(t) for t in texts])
    for t, g in zip(texts, gens, strict=True):
        assert g.error is None, (t, g.error)
        assert json.loads(g.texts[0]) == {"answer": t}
    assert [g.retries for g in gens] == [0, 2, 1, 1, 2, 1, 2]
    assert 1.0 in delays  # Retry-After: 1 honoured exactly
    assert all(server.calls[t] == g.retries + 1 for t, g in zip(texts, gens, strict=True))
    assert server.auth_ok == server.total_calls()  # the key went in the header every time


def test_permanent_faults_give_errors_with_raw(server):
    backend = OpenAIBackend(_config(server, max_retries=2))
    texts = ["[fault:500*all] a", "[fault:400*all] b", "[fault:timeout*all] c",
             "[fault:drop*all] d", "[fault:malformed*all] e", "[fault:empty*all] f"]
    gens = backend.generate([_req(t) for t in texts])
    errors = [g.error for g in gens]
    assert errors[0].startswith("http_500") and '"boom"' in gens[0].raw
    assert errors[1] == "http_400" and server.calls[texts[1]] == 1  # not retried
    assert errors[2].startswith("timeout") and errors[3].startswith("connection_error")
    assert errors[4].startswith("malformed_response") and gens[4].raw.startswith('{"choices"')
    assert errors[5].startswith("malformed_response: empty choices")
    assert all(server.calls[t] == 3 for t in texts if "400" not in t)


def test_stage_routes_every_request_and_never_leaks_the_key(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    texts = [f"question {i}" for i in range(6)] + [
        "[fault:500*1] g", "[fault:429*1] h", "[fault:drop*1] i", "[fault:empty*1] j",
        "[fault:badanswer*1] k",  # schema fails once, the retry passes
        "[fault:500*all] l", "[fault:400*all] m", "[fault:badanswer*all] n"]
    reqs = [_req(t, payload={"row": i}) for i, t in enumerate(texts)]
    result, main, dead = run_generate(reqs, _config(server, max_retries=2), stage="oa")
    assert sorted(r.key for r in main) == sorted(texts[:11])
    assert sorted(d["record_id"] for d in dead) == sorted(texts[11:])
    for r in main:
        assert r.parsed == ({"answer": r.key},) and r.payload == {"row": texts.index(r.key)}
    by_id = {d["record_id"]: d for d in dead}
    assert by_id["[fault:badanswer*all] n"]["error"].startswith("schema_violation")
    assert json.loads(by_id["[fault:badanswer*all] n"]["raw"])["answer"] == '{"wrong": 1}'
    assert by_id["[fault:400*all] m"]["error"] == "http_400"
    assert all(d["stage"] == "oa" and json.loads(d["raw"])["messages"] for d in dead)
    c = counters(result, "oa")
    assert c["requests"] == 14 and c["failures"] == 3
    # g h i j: one transport retry each; k: one schema retry; l: 2 transport; m: none; n: 1 schema
    assert c["retries"] == 1 + 1 + 1 + 1 + 1 + 2 + 0 + 1
    assert c["completion_tokens"] > 0 and c["prompt_tokens"] > 0
    everything = repr(main) + repr(dead) + caplog.text + json.dumps(c)
    assert KEY not in everything


def test_second_run_makes_zero_model_calls(server, tmp_path):
    cfg = _config(server, cache=True, cache_dir=str(tmp_path / "cache"), batch_size=3)
    reqs = [_req(f"cached question {i}") for i in range(7)] + [_req("cached question 0")]
    reqs[-1] = ChatRequest(key="dup", messages=reqs[0].messages, json_schema=SCHEMA)
    first, main1, dead1 = run_generate(reqs, cfg, stage="cache")
    c1 = counters(first, "cache")
    assert len(main1) == 8 and not dead1
    assert c1["requests"] == 8 and c1.get("cache_hits", 0) == 0
    assert c1["model_calls"] == 7 == server.total_calls()  # identical requests share a call
    assert len(list((tmp_path / "cache").glob("*.jsonl"))) == 3  # one file per model batch
    second, main2, dead2 = run_generate(reqs, cfg, stage="cache")
    c2 = counters(second, "cache")
    assert c2["requests"] == 8 and c2["cache_hits"] == 8
    assert c2.get("model_calls", 0) == 0 and server.total_calls() == 7
    assert all(r.cached for r in main2) and not dead2
    assert sorted((r.key, r.texts) for r in main2) == sorted((r.key, r.texts) for r in main1)
    # a changed template version misses the cache
    bumped = [ChatRequest(key=r.key, messages=r.messages, json_schema=SCHEMA,
                          template_version="v2") for r in reqs[:2]]
    third, _, _ = run_generate(bumped, cfg, stage="cache")
    assert counters(third, "cache")["model_calls"] == 2


def test_stage_in_a_test_pipeline_with_assert_that(server):
    cfg = _config(server)
    reqs = [_req(f"q{i}") for i in range(5)] + [_req("[fault:400*all] x")]
    from transforms.base import DEADLETTER, MAIN
    from transforms.llm.generate import Generate

    with TestPipeline() as p:
        out = p | beam.Create(reqs) | Generate(cfg, stage="ta")
        assert_that(out[MAIN] | beam.Map(lambda r: (r.key, r.parsed[0]["answer"])),
                    equal_to([(f"q{i}", f"q{i}") for i in range(5)]), label="main")
        assert_that(out[DEADLETTER] | beam.Map(lambda d: (d["record_id"], d["error"])),
                    equal_to([("[fault:400*all] x", "http_400")]), label="dead")


def test_two_generate_steps_in_one_pipeline_share_the_cache(server, tmp_path):
    """A stage may call Generate more than once (e.g. generate, then verify)."""
    from transforms.base import MAIN
    from transforms.llm.generate import Generate

    cfg = _config(server, cache=True, cache_dir=str(tmp_path / "c"))
    with TestPipeline() as p:
        first = p | "Reqs" >> beam.Create([_req("step one")]) | "Ask" >> Generate(cfg, stage="s1")
        second = (first[MAIN]
                  | beam.Map(lambda r: _req("step two: " + r.parsed[0]["answer"]))
                  | "Verify" >> Generate(cfg, stage="s2"))
        assert_that(second[MAIN] | beam.Map(lambda r: r.parsed[0]["answer"]),
                    equal_to(["step two: step one"]))
    assert server.total_calls() == 2


@pytest.mark.slow
def test_multi_process_runner_keeps_every_request(server, tmp_path):
    """Workers in separate processes each load their backend; the cache written by them is
    found by the next run (in this process: reading the cache is no worker's business)."""
    cfg = _config(server, cache=True, cache_dir=str(tmp_path / "mp"), batch_size=4)
    reqs = [_req(f"mp {i}") for i in range(10)] + [_req("[fault:400*all] mp")]
    opts = {"direct_running_mode": "multi_processing", "direct_num_workers": 2}
    result, main, dead = run_generate(reqs, cfg, stage="mp", options=opts)
    assert sorted(r.key for r in main) == sorted(f"mp {i}" for i in range(10))
    assert [d["record_id"] for d in dead] == ["[fault:400*all] mp"]
    assert server.total_calls() == 11
    again, main2, _ = run_generate(reqs, cfg, stage="mp")
    assert counters(again, "mp")["cache_hits"] == 10 and server.total_calls() == 12
    assert all(r.cached for r in main2)


def test_unwritable_cache_does_not_lose_answers(server, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    cfg = _config(server, cache=True, cache_dir=str(blocker / "cache"))
    result, main, dead = run_generate([_req("w1"), _req("w2")], cfg, stage="wr")
    assert sorted(r.key for r in main) == ["w1", "w2"] and not dead
    assert counters(result, "wr")["cache_write_errors"] == 1
