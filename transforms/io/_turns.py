"""Conversation helpers of the layout adapters: lists of turns (ShareGPT's from/value,
OpenAI's role/content, or either mix) and 'Human:'/'Assistant:' transcripts → messages."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from transforms.io._rows import AdapterError, msg, text_field

SHAREGPT_ROLES = {
    "system": "system", "developer": "system", "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bing": "assistant",
    "bard": "assistant", "model": "assistant", "function_call": "assistant",
    "tool_call": "assistant", "observation": "tool", "function": "tool", "tool": "tool",
}
OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user",
                "assistant": "assistant", "tool": "tool", "function": "tool"}
_TRANSCRIPT = re.compile(r"(?:^|\n\n)(Human|Assistant|H|A):\s?", re.MULTILINE)


def _first(turn: Mapping[str, Any], keys: Sequence[str]) -> tuple[str, Any]:
    for k in keys:
        if k in turn:
            return k, turn[k]
    return keys[0], None


def turns_to_messages(raw: Any, roles: Mapping[str, str], role_keys: Sequence[str],
                      content_keys: Sequence[str]) -> list[dict[str, str]]:
    """A list of turn objects → messages; the first present of `role_keys` / `content_keys`
    names the speaker / holds the text (tool calls become JSON text)."""
    if not isinstance(raw, list):
        raise AdapterError(f"conversation should be a list of turns, got {type(raw).__name__}")
    messages = []
    for i, turn in enumerate(raw):
        if not isinstance(turn, Mapping):
            raise AdapterError(f"turn {i} should be an object, got {type(turn).__name__}")
        role_key, speaker = _first(turn, role_keys)
        speaker = str(speaker or "").strip().lower()
        if speaker not in roles:
            raise AdapterError(f"turn {i}: unknown role {turn.get(role_key)!r}")
        content_key, content = _first(turn, content_keys)
        if content is None and turn.get("tool_calls"):
            content = json.dumps(turn["tool_calls"], ensure_ascii=False, sort_keys=True)
        elif content is None and turn.get("function_call"):
            content = json.dumps(turn["function_call"], ensure_ascii=False, sort_keys=True)
        messages.append(msg(roles[speaker], text_field(content, f"turn {i} {content_key}")))
    return messages


def parse_transcript(text: str) -> list[dict[str, str]]:
    """'\\n\\nHuman: ...\\n\\nAssistant: ...' → messages."""
    marks = list(_TRANSCRIPT.finditer(text))
    if not marks:
        raise AdapterError("transcript has no 'Human:'/'Assistant:' turns")
    messages = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        role = "user" if m.group(1) in ("Human", "H") else "assistant"
        messages.append(msg(role, text[m.end():end]))
    return messages


def as_messages(value: Any, what: str, default_role: str) -> list[dict[str, str]]:
    """A message list, a transcript string or plain text (one `default_role` message)."""
    if isinstance(value, list):
        return turns_to_messages(value, OPENAI_ROLES, ("role",), ("content",))
    text = text_field(value, what)
    if _TRANSCRIPT.search(text):
        return parse_transcript(text)
    return [msg(default_role, text)]
