"""A scripted policy and editor for the paper mode, behind a real OpenAI-compatible server on
127.0.0.1 (one model name per role). Every request body is recorded.

The policy answers a solve request (its user turn is the question + the paper's suffix; its last
turn the assistant prefill, continued) with the question's scripted continuations, cycled to
`n`, each with its scripted finish_reason ("length": cut by the token limit). The editor reads
the question and the "Current Step" text from the edit prompt and answers, after the prefill's
opening fence, as the question's behaviour says: good (the last number of the text + 1, then
the closing fence), admit (good + a sentence admitting the error), nofence (no closing fence).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.llm._loopback import LoopbackServer

SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."
_EDIT = re.compile(r"^Question:\n```\n(?P<q>.*?)\n```\n\nInitial Answer:\n```\n(?P<a>.*?)\n```"
                   r"\n\nCurrent Step:\n```\n(?P<t>.*?)\n```\n\n(?P<i>.*)$", re.S)
_NUM = re.compile(r"\d+")


def bump_last_number(text: str) -> str:
    nums = list(_NUM.finditer(text))
    if not nums:
        return text + " twice"
    m = nums[-1]
    return text[:m.start()] + str(int(m.group(0)) + 1) + text[m.end():]


class PaperServer(LoopbackServer):
    def __init__(self, script: dict[str, tuple[list[tuple[str, str]], str]], policy: str,
                 editor: str):
        self.script, self.policy, self.editor = script, policy, editor
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        super().__init__()

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self.lock:
            self.bodies.append(body)
        n = int(body.get("n", 1))
        user = body["messages"][1]["content"]
        if body.get("model") == self.policy:
            samples, _ = self.script[user.removesuffix(SUFFIX)]
            choices = [samples[i % len(samples)] for i in range(n)]
        elif body.get("model") == self.editor:
            m = _EDIT.match(user)
            assert m is not None, user
            behaviour = self.script[m.group("q")][1]
            edited = bump_last_number(m.group("t"))
            text = {"good": edited + "\n```", "admit": edited + " That was wrong.\n```",
                    "nofence": edited}[behaviour]
            choices = [(text, "stop")] * n
        else:
            return self.send_json(h, 400, b'{"error": "unknown model"}')
        reply = {"id": "x", "object": "chat.completion", "model": body["model"],
                 "choices": [{"index": i, "message": {"role": "assistant", "content": t},
                              "finish_reason": f} for i, (t, f) in enumerate(choices)],
                 "usage": {"prompt_tokens": 10, "completion_tokens": 10 * n}}
        return self.send_json(h, 200, json.dumps(reply).encode())

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        with self.lock:
            return [b for b in self.bodies if b.get("model") == model]
