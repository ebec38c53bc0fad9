"""TAG-INSTRUCT tag-policy pairs in the authors' ShareGPT-style layout (`tag_policy_sharegpt/`).

The same pairs as `tag_policy/` (TRL's conversational prompt/chosen/rejected, PAIR_SCHEMA), one
row each: `conversations` (the prompt turns as {from, value}: system, human), `chosen` and
`rejected` (one {from: gpt, value} turn each), as the authors' build_preference.py writes them
and LLaMA-Factory reads a ShareGPT ranking dataset (`ranking: true`, formatting `sharegpt`).
`id` equals the pair's id in `tag_policy/`; `meta` is the PreferencePair meta.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from schemas.records import PAIR_SCHEMA, _schema_with_meta

TURN = pa.struct([("from", pa.string()), ("value", pa.string())])
SHAREGPT_PAIR_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("conversations", pa.list_(TURN)),
    ("chosen", TURN),
    ("rejected", TURN),
    ("meta", PAIR_SCHEMA.field("meta").type),
])
_FROM = {"system": "system", "user": "human", "assistant": "gpt"}


def sharegpt_row(pair: dict[str, Any]) -> dict[str, Any]:
    """One PreferencePair row (conversational) → its ShareGPT ranking row."""
    def turn(message: dict[str, str]) -> dict[str, str]:
        return {"from": _FROM.get(message["role"], message["role"]), "value": message["content"]}

    return {"id": pair["id"], "conversations": [turn(m) for m in pair["prompt"]],
            "chosen": turn(pair["chosen"][-1]), "rejected": turn(pair["rejected"][-1]),
            "meta": pair["meta"]}


def to_sharegpt(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A PreferencePair batch → the same pairs as a SHAREGPT_PAIR_SCHEMA batch."""
    rows = [sharegpt_row(r) for r in batch.to_pylist()]
    return pa.RecordBatch.from_pylist(rows, schema=_schema_with_meta(SHAREGPT_PAIR_SCHEMA, rows))
