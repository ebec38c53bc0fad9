"""Assistant prefill (`ChatRequest.prefill`) on every backend: the OpenAI-compatible body (the
assistant turn + vLLM/SGLang's `continue_final_message`), vLLM's offline `chat` call (with a
stand-in engine that records it), the local model's chat template (the real tokenizer, and one
real generation), and the cache key."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from transforms.llm.api import ChatRequest, SamplingParams
from transforms.llm.backend_openai import build_payload
from transforms.llm.cache import cache_key
from transforms.llm.config import LLMConfig

MSGS = (("system", "You are a helpful assistant."), ("user", "What is 2 + 3?"))
PREFILL = "Let's think step by step.\nStep 1: "


def test_openai_body_continues_the_assistant_turn() -> None:
    cfg = LLMConfig(backend="openai", model="m")
    body = build_payload(ChatRequest("k", MSGS, prefill=PREFILL), cfg)
    assert body["messages"][-1] == {"role": "assistant", "content": PREFILL}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    plain = build_payload(ChatRequest("k", MSGS), cfg)
    assert [m["role"] for m in plain["messages"]] == ["system", "user"]
    assert "continue_final_message" not in plain and "add_generation_prompt" not in plain


def test_cache_key_includes_the_prefill_only_when_set() -> None:
    a = ChatRequest("k", MSGS)
    assert cache_key(a, "m") != cache_key(ChatRequest("k", MSGS, prefill=PREFILL), "m")
    assert cache_key(ChatRequest("k", MSGS, prefill="x"), "m") != cache_key(
        ChatRequest("k", MSGS, prefill="y"), "m")
    # requests without a prefill keep their key (caches of earlier runs stay valid)
    assert cache_key(a, "m") == cache_key(ChatRequest("k", MSGS, prefill=""), "m")


class _Engine:
    """Stands in for vllm.LLM: records each chat call's messages and template switches."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Any], dict[str, Any]]] = []

    def chat(self, messages: list[Any], sampling_params: Any, use_tqdm: bool,
             **kw: Any) -> list[Any]:
        self.calls.append((messages, kw))
        out = SimpleNamespace(text="5", token_ids=[1], finish_reason="stop", logprobs=None)
        return [SimpleNamespace(outputs=[out], prompt_token_ids=[1, 2]) for _ in messages]


def test_vllm_offline_chat_continues_the_final_message() -> None:
    from transforms.llm.backend_vllm import VLLMBackend

    backend = VLLMBackend.__new__(VLLMBackend)
    backend.llm = _Engine()
    backend._vllm = SimpleNamespace(SamplingParams=lambda **kw: kw,
                                    sampling_params=SimpleNamespace())
    reqs = [ChatRequest("a", MSGS, prefill=PREFILL), ChatRequest("b", MSGS),
            ChatRequest("c", MSGS, prefill=PREFILL)]
    gens = backend.generate(reqs)
    assert [g.texts for g in gens] == [["5"], ["5"], ["5"]]
    by_kw = {bool(kw.get("continue_final_message")): (msgs, kw) for msgs, kw in backend.llm.calls}
    assert len(backend.llm.calls) == 2  # one call per template switch
    msgs, kw = by_kw[True]
    assert kw == {"add_generation_prompt": False, "continue_final_message": True}
    assert len(msgs) == 2 and all(m[-1] == {"role": "assistant", "content": PREFILL}
                                  for m in msgs)
    msgs, kw = by_kw[False]
    assert kw == {} and msgs[0][-1]["role"] == "user"  # a plain call passes no switches


@pytest.mark.slow
@pytest.mark.model
def test_local_model_continues_the_prefill() -> None:
    from transforms.llm.backend_local import LocalBackend

    backend = LocalBackend(LLMConfig(backend="local"))
    req = ChatRequest("k", MSGS, prefill=PREFILL,
                      sampling=SamplingParams(max_tokens=8, temperature=0.0))
    rendered = backend.render(req)
    assert rendered.endswith(PREFILL)  # the open assistant turn, no end-of-turn after it
    assert backend.render(ChatRequest("k", MSGS)).rstrip().endswith("assistant")
    (gen,) = backend.generate([req])
    assert gen.error is None and gen.texts and not gen.texts[0].startswith(PREFILL)
