"""Format adapters: one raw row (a dict from any supported layout) → canonical messages.

Pure functions, no Beam. `detect_layout` votes on a sample of rows; `adapt_row` converts one
row or raises `AdapterError` with a message that ends up in the dead letter. Field names are
folded first ('Best Answer' → best_answer). Layouts: alpaca, sharegpt, openai, dolly, qa,
preference, mbpp, and the prompt-only ones (prompt, mt_bench, text; prompt_layouts.py).
With layout `auto` every row is detected on its own (files that mix layouts).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from transforms.io import prompt_layouts as P
from transforms.io._rows import (
    Adapted,
    AdapterError,
    extra_json,
    fold_key,
    fold_keys,
    joined,
    msg,
    text_field,
    with_system,
)
from transforms.io._turns import (
    OPENAI_ROLES,
    SHAREGPT_ROLES,
    as_messages,
    parse_transcript,
    turns_to_messages,
)

__all__ = ["ADAPTERS", "LAYOUTS", "OPENAI_ROLES", "QA_PAIRS", "SHAREGPT_ROLES", "Adapted",
           "AdapterError", "adapt_row", "detect_layout", "parse_transcript", "resolve_layout"]

AUTO = "auto"
LAYOUTS = ("openai", "sharegpt", "preference", "dolly", "alpaca", "qa", "mbpp", "mt_bench",
           "prompt", "text", "rise_prompt")
QA_PAIRS = (("question", "answer"), ("problem", "solution"), ("query", "response"),
            ("question", "response"), ("prompt", "completion"), ("question", "best_answer"),
            ("prompt", "response"), ("input", "output"),
            ("prompt", "canonical_solution"))  # HumanEval: the reference solution is the answer
# Fields that anchor a row to a layout: a row holding one of them but missing its response
# is a broken row of that layout (dead letter), not a prompt of another one.
_ANCHORS = {"alpaca": {"instruction"}, "dolly": {"instruction"},
            "qa": {q for q, _ in QA_PAIRS}, "preference": {"prompt"}, "mbpp": {"text", "prompt"},
            "rise_prompt": {"instruction"}}
# Every field whose presence (or list-ness) `_layout_of` looks at.
LAYOUT_FIELDS = frozenset({"messages", "conversations", "conversation", "chosen", "rejected",
                           "instruction", "response", "output", "code", "text", "turns",
                           "instances",
                           *P.PROMPT_FIELDS} | {f for p in QA_PAIRS for f in p})


def _layout_of(row: Mapping[str, Any]) -> str | None:
    """The layout a row's own (folded) fields say, or None."""
    keys = {fold_key(k) for k in row}
    row = fold_keys(row)
    if isinstance(row.get("messages"), list):
        return "openai"
    if any(isinstance(row.get(k), list) for k in ("conversations", "conversation")):
        return "sharegpt"
    if "chosen" in keys and "rejected" in keys:
        return "preference"
    if "instruction" in keys and "response" in keys:
        return "dolly"
    if "instruction" in keys and ("output" in keys or isinstance(row.get("instances"), list)):
        return "alpaca"  # instances: self-instruct / Alpaca seed tasks
    if "code" in keys and ("text" in keys or "prompt" in keys):
        return "mbpp"
    if any(q in keys and a in keys for q, a in QA_PAIRS):
        return "qa"
    if isinstance(row.get("turns"), list):
        return "mt_bench"
    if keys.intersection(P.PROMPT_FIELDS):
        return "prompt"
    return None


def layout_error(rows: Sequence[Any]) -> AdapterError:
    keys = sorted({str(k) for r in rows if isinstance(r, Mapping) for k in r})[:20]
    return AdapterError(
        f"cannot detect the layout from fields {keys}; set `layout` (and `field_map`) on the "
        "source, or a `preset` (`refinery layouts` lists both)")


def detect_layout(rows: Sequence[Mapping[str, Any]]) -> str:
    """The layout most sample rows match; AdapterError if none does."""
    votes = Counter(found for r in rows if isinstance(r, Mapping) and (found := _layout_of(r)))
    if not votes:
        raise layout_error(rows)
    return votes.most_common(1)[0][0]


def resolve_layout(layout: str, row: Mapping[str, Any]) -> str:
    """The layout a row is converted with: its file's (`layout`), unless the row's own fields
    clearly say another one (files that mix layouts); with `auto`, its own."""
    own = _layout_of(row)
    if layout == AUTO:
        if own is None:
            raise layout_error([row])
        return own
    if own is None or own == layout:
        return layout
    if own in P.PROMPT_ONLY and _ANCHORS.get(layout, set()) & {fold_key(k) for k in row}:
        return layout  # e.g. an Alpaca row without its output: broken, not a prompt
    return own


def _apply_map(row: Mapping[str, Any], field_map: Mapping[str, str]) -> dict[str, Any]:
    """`row` plus the canonical fields of `field_map`; a source field is found by its exact
    name, else by its folded one ('best_answer' finds 'Best Answer')."""
    out = dict(row)
    folded = {fold_key(k): k for k in row}
    for canonical, source in field_map.items():
        found = source if source in row else folded.get(fold_key(source))
        if found is None:
            raise AdapterError(f"field_map: source field {source!r} (for {canonical!r}) is missing")
        out[fold_key(canonical)] = row[found]
    return out


def _first_instance(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """A seed-task row (instruction, instances [{input, output}, ...]) as an Alpaca row of its
    first instance; the other instances stay in meta.extra."""
    instances = row.get("instances")
    if "output" in row or not isinstance(instances, list) or not instances \
            or not isinstance(instances[0], Mapping):
        return row
    flat = {k: v for k, v in row.items() if k != "instances"}
    flat.update(input=instances[0].get("input"), output=instances[0].get("output"))
    if len(instances) > 1:
        flat["instances"] = instances[1:]
    return flat


def _alpaca(row: Mapping[str, Any]) -> Adapted:
    row = _first_instance(row)
    prompt = joined(text_field(row.get("instruction"), "instruction"),
                    text_field(row.get("input"), "input", required=False))
    messages = [msg("user", prompt), msg("assistant", text_field(row.get("output"), "output"))]
    return Adapted("example", messages=with_system(row, messages),
                   meta={"extra": extra_json(row, {"instruction", "input", "output", "system"})})


def _dolly(row: Mapping[str, Any]) -> Adapted:
    context = text_field(row.get("context"), "context", required=False)
    prompt = joined(text_field(row.get("instruction"), "instruction"), context)
    messages = [msg("user", prompt), msg("assistant", text_field(row.get("response"), "response"))]
    category = row.get("category")
    return Adapted("example", messages=messages, meta={
        "category": str(category) if category is not None else None,
        "context": context or None,
        "extra": extra_json(row, {"instruction", "context", "response", "category"})})


def _qa(row: Mapping[str, Any]) -> Adapted:
    for q, a in QA_PAIRS:
        if q in row and a in row:
            messages = [msg("user", text_field(row[q], q)), msg("assistant", text_field(row[a], a))]
            used = {q, a}
            meta: dict[str, Any] = {}
            if a != "answer" and row.get("answer") is not None:
                meta["answer"] = str(row["answer"])  # e.g. MATH: solution + final answer
                used.add("answer")
            if row.get("context") is not None:
                meta["context"] = text_field(row["context"], "context", required=False) or None
                used.add("context")
            meta["extra"] = extra_json(row, used)
            return Adapted("example", messages=messages, meta=meta)
    raise AdapterError("no question/answer field pair (question/answer, problem/solution, ...)")


def _sharegpt(row: Mapping[str, Any]) -> Adapted:
    key = "conversations" if "conversations" in row else "conversation"
    messages = turns_to_messages(row.get(key), SHAREGPT_ROLES, ("from", "role"),
                                 ("value", "content"))
    return Adapted("example", messages=with_system(row, messages),
                   meta={"extra": extra_json(row, {key, "system"})})


def _openai(row: Mapping[str, Any]) -> Adapted:
    messages = turns_to_messages(row.get("messages"), OPENAI_ROLES, ("role",), ("content",))
    return Adapted("example", messages=messages, meta={"extra": extra_json(row, {"messages"})})


def _preference(row: Mapping[str, Any]) -> Adapted:
    chosen = as_messages(row.get("chosen"), "chosen", "assistant")
    rejected = as_messages(row.get("rejected"), "rejected", "assistant")
    if row.get("prompt") is not None:
        prompt = as_messages(row["prompt"], "prompt", "user")
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
                   meta={"extra": extra_json(row, {"prompt", "chosen", "rejected"})})


ADAPTERS = {"alpaca": _alpaca, "sharegpt": _sharegpt, "openai": _openai, "dolly": _dolly,
            "qa": _qa, "preference": _preference, "mbpp": P.mbpp, "mt_bench": P.mt_bench,
            "prompt": P.prompt_only, "text": P.text_only, "rise_prompt": P.rise_prompt}


def adapt_row(layout: str, row: Any, field_map: Mapping[str, str] | None = None) -> Adapted:
    """Convert one raw row of `layout` (after applying `field_map`, whose source names are the
    row's own). Without a field map the layout is resolved per row (`resolve_layout`)."""
    if not isinstance(row, Mapping):
        raise AdapterError(f"a record should be an object, got {type(row).__name__}")
    if field_map:
        mapped = fold_keys(_apply_map(row, field_map))
        return ADAPTERS[layout if layout != AUTO else resolve_layout(AUTO, mapped)](mapped)
    return ADAPTERS[resolve_layout(layout, row)](fold_keys(row))
