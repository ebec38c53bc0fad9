"""Step-level preference pairs in the RISE / Step-DPO trainer layout (`preference_steps/`).

One row per step pair: `prompt` (the messages the solution was generated from),
`initial_reason_steps` (the shared correct prefix, verbatim), `chosen` / `rejected` (the correct
step and the edited step that continue it), `answer` (the gold final answer) as top-level
columns; `edit_span` is the edited region of `rejected` in word tokens ([start, end), tokens as
`transforms.rise.filters.tokens` cuts them) and `edit_char_span` the same region in characters,
so a trainer can weight the edited tokens. `id` equals the id of the same pair in
`preference/` (conversational form), `meta` is the PreferencePair meta.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from schemas.records import MESSAGES, PAIR_SCHEMA, SOURCE, _schema_with_meta

STEP_PAIR_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("prompt", MESSAGES),
        ("initial_reason_steps", pa.string()),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("answer", pa.string()),
        ("edit_span", pa.list_(pa.int32())),
        ("edit_char_span", pa.list_(pa.int32())),
        ("source", SOURCE),
        ("meta", PAIR_SCHEMA.field("meta").type),
    ]
)


def step_pairs_to_batch(rows: Sequence[Mapping[str, Any]]) -> pa.RecordBatch:
    """Step-pair row dicts → RecordBatch (STEP_PAIR_SCHEMA plus any extra meta fields)."""
    return pa.RecordBatch.from_pylist(list(rows), schema=_schema_with_meta(STEP_PAIR_SCHEMA, rows))


def conversational(row: Mapping[str, Any]) -> dict[str, Any]:
    """A STEP_PAIR_SCHEMA row as the conversational pair (PAIR_SCHEMA shape) it was made from:
    chosen / rejected = the shared prefix + the step, meta.prefix_chars = where the step starts
    (the export to RISE's file and the report read step pairs this way)."""
    prefix = row["initial_reason_steps"]
    return {"id": row["id"], "prompt": row["prompt"], "source": row.get("source"),
            "chosen": [{"role": "assistant", "content": prefix + row["chosen"]}],
            "rejected": [{"role": "assistant", "content": prefix + row["rejected"]}],
            "meta": {**row["meta"], "pair_kind": "step", "prefix_chars": len(prefix)}}
