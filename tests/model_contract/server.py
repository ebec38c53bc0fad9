"""One generic scripted OpenAI-compatible server on 127.0.0.1 for the contract cases: the
model name picks the case and role (`contract.role_model`), the case's `reply` the answer
(JSON text, an HTTP status, or a hang-up); n choices when a request asks for n. Any other
model name is answered 404, so a request sent with the wrong role's block fails."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.llm._loopback import LoopbackServer
from tests.model_contract.contract import ModelStageCase, role_model


class ContractServer(LoopbackServer):
    def __init__(self, cases: list[ModelStageCase], roles: dict[str, list[str]]) -> None:
        """`roles`: stage → its roles (each served under `role_model(stage, role)`)."""
        self.routes = {role_model(c.stage, r): (c, r) for c in cases for r in roles[c.stage]}
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []  # (model, last message)
        super().__init__()

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model, prompt = body.get("model", ""), str(body["messages"][-1]["content"])
        with self.lock:
            self.requests.append((model, prompt))
        if model not in self.routes:
            return self.send_json(h, 404, b'{"error": "unknown model"}')
        case, role = self.routes[model]
        reply = case.reply(role, prompt)
        if reply is None:
            h.close_connection = True
            h.connection.shutdown(2)
            return None
        if isinstance(reply, int):
            return self.send_json(h, reply, b'{"error": "scripted failure"}')
        text = reply if isinstance(reply, str) else json.dumps(reply)
        n = int(body.get("n") or 1)
        out = {"id": "x", "object": "chat.completion", "model": model,
               "choices": [{"index": i, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text}}
                           for i in range(n)],
               "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 8 * n}}
        return self.send_json(h, 200, json.dumps(out).encode())
