"""A scripted OpenAI-compatible server on 127.0.0.1 for the respond stage, one behaviour per
model name (so each role must reach its own model):

- `responder`: n choices per request; choice k is "BEST …", "OK …" or "BAD …" (k mod 3
  picks which, in the order OK, BEST, BAD) followed by the turn number (assistant turns seen
  + 1) and the last user message. A last message containing `[long]` gets finish_reason
  "length" on every choice, `[cut-first]` on choice 0 only; `[fail]` is answered 500 (a failed call).
- `judge`: reads the rated answer in the judge prompt and rates BEST 6, OK 4, BAD 1 as JSON.
Any other model name is answered 404, so a request sent with the wrong role's block fails.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.llm._loopback import LoopbackServer

GRADES = ("OK", "BEST", "BAD")
RATING = {"BEST": 6, "OK": 4, "BAD": 1}
_RATED = re.compile(r"\b(BEST|OK|BAD) answer\b")


def _reply(model: str, texts: list[str], finish: list[str]) -> bytes:
    return json.dumps({
        "id": "x", "object": "chat.completion", "model": model,
        "choices": [{"index": i, "message": {"role": "assistant", "content": t},
                     "finish_reason": f} for i, (t, f) in enumerate(zip(texts, finish, strict=True))],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5 * len(texts)}}).encode()


class RespondServer(LoopbackServer):
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        super().__init__()

    def by_model(self, model: str) -> list[dict[str, Any]]:
        return [b for b in self.bodies if b.get("model") == model]

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self.lock:
            self.bodies.append(body)
        model, messages = body.get("model"), body["messages"]
        last = messages[-1]["content"]
        if model == "responder" and "[fail]" in last:
            return self.send_json(h, 500, b'{"error": "scripted failure"}')
        if model == "responder":
            n = int(body.get("n", 1))
            turn = 1 + sum(1 for m in messages if m["role"] == "assistant")
            texts = [f"{GRADES[k % 3]} answer, turn {turn}: {last}" for k in range(n)]
            finish = ["length" if "[long]" in last or ("[cut-first]" in last and k == 0)
                      else "stop" for k in range(n)]
            return self.send_json(h, 200, _reply(model, texts, finish))
        if model == "judge":
            found = _RATED.findall(last)
            rating = RATING[found[-1]] if found else 3
            answer = json.dumps({"rating": rating, "reason": "scripted"})
            return self.send_json(h, 200, _reply(model, [answer], ["stop"]))
        return self.send_json(h, 404, json.dumps({"error": f"no model {model!r}"}).encode())
