"""Layouts of seed prompts and code tasks: one raw row (fields already folded) → Adapted.

- `prompt`: the first of instruction | prompt | question | query | problem, without any
  response field (Alpaca seeds, IFEval, ...); Alpaca's `input` or Dolly's `context` is joined
  to it, `system` becomes a system turn, a `prompt` holding a message list or a transcript is
  kept as those turns. The example ends with a user turn: a prompt to be answered.
- `mt_bench`: `turns` (strings, or objects with `content`), each a user turn; several turns
  make a conversation to be answered turn by turn. `category` goes to meta.
- `text`: the `text` field as one user turn (only when set explicitly: `text` is also the
  field of plain documents).
- `mbpp`: `text` (or `prompt`) plus the tests of `test_list` as the user turn, `code` as the
  answer (MBPP, full and sanitized).
- `rise_prompt`: the RISE authors' problem file (`instruction` = their chat prompt, Qwen2,
  Llama-3.1 or Mistral, ending in the assistant prefill; `answer` = gold): the question between
  the user header and "\nPlease reason step by step" is the user turn, the gold goes to
  meta.answer, `idx` to meta.extra.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from transforms.io._rows import (
    Adapted,
    AdapterError,
    extra_json,
    joined,
    msg,
    text_field,
    with_system,
)
from transforms.io._turns import as_messages

PROMPT_FIELDS = ("instruction", "prompt", "question", "query", "problem")
PROMPT_ONLY = ("prompt", "mt_bench", "text")  # layouts whose examples end with a user turn
MBPP_TESTS_INTRO = "Your code should pass these tests:"


def _category(row: Mapping[str, Any]) -> str | None:
    return None if row.get("category") is None else str(row["category"])


def prompt_only(row: Mapping[str, Any]) -> Adapted:
    key = next((k for k in PROMPT_FIELDS if row.get(k) is not None), None)
    if key is None:
        raise AdapterError(f"no prompt field (one of {', '.join(PROMPT_FIELDS)})")
    used = {key, "system", "category"}
    meta: dict[str, Any] = {"category": _category(row)}
    if key == "prompt":
        messages = as_messages(row[key], key, "user")
    else:
        text = text_field(row[key], key)
        for side in ("input", "context"):
            if row.get(side) is not None:
                added = text_field(row[side], side, required=False)
                text = joined(text, added)
                used.add(side)
                if side == "context":
                    meta["context"] = added or None
                break
        messages = [msg("user", text)]
    meta["extra"] = extra_json(row, used)
    return Adapted("example", messages=with_system(row, messages), meta=meta)


def _turn_text(turn: Any, i: int) -> str:
    if isinstance(turn, Mapping):
        return text_field(turn.get("content", turn.get("text")), f"turns[{i}] content")
    return text_field(turn, f"turns[{i}]")


def mt_bench(row: Mapping[str, Any]) -> Adapted:
    turns = row.get("turns")
    if not isinstance(turns, list) or not turns:
        raise AdapterError("`turns` should be a non-empty list of prompts")
    messages = [msg("user", _turn_text(t, i)) for i, t in enumerate(turns)]
    return Adapted("example", messages=with_system(row, messages), meta={
        "category": _category(row), "extra": extra_json(row, {"turns", "system", "category"})})


def text_only(row: Mapping[str, Any]) -> Adapted:
    messages = [msg("user", text_field(row.get("text"), "text"))]
    return Adapted("example", messages=with_system(row, messages),
                   meta={"extra": extra_json(row, {"text", "system"})})


def mbpp(row: Mapping[str, Any]) -> Adapted:
    key = "text" if row.get("text") is not None else "prompt"
    task = text_field(row.get(key), key)
    tests = row.get("test_list") or []
    if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
        raise AdapterError("field 'test_list' should be a list of strings")
    prompt = joined(task, f"{MBPP_TESTS_INTRO}\n" + "\n".join(tests) if tests else "")
    messages = [msg("user", prompt), msg("assistant", text_field(row.get("code"), "code"))]
    return Adapted("example", messages=messages,
                   meta={"extra": extra_json(row, {key, "code", "test_list"})})


# where the question starts in the authors' chat prompts (Qwen2, Llama-3.1, Mistral)
_RISE_QUESTION = re.compile(
    r"(?:<\|im_start\|>user\n|user<\|end_header_id\|>\n\n|\[INST\])(.+?)"
    r"\nPlease reason step by step", re.S)


def rise_prompt(row: Mapping[str, Any]) -> Adapted:
    text = text_field(row.get("instruction"), "instruction")
    m = _RISE_QUESTION.search(text)
    if m is None:
        raise AdapterError("instruction: no question between the user header and "
                           "'\\nPlease reason step by step' (not a RISE chat prompt)")
    if row.get("answer") is None:
        raise AdapterError("answer: missing (the gold answer)")
    return Adapted("example", messages=[msg("user", m.group(1))],
                   meta={"answer": str(row["answer"]),
                         "extra": extra_json(row, {"instruction", "answer"})})
