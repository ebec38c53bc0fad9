"""The respond stage's report as pure accumulator functions (merged with kit.merge_combine):
rows seen (`seeds`), rows not for this stage (already answered), answered rows, pairs,
rejections by reason, failed model calls; `conserved` when every seed is in one of them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Acc = dict[str, Any]


COUNTS = ("seeds", "not_prompt_only", "answered", "pairs", "deadletter")


def empty() -> Acc:
    return {**dict.fromkeys(COUNTS, 0), "rejected": {}}


def add(acc: Acc, event: tuple[str, str | None, int]) -> Acc:
    """event: (one of COUNTS, None, n) or ("rejected", reason, n)."""
    kind, reason, n = event
    if kind == "rejected":
        acc["rejected"][reason] = acc["rejected"].get(reason, 0) + n
    else:
        acc[kind] += n
    return acc


def merge(accs: Iterable[Acc]) -> Acc:
    out = empty()
    for acc in accs:
        for name in COUNTS:
            add(out, (name, None, acc[name]))
        for reason, n in acc["rejected"].items():
            add(out, ("rejected", reason, n))
    return out


def finish(acc: Acc) -> dict[str, Any]:
    rejected = dict(sorted(acc["rejected"].items()))
    ends = acc["not_prompt_only"] + acc["answered"] + sum(rejected.values()) + acc["deadletter"]
    return {"stage": "respond", **{n: acc[n] for n in COUNTS}, "rejected": rejected,
            "conserved": ends == acc["seeds"]}
