"""A fault-injecting OpenAI-compatible server on 127.0.0.1 for the reliability tests. The last
user message picks the behaviour, so one server serves every case:

- contains `[drip]`: a valid answer sent a few bytes at a time over `drip_s` seconds;
- contains `[forever]`: headers, then one byte at a time until the client hangs up;
- otherwise the `script` (a callable: call number → action) decides: "ok", "500", "429"
  (with Retry-After: 1), "drop" (closes the connection without answering) or "drip".
Every answer is "Answer: " + the last user message; `seen` holds the last user message of every
request, in the order they arrived."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.llm._loopback import LoopbackServer


def answer_bytes(model: str, text: str) -> bytes:
    return json.dumps({
        "id": "x", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 4}}).encode()


class FaultServer(LoopbackServer):
    def __init__(self, script: Callable[[int], str] | None = None, drip_s: float = 4.0) -> None:
        self.script = script or (lambda n: "ok")
        self.drip_s = drip_s
        self.calls = 0
        self.seen: list[str] = []
        self.lock = threading.Lock()
        super().__init__()

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        last = body["messages"][-1]["content"]
        with self.lock:
            self.calls += 1
            n = self.calls
            self.seen.append(last)
        action = "drip" if "[drip]" in last else "forever" if "[forever]" in last \
            else self.script(n)
        payload = answer_bytes(body.get("model", ""), f"Answer: {last}")
        try:
            if action == "500":
                return self.send_json(h, 500, b'{"error": "injected"}')
            if action == "429":
                return self.send_json(h, 429, b'{"error": "slow down"}', {"Retry-After": "1"})
            if action == "drop":
                h.close_connection = True
                h.connection.shutdown(2)
                return None
            if action in ("drip", "forever"):
                h.send_response(200)
                h.send_header("Content-Type", "application/json")
                h.send_header("Content-Length", str(len(payload) if action == "drip" else 1 << 30))
                h.end_headers()
                chunks = [payload[i:i + 8] for i in range(0, len(payload), 8)]
                pause = self.drip_s / max(1, len(chunks))
                while True:
                    for chunk in chunks if action == "drip" else [b" "]:
                        h.wfile.write(chunk)
                        h.wfile.flush()
                        time.sleep(pause if action == "drip" else 0.05)
                    if action == "drip":
                        return None
            return self.send_json(h, 200, payload)
        except (BrokenPipeError, ConnectionResetError, OSError):
            return None
