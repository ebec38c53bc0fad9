"""Contract case of the respond stage: n answers per prompt, rated by the judge. The judge's
answers are the failing step's; the rule is the responder's (an empty answer)."""

from __future__ import annotations

from typing import Any

from tests.model_contract.contract import ModelStageCase


def _answer(role: str, prompt: str) -> Any:
    if role == "responder":
        return f"Here is a short answer to: {prompt}"
    return {"rating": 5, "reason": "right and clear"}


CASES = [
    ModelStageCase(
        stage="respond", step="judge",
        settings={"enabled": True, "n": 2,
                  "judge": {"enabled": True, "use_logprobs": False}},
        row=lambda text: {"instruction": f"{text} Why is the sky blue?"},
        answer=_answer,
        is_step=lambda role, prompt: role == "judge",
        is_rule_step=lambda role, prompt: role == "responder",
        unparseable="<<not a rating>>",
        rule="",
        rule_reason="empty_response",
        deadletter_stage="respond.judge"),
]
