"""A scripted teacher and policy behind one OpenAI-compatible server on 127.0.0.1.

The step is read from the prompt (each template opens differently), the scenario from a marker
in the instruction ([tie], [zero], [trunc]); every call is recorded as (step, model). Answers:
- compress: 3 fixed tags; tag: 2 tags + one per "Moreover" in the query (so a rebuilt question
  has more); expand: the i-th call for a prompt gets candidate i (of 3) of its scenario;
- reconstruct: keeps the second old tag and the new one, appends a harder sentence;
- respond: an answer, cut at the budget (finish_reason "length") for [trunc].
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.llm._loopback import LoopbackServer

CANDIDATES = {
    "happy": ["Complexity Analysis", "Emoji", "Edge Cases"],
    "trunc": ["Complexity Analysis", "Emoji", "Edge Cases"],
    # distinct tags the embedder cannot tell apart, and one repeating an existing tag
    "tie": ["Café Culture", "Cafe Culture", "Algorithms"],
    # one usable tag, one answer that fails the schema (dead-lettered), one repeat
    "zero": ["Complexity Analysis", None, "Searching"],
}
_MARKER = re.compile(r"\[(tie|zero|trunc)\]")
_SECTION = re.compile(r"(?:Instruction|Original instruction|User query):\n(.*?)\n\nAnswer with",
                      re.DOTALL)


def step_of(prompt: str) -> str:
    if prompt.startswith("Describe the instruction below with exactly"):
        return "compress"
    if prompt.startswith("Identify the tags of user intentions"):
        return "tag"
    if prompt.startswith("An instruction has been summarized"):
        return "expand"
    if prompt.startswith("The instruction below is described by these tags"):
        return "reconstruct"
    return "respond"


class TeacherPolicyServer(LoopbackServer):
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []  # (step, model)
        self.per_prompt: Counter[str] = Counter()
        self.lock = threading.Lock()
        super().__init__()

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        prompt = body["messages"][-1]["content"]
        step = step_of(prompt)
        with self.lock:
            self.calls.append((step, body["model"]))
            self.per_prompt[prompt] += 1
            nth = self.per_prompt[prompt] - 1
        text = m.group(1) if (m := _SECTION.search(prompt)) else prompt
        scenario = marker.group(1) if (marker := _MARKER.search(text)) else "happy"
        finish = "stop"
        if step == "compress":
            content = json.dumps({"tags": ["Algorithms", "Explanation", "Searching"]})
        elif step == "tag":
            n = 2 + text.count("Moreover")
            content = json.dumps({"tags": [{"tag": t, "explanation": "needed"} for t in
                                           ["algorithms", "searching", "proof", "edge cases",
                                            "complexity analysis", "rotation"][:n]]})
        elif step == "expand":
            tag = CANDIDATES[scenario][nth % 3]
            content = json.dumps({"tag": tag, "explanation": "harder"}) if tag else \
                json.dumps({"wrong": 1})
        elif step == "reconstruct":
            old = re.search(r"described by these tags: (.*)\.\n", prompt).group(1).split(", ")
            new = re.search(r"proposed to make it harder: (.*)\.\n", prompt).group(1)
            content = json.dumps({"tags_used": [old[1], new], "question": (
                f"{text} Moreover, prove the bound for the worst case with {new}, and say what "
                "changes when the input is rotated, empty, or full of duplicate values.")})
        else:
            content = "It halves the interval at every step, so it needs O(log n) comparisons."
            if "[trunc]" in prompt:
                content, finish = "It halves the interval at every", "length"
        reply = {"id": "x", "object": "chat.completion", "model": body["model"],
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                              "finish_reason": finish}],
                 "usage": {"prompt_tokens": len(prompt.split()),
                           "completion_tokens": len(content.split())}}
        self.send_json(h, 200, json.dumps(reply).encode())
