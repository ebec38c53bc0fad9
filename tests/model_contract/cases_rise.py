"""Contract case of the rise stage (self-sample and self-edit, `mode: refinery`): the policy
solves every problem correctly (no incorrect sample, so no full pair: the problem pairs only
through its step edits), the editor's edits are the failing step. An edit is made wrong as in
tests/rise/_math_server.py (its last number + 1 everywhere); the rule is an edit that admits
its error (the `admits_error` filter; the problem is rejected as `edits_rejected`); an
unreadable edit on every step rejects the problem as `edit_unparseable`, a failed edit call
on every step dead-letters it. Paper mode edits only problems that already hold a full pair,
so a failing edit never ends a problem there; its steps are the same kit steps."""

from __future__ import annotations

from typing import Any

from tests.model_contract.contract import ModelStageCase
from tests.rise._math_server import _EDIT, EDITS

SOLUTION = ("Step 1: In 3 days Sam reads 10 * 3 = 30 pages.\n"
            "Step 2: Adding the last day gives 30 + 5 = 35 pages.\n"
            "The answer is \\boxed{35}.")


def _row(text: str) -> dict[str, Any]:
    return {"question": f"{text} Sam reads 10 pages a day for 3 days and then 5 pages on the "
                        "last day. How many pages does he read?", "answer": "#### 35"}


def _edit(prompt: str) -> dict[str, Any]:
    m = _EDIT.search(prompt)
    return {"rewritten": EDITS["good"](m.group("r") if m else "")}


def _answer(role: str, prompt: str) -> Any:
    return SOLUTION if role == "policy" else _edit(prompt)


# every step's edit the same confession: the admits_error filter rejects it
ADMITTING = {"rewritten": "Sam reads 10 * 3 = 31 pages, which was a mistake."}


CASES = [
    ModelStageCase(
        stage="rise", step="edit", name="rise.edit",
        settings={"enabled": True, "mode": "refinery", "methods": ["sampled", "self_edit"],
                  "sampling": {"samples": 2}},
        row=_row, answer=_answer, is_step=lambda role, prompt: role == "editor",
        unparseable="I would rather not.", rule=ADMITTING,
        rule_reason="edits_rejected"),
]
