"""An OpenAI-compatible /v1/chat/completions server on 127.0.0.1 that answers with the real
local model (transforms.llm LocalBackend), honouring `response_format.json_schema` the way
`vllm serve` does. Lets the compound stage run with `llm.backend: openai` in tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from transforms.llm.api import ChatRequest, SamplingParams
from transforms.llm.config import LLMConfig


class LocalModelServer:
    def __init__(self) -> None:
        from transforms.llm.backend_local import LocalBackend

        self.backend = LocalBackend(LLMConfig(progress=False))
        self.lock = threading.Lock()
        self.calls = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                payload = json.dumps(server.answer(body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

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

    def __enter__(self) -> LocalModelServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
