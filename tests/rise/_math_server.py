"""A deterministic math model behind a real OpenAI-compatible server on 127.0.0.1.

Two model names, one per role. The policy model (`policy_model`) answers a solve request (the
user message is the question) with the scripted samples of that question, cycled to `n`
choices; a question scripted as None makes it fail with HTTP 500. The editor model
(`editor_model`) reads the question and the sentences to rewrite from the self-edit prompt and
answers {"rewritten": ...} as the question's edit behaviour says: good (the last number + 1
everywhere),
admit (good, then confesses the mistake), large (good plus a long tail), noop (unchanged),
keep (the first number + 1: the correct final answer stays), same (a word changed, numbers
kept), garbage (no JSON at all). Every request body is recorded; any other model name is a 400.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.llm._loopback import LoopbackServer

_NUM = re.compile(r"\d+(?:\.\d+)?")
_EDIT = re.compile(r"Problem:\n(?P<q>.*?)\n\n.*shown here:\n(?P<r>.*?)\n\nYour rewrite", re.S)
_LONG = (" We also note that the pages were read slowly and carefully in the evening, one after "
         "another, while the rain kept falling on the roof and the tea went cold on the table "
         "beside the old lamp in the quiet room.")


def _bump(text: str, which: int) -> str:
    nums = list(_NUM.finditer(text))
    if not nums:
        return text + " twice"
    m = nums[which]
    return text[:m.start()] + str(int(float(m.group(0))) + 1) + text[m.end():]


def _wrong_result(text: str) -> str:
    """Every occurrence of the last number + 1: a wrong result, carried to the stated answer."""
    nums = _NUM.findall(text)
    if not nums:
        return text + " twice"
    last = nums[-1]
    return re.sub(rf"(?<![\d.]){re.escape(last)}(?![\d.])", str(int(float(last)) + 1), text)


EDITS = {
    "good": _wrong_result,
    "admit": lambda r: _wrong_result(r) + " That was a mistake.",
    "large": lambda r: _wrong_result(r) + _LONG,
    "noop": lambda r: r,
    "keep": lambda r: _bump(r, 0),
    "same": lambda r: r.replace("pages", "books").replace("eggs", "items"),
}


class MathServer(LoopbackServer):
    def __init__(self, script: dict[str, tuple[list[str] | None, str]], policy_model: str,
                 editor_model: str):
        self.script, self.policy_model, self.editor_model = script, policy_model, editor_model
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        super().__init__()

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self.lock:
            self.bodies.append(body)
        n = int(body.get("n", 1))
        if body.get("model") == self.policy_model:
            samples, _ = self.script[body["messages"][-1]["content"]]
            if samples is None:
                return self.send_json(h, 500, b'{"error": "model down"}')
            texts = [samples[i % len(samples)] for i in range(n)]
        elif body.get("model") == self.editor_model:
            m = _EDIT.search(body["messages"][-1]["content"])
            behaviour = self.script[m.group("q")][1] if m else "garbage"
            texts = ["I would rather not."] * n if behaviour == "garbage" else \
                [json.dumps({"rewritten": EDITS[behaviour](m.group("r"))})] * n
        else:
            return self.send_json(h, 400, b'{"error": "unknown model"}')
        reply = {"id": "x", "object": "chat.completion", "model": body["model"],
                 "choices": [{"index": i, "message": {"role": "assistant", "content": t},
                              "finish_reason": "stop"} for i, t in enumerate(texts)],
                 "usage": {"prompt_tokens": 10, "completion_tokens": 10 * n}}
        return self.send_json(h, 200, json.dumps(reply).encode())

    def requests_for(self, model: str) -> list[dict[str, Any]]:
        with self.lock:
            return [b for b in self.bodies if b.get("model") == model]
