"""A scripted teacher and policy for the paper mode (bracket formats) behind one
OpenAI-compatible server on 127.0.0.1. Every request is recorded (step, model, sampling,
instruction). Answers:
- compress: `[Tags]` then a comma list of three tags;
- expand: greedy (T=0): `[Explanation] ... [New Tag] <tag>`, except "[notag]" instructions,
  which get no [New Tag] (unparseable); sampled (T>0): the i-th call for a prompt gets
  PAIR_CANDIDATES[i % len], one of them without its [Explanation] (unparseable for pairs);
- reconstruct: `[New Question]` + the question with a sentence naming the new tag;
- respond (Alpaca template): an answer.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.llm._loopback import LoopbackServer

GREEDY_TAG = "Edge Cases"
PAIR_CANDIDATES = ["Complexity Analysis", "Emoji", "Formal Proof", "Greeting", None,
                   "Runtime Bounds", "Small Talk", "Memory Usage", "Proof of Correctness",
                   "Algorithm Design", "Chit Chat", "Hello", "Asymptotic Analysis",
                   "Worst Case", "Data Structures", "Weather", "Invariants", "Recursion",
                   "Caching", "Parallelism"]
_SECTIONS = {  # step → (prompt opening, the instruction is between the last start and end)
    "compress": ("You label instructions", "[Input]\n", "\n\n[Output Format]"),
    "expand": ("Add exactly one new tag", "[Original Question]\n", "\n\nOutput:"),
    "reconstruct": ("Rewrite the original question", "[Original Question]\n", "\n\nOutput:"),
    "respond": ("Below is an instruction that", "### Instruction:\n", "\n\n### Response:"),
}


@dataclass(frozen=True)
class Call:
    step: str
    model: str
    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    instruction: str
    tags: str = ""


def parse_call(body: dict[str, Any]) -> Call:
    prompt = body["messages"][-1]["content"]
    step = next(s for s, (head, _, _) in _SECTIONS.items() if prompt.startswith(head))
    _, start, end = _SECTIONS[step]
    instruction = prompt.rsplit(start, 1)[1].rsplit(end, 1)[0]
    tags = re.findall(r"\[Tags\]\n(.*?)\n\n\[Original Question\]", prompt, re.DOTALL)
    return Call(step, body["model"], body.get("temperature"), body.get("top_p"),
                body.get("max_tokens") or body.get("max_completion_tokens"), instruction,
                tags[-1] if tags and step != "compress" else "")


class PaperServer(LoopbackServer):
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.per_prompt: Counter[str] = Counter()
        self.lock = threading.Lock()
        super().__init__()

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        call = parse_call(body)
        prompt = body["messages"][-1]["content"]
        with self.lock:
            self.calls.append(call)
            if call.temperature:  # the pair path's samples of one prompt: 0..N-1
                self.per_prompt[prompt] += 1
            nth = self.per_prompt[prompt] - 1
        if call.step == "compress":
            content = "[Tags]\nsearch algorithms, explanation, sorted data"
        elif call.step == "expand" and not call.temperature:
            content = ("[Explanation]\nNo answer yet.\n" if "[notag]" in call.instruction else
                       f"[Explanation]\nBoundaries make it harder.\n\n[New Tag]\n{GREEDY_TAG}")
        elif call.step == "expand":
            tag = PAIR_CANDIDATES[nth % len(PAIR_CANDIDATES)]
            content = (f"[Explanation] It adds depth.\n[New Tag] {tag}" if tag else
                       "[New Tag] Missing Explanation")
        elif call.step == "reconstruct":
            new = call.tags.split(", ")[-1]
            content = f"[New Question]\n{call.instruction} Also treat {new} and justify it."
        else:
            content = f"An answer to: {call.instruction[:40]}"
        reply = {"id": "x", "object": "chat.completion", "model": body["model"],
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                              "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": len(prompt.split()),
                           "completion_tokens": len(content.split())}}
        self.send_json(h, 200, json.dumps(reply).encode())
