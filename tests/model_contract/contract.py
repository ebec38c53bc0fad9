"""The model-stage contract: one case per registered stage that calls a model.

A case says how to switch the stage on (`settings`, its `stages.<stage>` block; the test adds
`roles`, one model name per role, all served by one scripted OpenAI-compatible server on
127.0.0.1), the few input rows, the good answer of every request, which requests belong to the
failing `step`, and two bad answers of that step: one that cannot be read and one that a rule
rejects (with the rule's reason). tests/model_contract/test_contract.py runs each case once
through the real pipeline (`pipeline.run.run_config`) on one input row per mode, the row
carrying `marker(mode)` in its text (and the good answers carrying it on, so every prompt made
from the row shows it): good (→ an output), HTTP 500 and a closed connection (→ dead letter,
stage and step named), the unreadable answer (→ rejected/ `<step>_unparseable` with the raw
answer) and the rule (→ rejected/ with its reason).
Cases live in `cases_<family>.py` files of this folder, each with a `CASES` list.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Answer = str | dict[str, Any] | list[Any]
"""A scripted answer: text as is, or a JSON value (sent as its JSON text)."""

MODES = ("good", "http_500", "drop", "unparseable", "rule")
_MARKER = re.compile(r"\[contract:(\w+)\]")


def marker(mode: str) -> str:
    """The text an input row carries so that every prompt made from it picks `mode`."""
    return f"[contract:{mode}]"


def mode_of(text: str) -> str:
    """The mode marked in `text` ('good' when none)."""
    m = _MARKER.search(text)
    return m.group(1) if m else "good"


def role_model(stage: str, role: str) -> str:
    """The model name the test gives `role` of `stage` (the server tells roles apart by it)."""
    return f"{stage}-{role}"


@dataclass(frozen=True)
class ModelStageCase:
    """One model-calling stage under the contract (see the module docstring).

    `row(text)` is an input row (a JSON object for a JSONL source) whose instruction holds
    `text` (which includes the mode's marker); `answer(role, prompt)` is the good answer of a
    request (`prompt`: its last message); `is_step(role, prompt)` is True for the requests of
    `step`: those whose prompt carries a failure mode's marker get that failure. `unparseable` and `rule` are answers of
    `step`; `rule_reason` the reason the rule rejects with. `deadletter_stage` is the stage
    named in dead-letter entries (default `stage`); `reject_stage` the reject_stage of its
    rejected rows (default `stage`). `sets` are extra `--set KEY=VALUE` overrides."""

    stage: str
    step: str
    settings: dict[str, Any]
    row: Callable[[str], dict[str, Any]]
    answer: Callable[[str, str], Answer]
    is_step: Callable[[str, str], bool]
    unparseable: Answer
    rule: Answer
    rule_reason: str
    deadletter_stage: str | None = None
    reject_stage: str | None = None
    sets: tuple[str, ...] = field(default_factory=tuple)
    name: str = ""  # a label when a stage has several cases (default: the stage)
    is_rule_step: Callable[[str, str], bool] | None = None  # where `rule` goes (default is_step)

    @property
    def id(self) -> str:
        return self.name or self.stage

    @property
    def unparseable_reason(self) -> str:
        return f"{self.step}_unparseable"

    def reply(self, role: str, prompt: str) -> Answer | int | None:
        """What the server sends: an Answer, an HTTP status (int) or None (hang up)."""
        mode = mode_of(prompt)
        target = self.is_rule_step if mode == "rule" and self.is_rule_step else self.is_step
        if mode == "good" or not target(role, prompt):
            return self.answer(role, prompt)
        return {"http_500": 500, "drop": None, "unparseable": self.unparseable,
                "rule": self.rule}[mode]
