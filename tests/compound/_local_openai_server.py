"""An OpenAI-compatible /v1/chat/completions server on 127.0.0.1 that answers with the real
local model (transforms.llm LocalBackend), honouring `response_format.json_schema` the way
`vllm serve` does. Lets the compound stage run with `llm.backend: openai` in tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.llm._loopback import LoopbackServer
from transforms.llm.api import ChatRequest, SamplingParams
from transforms.llm.config import LLMConfig


class LocalModelServer(LoopbackServer):
    def __init__(self) -> None:
        from transforms.llm.backend_local import LocalBackend

        self.backend = LocalBackend(LLMConfig(progress=False))
        self.lock = threading.Lock()
        self.calls = 0
        super().__init__()

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        self.send_json(h, 200, json.dumps(self.answer(body)).encode())

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        fmt = body.get("response_format") or {}
        schema = (fmt.get("json_schema") or {}).get("schema")
        req = ChatRequest(
            key="http", messages=tuple((m["role"], m["content"]) for m in body["messages"]),
            sampling=SamplingParams(temperature=float(body.get("temperature", 0.0)),
                                    top_p=float(body.get("top_p", 1.0)),
                                    max_tokens=int(body.get("max_tokens", 256)),
                                    seed=int(body.get("seed", 0))),
            json_schema=schema)
        with self.lock:  # one generation at a time on the CPU
            self.calls += 1
            (gen,) = self.backend.generate([req])
        return {"id": f"cmpl-{self.calls}", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": gen.texts[0]
                                         if gen.texts else ""}}],
                "usage": {"prompt_tokens": gen.prompt_tokens,
                          "completion_tokens": gen.completion_tokens}}
