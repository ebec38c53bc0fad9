"""Format adapters: one raw row (a dict from any supported layout) → canonical messages.

Pure functions, no Beam. `detect_layout` votes on a sample of rows; `adapt_row` converts one
row or raises `AdapterError` with a message that ends up in the dead letter.
Layouts: alpaca, sharegpt, openai, dolly, qa, preference.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LAYOUTS = ("openai", "sharegpt", "preference", "dolly", "alpaca", "qa")

SHAREGPT_ROLES = {
    "system": "system", "human": "user", "user": "user", "gpt": "assistant",
    "assistant": "assistant", "chatgpt": "assistant", "bing": "assistant", "bard": "assistant",
    "model": "assistant", "function_call": "assistant", "tool_call": "assistant",
    "observation": "tool", "function": "tool", "tool": "tool",
}
OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user",
                "assistant": "assistant", "tool": "tool", "function": "tool"}
QA_PAIRS = (("question", "answer"), ("problem", "solution"), ("query", "response"),
            ("question", "response"), ("prompt", "completion"))
_TRANSCRIPT = re.compile(r"(?:^|\n\n)(Human|Assistant|H|A):\s?", re.MULTILINE)


class AdapterError(ValueError):
    """A row that cannot become a canonical record; the message says why."""


@dataclass
class Adapted:
    """One converted row: an example (messages) or a preference pair (prompt/chosen/rejected)."""

    kind: str  # "example" | "pair"
    messages: list[dict[str, str]] = field(default_factory=list)
    prompt: list[dict[str, str]] = field(default_factory=list)
    chosen: list[dict[str, str]] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def _layout_of(row: Mapping[str, Any]) -> str | None:
    keys = set(row)
    if isinstance(row.get("messages"), list):
        return "openai"
    if any(isinstance(row.get(k), list) for k in ("conversations", "conversation")):
        return "sharegpt"
    if "chosen" in keys and "rejected" in keys:
        return "preference"
    if "instruction" in keys and "response" in keys:
        return "dolly"
    if "instruction" in keys and "output" in keys:
        return "alpaca"
    if any(q in keys and a in keys for q, a in QA_PAIRS):
        return "qa"
    return None


def detect_layout(rows: Sequence[Mapping[str, Any]]) -> str:
    """The layout most sample rows match; AdapterError if none does."""
    votes = Counter(found for r in rows if isinstance(r, Mapping) and (found := _layout_of(r)))
    if not votes:
        keys = sorted({k for r in rows if isinstance(r, Mapping) for k in r})[:20]
        raise AdapterError(f"cannot detect the layout from fields {keys}; set `layout` and "
                           "`field_map` on the source")
    return votes.most_common(1)[0][0]


def _text(value: Any, what: str, required: bool = True) -> str:
    if value is None:
        if required:
            raise AdapterError(f"missing field {what!r}")
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, Mapping) for p in value):
        # OpenAI content parts: keep the text parts.
        return "\n".join(str(p.get("text", "")) for p in value if p.get("type", "text") == "text")
    raise AdapterError(f"field {what!r} should be text, got {type(value).__name__}")


def _apply_map(row: Mapping[str, Any], field_map: Mapping[str, str]) -> dict[str, Any]:
    out = dict(row)
    for canonical, source in field_map.items():
        if source not in row:
            raise AdapterError(f"field_map: source field {source!r} (for {canonical!r}) is missing")
        out[canonical] = row[source]
    return out


def _extra(row: Mapping[str, Any], used: set[str]) -> str | None:
    rest = {k: v for k, v in row.items() if k not in used}
    return json.dumps(rest, ensure_ascii=False, sort_keys=True, default=str) if rest else None


def _msg(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def _alpaca(row: Mapping[str, Any]) -> Adapted:
    instruction = _text(row.get("instruction"), "instruction")
    extra_input = _text(row.get("input"), "input", required=False)
    prompt = f"{instruction}\n\n{extra_input}" if extra_input.strip() else instruction
    messages = [_msg("user", prompt), _msg("assistant", _text(row.get("output"), "output"))]
    system = _text(row.get("system"), "system", required=False)
    if system.strip():
        messages.insert(0, _msg("system", system))
    return Adapted("example", messages=messages,
                   meta={"extra": _extra(row, {"instruction", "input", "output", "system"})})


def _dolly(row: Mapping[str, Any]) -> Adapted:
    instruction = _text(row.get("instruction"), "instruction")
    context = _text(row.get("context"), "context", required=False)
    prompt = f"{instruction}\n\n{context}" if context.strip() else instruction
    messages = [_msg("user", prompt), _msg("assistant", _text(row.get("response"), "response"))]
    category = row.get("category")
    return Adapted("example", messages=messages, meta={
        "category": str(category) if category is not None else None,
        "context": context or None,
        "extra": _extra(row, {"instruction", "context", "response", "category"})})


def _qa(row: Mapping[str, Any]) -> Adapted:
    for q, a in QA_PAIRS:
        if q in row and a in row:
            messages = [_msg("user", _text(row[q], q)), _msg("assistant", _text(row[a], a))]
            used = {q, a}
            meta: dict[str, Any] = {}
            if a != "answer" and row.get("answer") is not None:
                meta["answer"] = str(row["answer"])  # e.g. MATH: solution + final answer
                used.add("answer")
            if row.get("context") is not None:
                meta["context"] = _text(row["context"], "context", required=False) or None
                used.add("context")
            meta["extra"] = _extra(row, used)
            return Adapted("example", messages=messages, meta=meta)
    raise AdapterError("no question/answer field pair (question/answer, problem/solution, ...)")


def _turns(raw: Any, roles: Mapping[str, str], role_key: str, content_key: str) -> list[dict]:
    if not isinstance(raw, list):
        raise AdapterError(f"conversation should be a list of turns, got {type(raw).__name__}")
    messages = []
    for i, turn in enumerate(raw):
        if not isinstance(turn, Mapping):
            raise AdapterError(f"turn {i} should be an object, got {type(turn).__name__}")
        speaker = str(turn.get(role_key, "")).strip().lower()
        if speaker not in roles:
            raise AdapterError(f"turn {i}: unknown role {turn.get(role_key)!r}")
        content = turn.get(content_key)
        if content is None and turn.get("tool_calls"):
            content = json.dumps(turn["tool_calls"], ensure_ascii=False, sort_keys=True)
        elif content is None and turn.get("function_call"):
            content = json.dumps(turn["function_call"], ensure_ascii=False, sort_keys=True)
        messages.append(_msg(roles[speaker], _text(content, f"turn {i} {content_key}")))
    return messages


def _sharegpt(row: Mapping[str, Any]) -> Adapted:
    key = "conversations" if "conversations" in row else "conversation"
    messages = _turns(row.get(key), SHAREGPT_ROLES, "from", "value")
    system = _text(row.get("system"), "system", required=False)
    if system.strip() and not (messages and messages[0]["role"] == "system"):
        messages.insert(0, _msg("system", system))
    return Adapted("example", messages=messages, meta={"extra": _extra(row, {key, "system"})})


def _openai(row: Mapping[str, Any]) -> Adapted:
    messages = _turns(row.get("messages"), OPENAI_ROLES, "role", "content")
    return Adapted("example", messages=messages, meta={"extra": _extra(row, {"messages"})})


def parse_transcript(text: str) -> list[dict[str, str]]:
    """'\\n\\nHuman: ...\\n\\nAssistant: ...' → messages."""
    marks = list(_TRANSCRIPT.finditer(text))
    if not marks:
        raise AdapterError("transcript has no 'Human:'/'Assistant:' turns")
    messages = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        role = "user" if m.group(1) in ("Human", "H") else "assistant"
        messages.append(_msg(role, text[m.end():end]))
    return messages


def _as_messages(value: Any, what: str, default_role: str) -> list[dict[str, str]]:
    if isinstance(value, list):
        return _turns(value, OPENAI_ROLES, "role", "content")
    text = _text(value, what)
    if _TRANSCRIPT.search(text):
        return parse_transcript(text)
    return [_msg(default_role, text)]


def _preference(row: Mapping[str, Any]) -> Adapted:
    chosen = _as_messages(row.get("chosen"), "chosen", "assistant")
    rejected = _as_messages(row.get("rejected"), "rejected", "assistant")
    if row.get("prompt") is not None:
        prompt = _as_messages(row["prompt"], "prompt", "user")
    else:  # transcripts: the shared turns before the last assistant turn are the prompt
        if len(chosen) < 2 or chosen[:-1] != rejected[:-1]:
            raise AdapterError("chosen and rejected transcripts do not share a prompt")
        prompt, chosen, rejected = chosen[:-1], chosen[-1:], rejected[-1:]
    for name, msgs in (("chosen", chosen), ("rejected", rejected)):
        if len(msgs) > 1 and msgs[:-1] == prompt:
            msgs[:] = msgs[-1:]
        if not msgs or msgs[-1]["role"] != "assistant":
            raise AdapterError(f"{name} must end with an assistant turn")
    return Adapted("pair", prompt=prompt, chosen=chosen, rejected=rejected,
                   meta={"extra": _extra(row, {"prompt", "chosen", "rejected"})})


ADAPTERS = {"alpaca": _alpaca, "sharegpt": _sharegpt, "openai": _openai, "dolly": _dolly,
            "qa": _qa, "preference": _preference}


def adapt_row(layout: str, row: Any, field_map: Mapping[str, str] | None = None) -> Adapted:
    """Convert one raw row of `layout` (after applying `field_map`). Without a field map, a
    row whose own fields clearly match another layout (files that mix layouts) is converted
    with that one."""
    if not isinstance(row, Mapping):
        raise AdapterError(f"a record should be an object, got {type(row).__name__}")
    if field_map:
        return ADAPTERS[layout](_apply_map(row, field_map))
    own = _layout_of(row)
    return ADAPTERS[own if own is not None and own != layout else layout](row)
