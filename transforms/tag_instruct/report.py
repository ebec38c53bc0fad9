"""Per-round report of the stage, folded from the events its steps emit. Pure.

Events are dicts with `round` and `kind`:
  input                              one instruction entered the round
  compressed   tags                  its compress tags (the expansion's input)
  tagged       tags                  the tagger's tags of the instruction (complexity before)
  expanded     rewards, chosen, margin, problems, pair_skip
                                     candidate rewards, the chosen one, best − worst, why some
                                     candidates were dropped, why no pair was written (or None)
  pair_path    rewards, margin, problems, pair_skip
                                     the paper's pair path (best_of_n_rewrite off): the N
                                     pair candidates of one item, scored
  pair                               a tag-policy preference pair was written
  reconstructed kept, offered         how many old tags the teacher kept (of offered)
  accepted     tags_after            a new example was written (its tags: the tagger's of the new
                                     question, or compress tags + new tag without the tagger)
  rejected     reason                the instruction went to rejected/
  deadletter   step                  an LLM call failed (an expand candidate: `candidate` set,
                                     the instruction goes on without it)
The accumulator (`empty` / `add` / `merge`) holds counters, sums and tag sets, so a CombineFn
folds events without gathering them; `finish` turns it into the REPORT dict.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

Acc = dict[int, dict[str, Any]]


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


def _round_acc() -> dict[str, Any]:
    return {"kinds": Counter(), "reasons": Counter(), "dead_steps": Counter(),
            "pair_skip": Counter(), "problems": Counter(), "kept": Counter(),
            "tags_before": [0, 0], "tags_after": [0, 0], "compress_tags": set(),
            "tagger_before": set(), "tagger_after": set(),
            "chosen": [], "candidates": [], "margins": []}


def empty() -> Acc:
    return {}


def add(acc: Acc, e: Mapping[str, Any]) -> Acc:
    """Fold one event into `acc` (in place)."""
    r = acc.setdefault(int(e["round"]), _round_acc())
    kind = e["kind"]
    if kind == "deadletter" and e.get("candidate") is not None:
        r["dead_steps"]["expand_candidate"] += 1
        return acc
    r["kinds"][kind] += 1
    if kind == "compressed":
        r["compress_tags"].update(e["tags"])
    elif kind == "tagged":
        r["tags_before"][0] += len(e["tags"])
        r["tags_before"][1] += 1
        r["tagger_before"].update(e["tags"])
    elif kind == "expanded":
        r["chosen"].append(e["chosen"])
        r["candidates"].extend(e["rewards"])
        r["problems"].update(e.get("problems") or {})
        if e.get("margin") is not None:
            r["margins"].append(e["margin"])
        r["pair_skip"][e.get("pair_skip") or "written"] += 1
    elif kind == "pair_path":
        r["candidates"].extend(e["rewards"])
        r["problems"].update(e.get("problems") or {})
        if e.get("margin") is not None:
            r["margins"].append(e["margin"])
        r["pair_skip"][e.get("pair_skip") or "written"] += 1
    elif kind == "reconstructed":
        r["kept"][f"{e['kept']}_of_{e['offered']}"] += 1
    elif kind == "accepted":
        r["tags_after"][0] += len(e["tags_after"])
        r["tags_after"][1] += 1
        r["tagger_after"].update(e["tags_after"])
    elif kind == "rejected":
        r["reasons"][e["reason"]] += 1
        if e["reason"] == "expand_no_valid_candidate":
            r["pair_skip"]["no_valid_candidate"] += 1
    elif kind == "deadletter":
        r["dead_steps"][e.get("step", "?")] += 1
    return acc


def merge(accs: Iterable[Acc]) -> Acc:
    out: Acc = {}
    for acc in accs:
        for rn, r in acc.items():
            o = out.setdefault(rn, _round_acc())
            for key, value in r.items():
                if isinstance(value, Counter | set):
                    o[key].update(value)
                elif key in ("tags_before", "tags_after"):
                    o[key][0] += value[0]
                    o[key][1] += value[1]
                else:
                    o[key].extend(value)
    return out


def _mean(total_n: list[int]) -> float | None:
    return round(total_n[0] / total_n[1], 4) if total_n[1] else None


def round_report(round_no: int, r: Mapping[str, Any]) -> dict[str, Any]:
    kinds = r["kinds"]
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
        "rejected_by_reason": dict(sorted(r["reasons"].items())),
        "deadletter_by_step": dict(sorted(r["dead_steps"].items())),
        "pairs": kinds["pair"],
        # why an expanded instruction gave no pair (`written` = a pair was written)
        "pairs_by_outcome": dict(sorted(r["pair_skip"].items())),
        "candidates_dropped": dict(sorted(r["problems"].items())),
        # complexity: tagger tags per instruction, before (instructions tagged) and after
        # (accepted new questions), the same tagger; diversity: distinct tags
        "mean_tags_before": _mean(r["tags_before"]),
        "mean_tags_after": _mean(r["tags_after"]),
        "unique_tags_before": len(r["tagger_before"]),
        "unique_tags_after": len(r["tagger_after"]),
        "unique_compress_tags": len(r["compress_tags"]),
        # the paper's diversity/complexity metrics over the round's outputs (see `tagger`)
        "tags_per_query": _mean(r["tags_after"]),
        "unique_tags": len(r["tagger_after"]),
        "tags_kept_by_teacher": dict(sorted(r["kept"].items())),
        "reward_chosen": distribution(r["chosen"]),
        "reward_candidates": distribution(r["candidates"]),
        "reward_margin": distribution(r["margins"]),
    }


def finish(acc: Acc, rounds: int, utility: Mapping[str, Any] | None = None,
           tagger: str | None = None) -> dict[str, Any]:
    """The stage's REPORT dict: one entry per round plus the utility reference sets; `tagger`
    names who made the tags counted in tags_per_query / unique_tags."""
    per_round = [round_report(rn, acc.get(rn) or _round_acc())
                 for rn in sorted(set(range(1, rounds + 1)) | set(acc))]
    return {
        "stage": "tag_instruct",
        "rounds": per_round,
        "examples": sum(r["accepted"] for r in per_round),
        "pairs": sum(r["pairs"] for r in per_round),
        "seeds": per_round[0]["inputs"] if per_round else 0,
        "conserved": all(r["conserved"] for r in per_round),
        "utility": dict(utility) if utility is not None else None,
        "tagger": tagger,
    }


def build_report(events: Iterable[Mapping[str, Any]], rounds: int,
                 utility: Mapping[str, Any] | None = None, tagger: str | None = None
                 ) -> dict[str, Any]:
    """`finish` over a list of events (tests, small runs)."""
    acc = empty()
    for e in events:
        add(acc, e)
    return finish(acc, rounds, utility, tagger)
