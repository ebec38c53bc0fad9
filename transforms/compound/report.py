"""The compound stage's report: per category the items (seed × category), accepted, rejected by
reason, dead-lettered, acceptance, and the distribution of sub-question counts (of accepted
items, and of every item that got a parsed question).

Reads: outcome events {category, outcome: accepted|rejected|deadletter, reason, partner, n_sub}.
Writes: one JSON-able dict with "stage": "compound". Pure accumulate/merge/finish functions, so
the stage can fold them with a Beam CombineFn.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from transforms.compound.categories import CATEGORIES

OUTCOMES = ("accepted", "rejected", "deadletter")
Acc = dict[str, Any]


def event(category: str | None, outcome: str, reason: str | None = None,
          partner: str | None = None, n_sub: int | None = None) -> dict[str, Any]:
    """One item's outcome. `partner`: 'found', 'fallback', 'none' or None (category needs
    none); `n_sub`: its number of sub-questions, when a question was parsed."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    return {"category": category or "unassigned", "outcome": outcome, "reason": reason,
            "partner": partner, "n_sub": n_sub}


def empty() -> Acc:
    return {"per_category": {}, "partners": {}}


def _new_cat() -> dict[str, Any]:
    return {"seeds": 0, "accepted": 0, "rejected": 0, "deadletter": 0, "reasons": {},
            "sub_questions_accepted": {}, "sub_questions_all": {}}


def _cat(acc: Acc, category: str) -> dict[str, Any]:
    return acc["per_category"].setdefault(category, _new_cat())


def _bump(counts: dict[str, int], key: str, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


def add(acc: Acc, ev: dict[str, Any]) -> Acc:
    c = _cat(acc, ev["category"])
    c["seeds"] += 1
    c[ev["outcome"]] += 1
    if ev["outcome"] != "accepted":
        _bump(c["reasons"], ev.get("reason") or "unspecified")
    if ev.get("n_sub"):
        _bump(c["sub_questions_all"], str(ev["n_sub"]))
        if ev["outcome"] == "accepted":
            _bump(c["sub_questions_accepted"], str(ev["n_sub"]))
    if ev.get("partner"):
        acc["partners"][ev["partner"]] = acc["partners"].get(ev["partner"], 0) + 1
    return acc


def merge(accs: Iterable[Acc]) -> Acc:
    out = empty()
    for acc in accs:
        for cat, c in acc["per_category"].items():
            o = _cat(out, cat)
            for k in ("seeds", *OUTCOMES):
                o[k] += c[k]
            for part in ("reasons", "sub_questions_accepted", "sub_questions_all"):
                for r, n in c[part].items():
                    _bump(o[part], r, n)
        for k, n in acc["partners"].items():
            out["partners"][k] = out["partners"].get(k, 0) + n
    return out


def _rate(accepted: int, seeds: int) -> float | None:
    return round(accepted / seeds, 4) if seeds else None


def finish(acc: Acc) -> dict[str, Any]:
    """Totals, per-category counts and acceptance (categories in canonical order, every
    category listed even when it drew no seed), reasons sorted by name."""
    order = list(CATEGORIES) + sorted(set(acc["per_category"]) - set(CATEGORIES))
    per_cat: dict[str, Any] = {}
    totals = {"seeds": 0, "accepted": 0, "rejected": 0, "deadletter": 0}
    reasons: dict[str, int] = {}
    for cat in order:
        c = acc["per_category"].get(cat, _new_cat())
        per_cat[cat] = {**{k: c[k] for k in totals}, "acceptance": _rate(c["accepted"], c["seeds"]),
                        "reasons": dict(sorted(c["reasons"].items())),
                        **{part: dict(sorted(c[part].items(), key=lambda kv: int(kv[0])))
                           for part in ("sub_questions_accepted", "sub_questions_all")}}
        for k in totals:
            totals[k] += c[k]
        for r, n in c["reasons"].items():
            reasons[r] = reasons.get(r, 0) + n
    return {"stage": "compound", **totals,
            "acceptance": _rate(totals["accepted"], totals["seeds"]),
            "per_category": per_cat, "reasons": dict(sorted(reasons.items())),
            "partners": dict(sorted(acc["partners"].items()))}


def summarize(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    acc = empty()
    for ev in events:
        add(acc, ev)
    return finish(acc)


def format_table(report: dict[str, Any]) -> str:
    """A readable table of the report (for the demo and docs)."""
    lines = [f"{'category':<28}{'items':>6}{'acc':>5}{'rej':>5}{'dl':>4}{'rate':>7}"
             "  sub-questions (accepted)"]
    for cat, c in report["per_category"].items():
        rate = "-" if c["acceptance"] is None else f"{c['acceptance']:.2f}"
        dist = " ".join(f"{k}:{n}" for k, n in c["sub_questions_accepted"].items()) or "-"
        lines.append(f"{cat:<28}{c['seeds']:>6}{c['accepted']:>5}{c['rejected']:>5}"
                     f"{c['deadletter']:>4}{rate:>7}  {dist}")
    rate = "-" if report["acceptance"] is None else f"{report['acceptance']:.2f}"
    lines.append(f"{'total':<28}{report['seeds']:>6}{report['accepted']:>5}"
                 f"{report['rejected']:>5}{report['deadletter']:>4}{rate:>7}")
    return "\n".join(lines)
