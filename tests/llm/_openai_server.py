"""A small OpenAI-compatible chat server on 127.0.0.1 for tests, with injectable faults.

A directive in the last message, e.g. `[fault:500*2]`, makes the server misbehave for the first
2 calls with that message, then answer normally. Faults: 500, 429 (Retry-After: 1), timeout
(sleeps past the client's timeout), drop (closes the connection without a response), malformed
(invalid JSON body), empty (no choices), 400 (not retryable), badanswer (content that fails
the schema). `*all` makes it permanent. A normal answer is {"answer": <message text>}, after
`delay_s` (a model's service time). `peak` is the most requests it was serving at once.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.llm._loopback import LoopbackServer

FAULT = re.compile(r"\[fault:(\w+)\*(\d+|all)\]")


class ChatServer(LoopbackServer):
    def __init__(self, api_key: str = "test-key", hang_s: float = 2.0, delay_s: float = 0.0):
        self.api_key = api_key
        self.hang_s = hang_s
        self.delay_s = delay_s
        self.in_flight = self.peak = 0
        self.calls: Counter[str] = Counter()  # per last message
        self.bodies: list[dict[str, Any]] = []
        self.auth_ok = 0
        self.lock = threading.Lock()
        super().__init__()

    def total_calls(self) -> int:
        return sum(self.calls.values())

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            self._answer(h, body)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _answer(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        text = body["messages"][-1]["content"]
        with self.lock:
            self.calls[text] += 1
            call = self.calls[text]
            self.bodies.append(body)
            if h.headers.get("Authorization") == f"Bearer {self.api_key}":
                self.auth_ok += 1
        m = FAULT.search(text)
        fault = None
        if m and (m.group(2) == "all" or call <= int(m.group(2))):
            fault = m.group(1)
        if fault == "500":
            return self.send_json(h, 500, b'{"error": "boom"}')
        if fault == "429":
            return self.send_json(h, 429, b'{"error": "slow down"}', {"Retry-After": "1"})
        if fault == "400":
            return self.send_json(h, 400, b'{"error": "bad request"}')
        if fault == "timeout":
            time.sleep(self.hang_s)
        if fault == "drop":
            h.close_connection = True
            h.connection.close()
            return None
        if fault == "malformed":
            return self.send_json(h, 200, b'{"choices": [{"message": ')
        if fault == "empty":
            return self.send_json(h, 200, json.dumps({"choices": [], "usage": {}}).encode())
        if self.delay_s:
            time.sleep(self.delay_s)
        content = json.dumps({"wrong": 1}) if fault == "badanswer" else json.dumps({"answer": text})
        n = int(body.get("n", 1))
        reply = {
            "id": "x", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": i, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"} for i in range(n)],
            "usage": {"prompt_tokens": len(text.split()), "completion_tokens": 5 * n},
        }
        return self.send_json(h, 200, json.dumps(reply).encode())
