"""The respond stage's report as pure accumulator functions (merged with kit.merge_combine):
counts of answered rows, pairs and rejections by reason."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Acc = dict[str, Any]


def empty() -> Acc:
    return {"answered": 0, "pairs": 0, "rejected": {}}


def add(acc: Acc, event: tuple[str, str | None, int]) -> Acc:
    """event: ("answered" | "pairs", None, n) or ("rejected", reason, n)."""
    kind, reason, n = event
    if kind == "rejected":
        acc["rejected"][reason] = acc["rejected"].get(reason, 0) + n
    else:
        acc[kind] += n
    return acc


def merge(accs: Iterable[Acc]) -> Acc:
    out = empty()
    for acc in accs:
        add(out, ("answered", None, acc["answered"]))
        add(out, ("pairs", None, acc["pairs"]))
        for reason, n in acc["rejected"].items():
            add(out, ("rejected", reason, n))
    return out


def finish(acc: Acc) -> dict[str, Any]:
    return {"stage": "respond", "answered": acc["answered"], "pairs": acc["pairs"],
            "rejected": dict(sorted(acc["rejected"].items()))}
