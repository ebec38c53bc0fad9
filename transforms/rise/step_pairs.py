"""Step pairs: a shared correct prefix, then the correct step (chosen) or the edited one (rejected).

A step pair is a PAIR_SCHEMA row in conversational form (chosen = prefix + correct step,
rejected = prefix + edited step, for DPO trainers; meta.pair_kind = step, meta.prefix_chars).
`step_row` derives from it the STEP_PAIR_SCHEMA row in RISE's trainer layout
(schemas/step_pairs.py) with the same id, the token-level `edit_span` and the character
`edit_char_span` of the edit inside the rejected step.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from schemas.step_pairs import step_pairs_to_batch
from transforms.rise.answers import strip_boxed
from transforms.rise.filters import computation_changed, tokens_with_offsets
from transforms.rise.pairs import Problem, make_pair
from transforms.rise.steps import diff_span


def token_span(text: str, start: int, end: int) -> list[int]:
    """[first, last) indices of the word tokens of `text` that overlap chars [start, end); an
    empty edit (a deletion) is the empty span at the token that follows it."""
    toks = tokens_with_offsets(text)
    hit = [i for i, (s, e) in enumerate(toks) if s < end and e > start]
    if hit:
        return [hit[0], hit[-1] + 1]
    k = next((i for i, (s, _) in enumerate(toks) if s >= start), len(toks))
    return [k, k]


def make_step_pair(
    problem: Problem,
    prompt: list[dict[str, str]],
    prefix: str,
    chosen_step: str,
    rejected_step: str,
    *,
    method: str,
    error_type: str | None,
    step_index: int,
    strip_rejected_boxed: bool = True,
    model: str | None = None,
    template_version: str | None = None,
    edit_distance: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The PAIR_SCHEMA row of one edited step (pair_kind step, meta.prefix_chars = the length
    of `prefix`, the solution text before the step, verbatim)."""
    if strip_rejected_boxed:
        rejected_step = strip_boxed(rejected_step)
    row = make_pair(problem, prefix + chosen_step, prefix + rejected_step, method, error_type,
                    step_index, strip_rejected_boxed=False, model=model,
                    template_version=template_version, edit_distance=edit_distance,
                    extra=extra, prompt=prompt, pair_kind="step",
                    result_changed=computation_changed(chosen_step, rejected_step))
    row["meta"]["prefix_chars"] = len(prefix)
    return row


def step_row(pair: dict[str, Any]) -> dict[str, Any]:
    """The STEP_PAIR_SCHEMA row of a step pair's PAIR_SCHEMA row (same id)."""
    meta = pair["meta"]
    k = meta["prefix_chars"]
    chosen, rejected = pair["chosen"][0]["content"], pair["rejected"][0]["content"]
    chosen_step, rejected_step = chosen[k:], rejected[k:]
    s, e, _ = diff_span(strip_boxed(chosen_step), rejected_step)
    return {
        "id": pair["id"],
        "prompt": pair["prompt"],
        "initial_reason_steps": chosen[:k],
        "chosen": chosen_step,
        "rejected": rejected_step,
        "answer": json.loads(meta["extra"])["gold"],
        "edit_span": token_span(rejected_step, s, e),
        "edit_char_span": [s, e],
        "source": pair["source"],
        "meta": meta,
    }


def step_rows_batch(batch: pa.RecordBatch) -> pa.RecordBatch | None:
    """The step pairs of a pair batch in RISE's layout, or None when it holds none."""
    rows = [step_row(r) for r in batch.to_pylist() if r["meta"].get("pair_kind") == "step"]
    return step_pairs_to_batch(rows) if rows else None
