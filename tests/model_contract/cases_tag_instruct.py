"""Contract case of TAG-INSTRUCT: one round, the teacher's compress answer is the failing
step (a rule: only placeholder tags, so too few usable ones)."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.model_contract.contract import ModelStageCase
from tests.tag_instruct._teacher_policy_server import step_of

_INSTRUCTION = re.compile(r"(?:Instruction|Original instruction|User query):\n(.*?)\n\n",
                          re.DOTALL)


def _answer(role: str, prompt: str) -> Any:
    step = step_of(prompt)
    if step == "compress":
        return {"tags": ["Algorithms", "Explanation", "Searching"]}
    if step == "tag":
        return {"tags": [{"tag": t, "explanation": "needed"} for t in ("algorithms", "search")]}
    if step == "expand":
        return {"tag": "Edge Cases", "explanation": "harder"}
    if step == "reconstruct":
        m = _INSTRUCTION.search(prompt)
        text = m.group(1) if m else prompt
        return {"tags_used": ["Algorithms", "Edge Cases"],
                "question": f"{text} Moreover, say what happens when the list is empty."}
    return "It halves the interval at every step, so it needs O(log n) comparisons."


CASES = [
    ModelStageCase(
        stage="tag_instruct", step="compress",
        settings={"enabled": True, "rounds": 1, "num_candidates": 2, "fallback_min_count": 1,
                  "instag_tagger": False, "filters": False},
        row=lambda text: {"instruction": f"{text} Explain binary search.",
                          "output": "Binary search halves a sorted range each step."},
        answer=_answer,
        is_step=lambda role, prompt: role == "teacher" and step_of(prompt) == "compress",
        unparseable="Tags: algorithms and such",
        rule=json.loads('{"tags": ["tag 1", "tag 2", "tag 3"]}'),
        rule_reason="compress_too_few_tags"),
]
