"""Contract cases of the curation stages that call a model: the quality judge."""

from __future__ import annotations

from typing import Any

from tests.model_contract.contract import ModelStageCase


def _row(text: str) -> dict[str, Any]:
    return {"instruction": f"{text} Name a primary colour.", "output": "Blue is one."}


CASES = [
    ModelStageCase(
        stage="quality", step="judge",
        settings={"enabled": True,
                  "judge": {"enabled": True, "use_logprobs": False, "aspects": ["quality"]},
                  "filters": [{"signal": "q_judge_quality", "op": "<", "value": 2,
                               "reason": "low_judge_rating"}]},
        row=_row,
        answer=lambda role, prompt: {"rating": 5, "reason": "right and clear"},
        is_step=lambda role, prompt: role == "judge",
        unparseable="<<not a rating>>",
        rule={"rating": 1, "reason": "wrong"},
        rule_reason="low_judge_rating",
        deadletter_stage="quality.judge"),
]
