"""Per-round report of the stage, from the events its steps emit. Pure.

Events are dicts with `round` and `kind`:
  input                              one instruction entered the round
  compressed   tags                  its compressed tags (complexity / diversity before)
  expanded     rewards, chosen       candidate rewards and the chosen one
  pair                               a tag-policy preference pair was written
  accepted     tags_after            a new example was written
  rejected     reason                the instruction went to rejected/
  deadletter   step                  an LLM call failed
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np


def distribution(values: Iterable[float]) -> dict[str, Any]:
    """count, mean, std, min, quartiles, max (rounded), or just count 0."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return {"count": 0}
    q = np.quantile(arr, [0.25, 0.5, 0.75])
    return {"count": int(arr.size), "mean": round(float(arr.mean()), 6),
            "std": round(float(arr.std()), 6), "min": round(float(arr.min()), 6),
            "p25": round(float(q[0]), 6), "p50": round(float(q[1]), 6),
            "p75": round(float(q[2]), 6), "max": round(float(arr.max()), 6)}


def _mean(values: list[int]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def round_report(round_no: int, events: list[Mapping[str, Any]]) -> dict[str, Any]:
    kinds = Counter(e["kind"] for e in events)
    compressed = [list(e["tags"]) for e in events if e["kind"] == "compressed"]
    accepted = [list(e["tags_after"]) for e in events if e["kind"] == "accepted"]
    expanded = [e for e in events if e["kind"] == "expanded"]
    reasons = Counter(e["reason"] for e in events if e["kind"] == "rejected")
    dead_steps = Counter(e.get("step", "?") for e in events if e["kind"] == "deadletter")
    inputs = kinds["input"]
    settled = kinds["accepted"] + kinds["rejected"] + kinds["deadletter"]
    return {
        "round": round_no,
        "inputs": inputs,
        "accepted": kinds["accepted"],
        "rejected": kinds["rejected"],
        "deadletter": kinds["deadletter"],
        "conserved": inputs == settled,
        "acceptance_rate": round(kinds["accepted"] / inputs, 4) if inputs else None,
        "rejected_by_reason": dict(sorted(reasons.items())),
        "deadletter_by_step": dict(sorted(dead_steps.items())),
        "pairs": kinds["pair"],
        # complexity: tags per instruction; diversity: distinct tags
        "mean_tags_before": _mean([len(t) for t in compressed]),
        "unique_tags_before": len({t for tags in compressed for t in tags}),
        "mean_tags_after": _mean([len(t) for t in accepted]),
        "unique_tags_after": len({t for tags in accepted for t in tags}),
        "reward_chosen": distribution(e["chosen"] for e in expanded),
        "reward_candidates": distribution(r for e in expanded for r in e["rewards"]),
    }


def build_report(events: Iterable[Mapping[str, Any]], rounds: int,
                 utility: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The stage's REPORT dict: one entry per round plus the utility reference sets."""
    by_round: dict[int, list[Mapping[str, Any]]] = {r: [] for r in range(1, rounds + 1)}
    for e in events:
        by_round.setdefault(int(e["round"]), []).append(e)
    per_round = [round_report(r, by_round[r]) for r in sorted(by_round)]
    return {
        "stage": "tag_instruct",
        "rounds": per_round,
        "examples": sum(r["accepted"] for r in per_round),
        "pairs": sum(r["pairs"] for r in per_round),
        "seeds": per_round[0]["inputs"] if per_round else 0,
        "conserved": all(r["conserved"] for r in per_round),
        "utility": dict(utility) if utility is not None else None,
    }
