"""The finish reason the stage's `response_truncated` rule reads, from each backend's own
answer shape (the one optional `ChatResult.finish_reason` field), and through the cache."""

from __future__ import annotations

import pytest

from transforms.llm.api import ChatRequest, ChatResult, SamplingParams, overall_finish_reason
from transforms.llm.backend_openai import parse_response
from transforms.llm.cache import entry_from_result, result_from_entry


def test_one_reason_for_n_answers() -> None:
    assert overall_finish_reason(["stop", "length", "stop"]) == "length"
    assert overall_finish_reason([None, "stop"]) == "stop"
    assert overall_finish_reason([None]) is None


def test_openai_body_reason_and_cache_round_trip() -> None:
    body = {"choices": [{"index": 0, "message": {"content": "cut"}, "finish_reason": "length"}]}
    assert parse_response(body, 1).finish_reason == "length"
    body["choices"][0].pop("finish_reason")
    assert parse_response(body, 1).finish_reason is None
    result = ChatResult(key="k", texts=("cut",), finish_reasons=("length",))
    request = ChatRequest(key="k2", messages=(("user", "q"),))
    assert result_from_entry(entry_from_result("c", result), request).finish_reason == "length"
    assert result_from_entry({"texts": ["x"]}, request).finish_reason is None  # old entry


@pytest.mark.slow
@pytest.mark.model
def test_local_model_says_length_when_cut_and_stop_when_done() -> None:
    from transforms.llm.backend_local import LocalBackend
    from transforms.llm.config import LocalLLMConfig

    backend = LocalBackend(LocalLLMConfig(progress=False))
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    cut, done = backend.generate([
        ChatRequest(key="a", messages=(("user", "Write a long story about the sea."),),
                    sampling=SamplingParams(max_tokens=4)),
        ChatRequest(key="b", messages=(("user", "Answer with JSON: is 2 > 1?"),),
                    sampling=SamplingParams(max_tokens=32), json_schema=schema)])
    assert cut.finish_reason == "length" and cut.completion_tokens == 4
    assert done.finish_reason == "stop" and done.texts[0].startswith("{")
