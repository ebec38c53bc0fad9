"""An OpenAI-compatible chat server on 127.0.0.1 that plays the three CQ-Syn roles by model name
(writer, answer, judge), scripted per planted case.

A case is named by a marker `case-<name>` in the seed question, which every prompt of the item
carries; the category is read from the prompt. `script[(case, category, step)]` overrides the
default reply of a step: a dict (sent as JSON), a string (sent as is) or an int (that HTTP
status). Defaults are well-formed items that pass every check for the shared test context.
Every request is recorded with the step it was routed to and its decoding settings.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.llm._loopback import LoopbackServer
from transforms.compound.categories import CATEGORIES

ROLE_MODELS = {"writer": "writer-model", "answer": "answer-model", "judge": "judge-model"}
CONTEXT = ("The Brooklyn Bridge opened in 1883 and crosses the East River. Heavy traffic caused "
           "cracks in the deck, so the city closed two lanes, which slowed commuters. Engineers "
           "rated the cables as safe but the deck as weak. A ferry also crosses the river; it is "
           "slower but cheaper than the bridge.")

GOOD = {
    "Factual-Statement": (["When did the Brooklyn Bridge open?",
                           "Which river does the Brooklyn Bridge cross?"],
                          "When did the Brooklyn Bridge open, and which river does it cross?"),
    "Cause-and-Effect": (["Why did cracks appear in the deck of the Brooklyn Bridge?",
                          "What was the effect of closing two lanes on commuters?"],
                         "Why did cracks appear in the deck of the Brooklyn Bridge, and what was "
                         "the effect of closing two lanes on commuters?"),
    "Hypothetical-Analysis": (["What would happen to commuters if the whole Brooklyn Bridge "
                               "closed?",
                               "How would the ferry across the East River cope with the "
                               "commuters?"],
                              "If the whole Brooklyn Bridge closed, what would happen to "
                              "commuters? How would the ferry across the East River cope with "
                              "them?"),
    "Comparison-and-Selection": (["How does the ferry differ from the Brooklyn Bridge for "
                                  "crossing the East River?",
                                  "Which should a commuter choose to save money?"],
                                 "How does the ferry differ from the Brooklyn Bridge for crossing "
                                 "the East River, and which should a commuter choose to save "
                                 "money?"),
    "Evaluation-and-Suggestion": (["How safe are the cables and the deck of the Brooklyn Bridge?",
                                   "What should the city do about the weak deck?"],
                                  "How safe are the cables and the deck of the Brooklyn Bridge, "
                                  "and what should the city do about the weak deck?"),
}
_CASE = re.compile(r"case-([a-z0-9_]+)")
_SUB = re.compile(r"^\d+\. (.+)$", re.MULTILINE)


def question(category: str) -> dict[str, Any]:
    subs, cq = GOOD[category]
    return {"sub_questions": list(subs), "compound_question": cq}


def answer_for(sub_questions: list[str], tag: str = "") -> dict[str, Any]:
    """A part per sub-question that shares its words and adds facts; the reference joins them
    (`tag` makes answers of different seeds differ)."""
    parts = [f"{sq.rstrip('?')}: according to the passage{tag}, since 1883."
             for sq in sub_questions]
    return {"sub_answers": parts, "answer": " ".join(parts)}


QUESTION_OK = {"reasoning": "One fluent question; both parts come from the passage; right type.",
               "single_compound_question": True, "answerable_from_context": True,
               "matches_type": True}
ANSWER_OK = {"reasoning": "Every part is answered and agrees with the passage.",
             "covers_all_sub_questions": True, "consistent_with_context": True}


# the property that tells each step's answer schema apart (schemas/llm/compound_*.json)
SCHEMA_STEPS = {"compound_question": "question", "sub_answers": "answer",
                "single_compound_question": "question_check",
                "covers_all_sub_questions": "answer_check"}


def step_of_schema(body: dict[str, Any]) -> str:
    """The step of a request by the JSON Schema in its `response_format` (one model name
    serving every role, as a config with a single `llm` block sends)."""
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
    steps = [SCHEMA_STEPS[p] for p in schema.get("properties", {}) if p in SCHEMA_STEPS]
    if len(steps) != 1:
        raise ValueError(f"no compound step's schema in response_format: {schema!r}")
    return steps[0]


def step_of(model: str, prompt: str) -> str:
    if model == ROLE_MODELS["writer"]:
        return "question"
    if model == ROLE_MODELS["answer"]:
        return "answer"
    if model == ROLE_MODELS["judge"]:
        return "question_check" if "reviewer of compound questions" in prompt else "answer_check"
    raise ValueError(f"unknown model {model!r}")


class RoleServer(LoopbackServer):
    """`one_model`: every role is that model name, each request's step read from its schema
    (`step_of_schema`), instead of one model name per role."""

    def __init__(self, script: dict[tuple[str, str, str], Any],
                 one_model: str | None = None) -> None:
        self.script = script
        self.one_model = one_model
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []  # {model, step, case, category, prompt}
        super().__init__()

    def reply(self, step: str, case: str, category: str, prompt: str) -> Any:
        key = (case, category, step)
        if key in self.script:
            return self.script[key]
        if step == "question":
            return question(category)
        if step == "answer":
            return answer_for(_SUB.findall(prompt.split("Sub-questions:")[-1]), f" ({case})")
        return QUESTION_OK if step == "question_check" else ANSWER_OK

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        prompt = body["messages"][-1]["content"]
        if self.one_model is None:
            step = step_of(body["model"], prompt)
        elif body["model"] == self.one_model:
            step = step_of_schema(body)
        else:
            raise ValueError(f"unknown model {body['model']!r}")
        m = _CASE.search(prompt)
        case = m.group(1) if m else "?"
        category = next((c for c in CATEGORIES if c in prompt), "?")
        with self.lock:
            self.requests.append({"model": body["model"], "step": step, "case": case,
                                  "category": category, "prompt": prompt,
                                  "sampling": {k: body.get(k) for k in
                                               ("temperature", "top_p", "max_tokens")}})
        reply = self.reply(step, case, category, prompt)
        if isinstance(reply, int):
            return self.send_json(h, reply, b'{"error": "scripted failure"}')
        content = reply if isinstance(reply, str) else json.dumps(reply)
        out = {"id": "x", "object": "chat.completion", "model": body["model"],
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": content}}],
               "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 20}}
        return self.send_json(h, 200, json.dumps(out).encode())
