"""vllm backend: the engine and sampling arguments it builds (pure), and a real generation
through the Beam stage where a GPU and vLLM are present."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from transforms.llm.api import ChatRequest, SamplingParams
from transforms.llm.backend_vllm import engine_kwargs, sampling_kwargs, to_sampling_params
from transforms.llm.config import LLMConfig

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def test_engine_kwargs_from_config():
    cfg = LLMConfig(backend="vllm", model="Qwen/Qwen2.5-7B-Instruct", tensor_parallel_size=2,
                    gpu_memory_utilization=0.7, max_model_len=4096, dtype="bfloat16",
                    enforce_eager=True, vllm_kwargs={"max_num_seqs": 64})
    assert engine_kwargs(cfg) == {
        "model": "Qwen/Qwen2.5-7B-Instruct", "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.7, "enforce_eager": True, "seed": 0,
        "trust_remote_code": False, "dtype": "bfloat16", "max_model_len": 4096,
        "max_num_seqs": 64}
    plain = engine_kwargs(LLMConfig(backend="vllm", model="m"), model_path="/models/m")
    assert plain["model"] == "/models/m" and "max_model_len" not in plain and "dtype" not in plain
    assert plain["gpu_memory_utilization"] == 0.85 and plain["tensor_parallel_size"] == 1


def test_sampling_kwargs_from_request():
    req = ChatRequest(key="k", messages=(("user", "x"),), json_schema=SCHEMA, logprobs=4,
                      sampling=SamplingParams(temperature=0.7, top_p=0.9, max_tokens=33, n=3,
                                              seed=11, stop=("END",)))
    assert sampling_kwargs(req) == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 33, "n": 3,
                                    "seed": 11, "stop": ["END"], "logprobs": 4,
                                    "json_schema": SCHEMA}
    bare = sampling_kwargs(ChatRequest(key="k", messages=(("user", "x"),)))
    assert set(bare) == {"temperature", "top_p", "max_tokens", "n", "seed"}


@pytest.mark.parametrize("new_api", [True, False])
def test_schema_goes_to_the_installed_structured_output_class(new_api):
    """Which vLLM class carries the schema depends on the release; stand-in classes record it."""
    def record(name):
        return lambda **kw: (name, kw)

    sp = SimpleNamespace(GuidedDecodingParams=record("guided"))
    if new_api:
        sp.StructuredOutputsParams = record("structured")
    vllm = SimpleNamespace(sampling_params=sp, SamplingParams=lambda **kw: kw)
    req = ChatRequest(key="k", messages=(("user", "x"),), json_schema=SCHEMA)
    params = to_sampling_params(sampling_kwargs(req), vllm)
    field, expected = ("structured_outputs", "structured") if new_api else \
        ("guided_decoding", "guided")
    assert params[field] == (expected, {"json": SCHEMA}) and "json_schema" not in params


@pytest.mark.gpu
def test_real_vllm_generation_through_the_stage(tmp_path):
    pytest.importorskip("vllm", reason="vllm comes with the gpu extra (pip install -e .[gpu])")
    import jsonschema

    from tests.llm.helpers import counters, run_generate

    cfg = LLMConfig(backend="vllm", gpu_memory_utilization=0.3, enforce_eager=True,
                    max_model_len=2048, cache=False, batch_size=8)
    reqs = [ChatRequest(key=str(i), messages=(("user", f"Give the number {i} as JSON."),),
                        json_schema=SCHEMA, sampling=SamplingParams(max_tokens=32, seed=i))
            for i in range(8)]
    result, main, dead = run_generate(reqs, cfg, stage="vllm")
    assert not dead and len(main) == 8
    for r in main:
        jsonschema.validate(json.loads(r.texts[0]), SCHEMA)
    assert counters(result, "vllm")["completion_tokens"] > 0


@pytest.mark.gpu
def test_real_vllm_takes_thousands_of_prompts_in_one_call(monkeypatch):
    """2,048 prompts with per-request schemas reach the engine as one `LLM.chat` call (schema
    retries, if any, as later calls holding only the failures), and every answer is valid."""
    vllm = pytest.importorskip("vllm", reason="vllm comes with the gpu extra (pip install -e .[gpu])")
    import jsonschema

    from tests.llm.helpers import counters, run_generate

    sizes: list[int] = []
    chat = vllm.LLM.chat

    def counting_chat(self, messages, *args, **kwargs):
        sizes.append(len(messages))
        return chat(self, messages, *args, **kwargs)

    monkeypatch.setattr(vllm.LLM, "chat", counting_chat)
    word = {"type": "object", "properties": {"word": {"type": "string", "maxLength": 12}},
            "required": ["word"]}
    cfg = LLMConfig(backend="vllm", gpu_memory_utilization=0.3, enforce_eager=True,
                    max_model_len=1024, cache=False, progress=False)
    reqs = [ChatRequest(key=str(i), messages=(("user", f"Answer in JSON. Number {i}?"),),
                        json_schema=SCHEMA if i % 2 else word,
                        sampling=SamplingParams(max_tokens=24, seed=i)) for i in range(2048)]
    result, main, dead = run_generate(reqs, cfg, stage="vllm_big")
    assert sizes[0] == 2048 and all(s < 2048 for s in sizes[1:])
    assert len(main) + len(dead) == 2048
    for r in main:
        jsonschema.validate(json.loads(r.texts[0]), SCHEMA if int(r.key) % 2 else word)
    c = counters(result, "vllm_big")
    assert c["prompt_tokens"] > 0 and c["completion_tokens"] > 0
