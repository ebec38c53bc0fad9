"""The vllm backend's batching and arguments on CPU: the `vllm` module is replaced at its API
boundary (`vllm.LLM`, `vllm.SamplingParams`, `vllm.sampling_params.StructuredOutputsParams`)
by a stand-in that records every engine and every `chat` call and answers from the prompt.
Real generation on a GPU is in test_vllm_backend.py (marked gpu)."""

from __future__ import annotations

import json
import sys
from types import ModuleType, SimpleNamespace

import apache_beam as beam
import pytest

from tests.llm.helpers import counters, run_generate
from transforms.base import DEADLETTER, MAIN
from transforms.llm import backend_vllm
from transforms.llm.api import ChatRequest, SamplingParams
from transforms.llm.config import LLMConfig
from transforms.llm.generate import Generate

SCHEMA_N = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
SCHEMA_S = {"type": "object", "properties": {"s": {"type": "string"}}, "required": ["s"]}


class RecordingEngine:
    """Stands in for `vllm.LLM`: answers {"n": len(prompt)} or {"s": prompt} per the request's
    schema; '[bad]' prompts answer prose on their first (greedy) try; a batch holding a
    '[raise]' prompt raises, as a poisoned vLLM batch would."""

    engines: list[RecordingEngine] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls: list[tuple[list, list]] = []
        RecordingEngine.engines.append(self)

    def chat(self, messages, sampling_params, use_tqdm=True):
        assert len(messages) == len(sampling_params) and use_tqdm is False
        self.calls.append((messages, sampling_params))
        if any("[raise]" in m[-1]["content"] for m in messages):
            raise RuntimeError("CUDA error: device-side assert triggered")
        outs = []
        for msgs, sp in zip(messages, sampling_params, strict=True):
            text = msgs[-1]["content"]
            schema = sp.structured_outputs.json
            answer = {"n": len(text)} if "n" in schema["properties"] else {"s": text}
            body = "Sure! Here it is." if "[bad]" in text and sp.temperature == 0 else \
                json.dumps(answer)
            outs.append(SimpleNamespace(
                prompt_token_ids=list(range(len(text.split()))),
                outputs=[SimpleNamespace(text=body, token_ids=[7] * 4, logprobs=None, finish_reason="stop")
                         for _ in range(sp.n)]))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    module = ModuleType("vllm")
    module.LLM = RecordingEngine
    module.SamplingParams = lambda **kw: SimpleNamespace(**kw)
    module.sampling_params = SimpleNamespace(
        StructuredOutputsParams=lambda **kw: SimpleNamespace(**kw))
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setattr(backend_vllm, "_ENGINES", {})
    RecordingEngine.engines = []
    return module


def _config(**kw) -> LLMConfig:
    base = dict(backend="vllm", model="/models/qwen", cache=False, progress=False, retries=1,
                tensor_parallel_size=2, gpu_memory_utilization=0.6, max_model_len=4096)
    base.update(kw)
    return LLMConfig(**base)


def _req(i: int, text: str | None = None) -> ChatRequest:
    return ChatRequest(key=f"k{i}", messages=(("user", text or f"prompt number {i}"),),
                       json_schema=SCHEMA_N if i % 2 else SCHEMA_S,
                       sampling=SamplingParams(max_tokens=32, seed=i))


def test_defaults_send_thousands_of_prompts_per_call():
    cfg = LLMConfig(backend="vllm", model="m")
    assert cfg.batch_size == 2048 and cfg.tensor_parallel_size == 1


def test_one_chat_call_per_large_batch_with_per_request_schemas(fake_vllm):
    """2,500 requests, batch 2,048: two engine calls (2,048 + 452), one engine for the worker
    built from the config, each prompt with its own schema and seed."""
    reqs = [_req(i) for i in range(2500)]
    result, main, dead = run_generate(reqs, _config(), stage="vb")
    assert len(main) == 2500 and not dead
    (engine,) = RecordingEngine.engines
    assert engine.kwargs == {"model": "/models/qwen", "tensor_parallel_size": 2,
                             "gpu_memory_utilization": 0.6, "enforce_eager": False,
                             "seed": 0, "trust_remote_code": False, "max_model_len": 4096}
    assert sorted(len(msgs) for msgs, _ in engine.calls) == [452, 2048]
    by_key = {r.key: r for r in main}
    for msgs, params in engine.calls:
        for m, sp in zip(msgs, params, strict=True):
            i = int(m[-1]["content"].rsplit(" ", 1)[1])
            assert sp.structured_outputs.json == (SCHEMA_N if i % 2 else SCHEMA_S)
            assert (sp.seed, sp.max_tokens, sp.temperature) == (i, 32, 0.0)
            assert by_key[f"k{i}"].parsed[0] == ({"n": len(m[-1]["content"])} if i % 2
                                                  else {"s": m[-1]["content"]})
    c = counters(result, "vb")
    assert c["model_calls"] == 2500 and c["completion_tokens"] == 4 * 2500


def test_schema_retries_go_back_as_one_smaller_call(fake_vllm):
    reqs = [_req(i) for i in range(10)] + [_req(10 + i, f"[bad] prompt {i}") for i in range(3)]
    _, main, dead = run_generate(reqs, _config(batch_size=64, retry_temperature=0.5),
                                 stage="vr")
    assert len(main) == 13 and not dead
    (engine,) = RecordingEngine.engines
    assert [len(msgs) for msgs, _ in engine.calls] == [13, 3]
    retried = engine.calls[1][1]
    assert all(sp.temperature == 0.5 and sp.seed not in (10, 11, 12) for sp in retried)


def test_two_steps_share_one_engine_per_process(fake_vllm):
    cfg = _config(batch_size=8)
    with beam.Pipeline() as p:
        first = p | beam.Create([_req(i) for i in range(5)]) | "Ask" >> Generate(cfg, stage="s1")
        second = (first[MAIN]
                  | beam.Map(lambda r: _req(100, f"check {r.key}"))
                  | "Check" >> Generate(cfg, stage="s2"))
        _ = second[DEADLETTER] | beam.Map(lambda d: pytest.fail(f"dead letter: {d}"))
    assert len(RecordingEngine.engines) == 1
    assert sum(len(msgs) for msgs, _ in RecordingEngine.engines[0].calls) == 10


def test_a_poisoned_batch_is_retried_one_by_one(fake_vllm):
    backend = backend_vllm.VLLMBackend(_config())
    reqs = [_req(0), _req(1, "[raise] this one breaks"), _req(2)]
    gens = backend.generate(reqs)
    assert gens[0].error is None and gens[2].error is None
    assert gens[1].error.startswith("vllm_error: RuntimeError: CUDA error")
    assert [len(msgs) for msgs, _ in RecordingEngine.engines[0].calls] == [3, 1, 1, 1]
