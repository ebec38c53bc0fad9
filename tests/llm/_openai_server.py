"""A small OpenAI-compatible chat server on 127.0.0.1 for tests, with injectable faults.

A directive in the last message, e.g. `[fault:500*2]`, makes the server misbehave for the first
2 calls with that message, then answer normally. Faults: 500, 429 (Retry-After: 1), timeout
(sleeps past the client's timeout), drop (closes the connection without a response), malformed
(invalid JSON body), empty (no choices), 400 (not retryable), badanswer (content that fails
the schema). `*all` makes it permanent. A normal answer is {"answer": <message text>}.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULT = re.compile(r"\[fault:(\w+)\*(\d+|all)\]")


class ChatServer:
    def __init__(self, api_key: str = "test-key", hang_s: float = 2.0):
        self.api_key = api_key
        self.hang_s = hang_s
        self.calls: Counter[str] = Counter()  # per last message
        self.bodies: list[dict[str, Any]] = []
        self.auth_ok = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                server.handle(self, body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def total_calls(self) -> int:
        return sum(self.calls.values())

    def _send(self, h: BaseHTTPRequestHandler, status: int, payload: bytes,
              headers: dict[str, str] | None = None) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
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
            return self._send(h, 500, b'{"error": "boom"}')
        if fault == "429":
            return self._send(h, 429, b'{"error": "slow down"}', {"Retry-After": "1"})
        if fault == "400":
            return self._send(h, 400, b'{"error": "bad request"}')
        if fault == "timeout":
            time.sleep(self.hang_s)
        if fault == "drop":
            h.close_connection = True
            h.connection.close()
            return None
        if fault == "malformed":
            return self._send(h, 200, b'{"choices": [{"message": ')
        if fault == "empty":
            return self._send(h, 200, json.dumps({"choices": [], "usage": {}}).encode())
        content = json.dumps({"wrong": 1}) if fault == "badanswer" else json.dumps({"answer": text})
        n = int(body.get("n", 1))
        reply = {
            "id": "x", "object": "chat.completion", "model": body.get("model"),
            "choices": [{"index": i, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"} for i in range(n)],
            "usage": {"prompt_tokens": len(text.split()), "completion_tokens": 5 * n},
        }
        return self._send(h, 200, json.dumps(reply).encode())
