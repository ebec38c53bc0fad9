"""What trl.DPOTrainer reads from a conversational preference row, checked without trl:
`prompt`, `chosen`, `rejected` are lists of {role, content} messages (trl's
`is_conversational`); the prompt ends with a user turn (system turns only before it), chosen and
rejected are one assistant turn each and differ."""

from __future__ import annotations

from typing import Any


def assert_dpo_row(row: dict[str, Any]) -> None:
    for key in ("prompt", "chosen", "rejected"):
        msgs = row[key]
        assert isinstance(msgs, list) and msgs, key
        for m in msgs:
            assert set(m) == {"role", "content"}, (key, m)
            assert isinstance(m["content"], str) and m["content"], (key, m)
    roles = [m["role"] for m in row["prompt"]]
    assert roles[-1] == "user" and set(roles[:-1]) <= {"system", "user", "assistant"}, roles
    assert [m["role"] for m in row["chosen"]] == ["assistant"]
    assert [m["role"] for m in row["rejected"]] == ["assistant"]
    assert row["chosen"][0]["content"] != row["rejected"][0]["content"]
