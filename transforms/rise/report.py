"""The rise stage's report as pure functions (no Beam): events are count dicts (what each
step counts: problems in, samples by verdict, pairs, rejections by reason, edit outcomes);
`empty()` / `add(acc, event)` / `merge(accs)` sum them, `finish(acc)` is the REPORT dict."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from transforms.rise.pairs import STAGE


def empty() -> dict[str, Any]:
    return {}


def merge_counts(a: dict[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Sum nested dicts of numbers (b into a copy of a)."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, Mapping):
            out[k] = merge_counts(out.get(k) or {}, v)
        else:
            out[k] = out.get(k, 0) + v
    return out


def add(acc: dict[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    """One count dict into the accumulator."""
    return merge_counts(acc, event)


def merge(accs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    out = empty()
    for a in accs:
        out = merge_counts(out, a)
    return out


def summarize_pairs(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts over pair rows: by kind, method and error type; edit distances; step pairs whose
    edit changes what the step computes."""
    s: dict[str, Any] = {"pairs": 0, "pairs_by_kind": {}, "pairs_by_method": {},
                         "error_types": {}, "edit_distance_sum": 0, "edit_distance_n": 0,
                         "step_pairs_result_changed": 0}
    for r in rows:
        meta = r["meta"]
        kind = meta.get("pair_kind") or "full"
        s = merge_counts(s, {"pairs": 1, "pairs_by_kind": {kind: 1},
                             "pairs_by_method": {meta["method"]: 1}})
        if meta.get("error_type"):
            s = merge_counts(s, {"error_types": {meta["error_type"]: 1}})
        if meta.get("edit_distance") is not None:
            s["edit_distance_sum"] += meta["edit_distance"]
            s["edit_distance_n"] += 1
        if kind == "step" and meta.get("result_changed"):
            s["step_pairs_result_changed"] += 1
    return s


def summarize_rejected(reasons: list[str]) -> dict[str, Any]:
    """Problems rejected, by reason."""
    out: dict[str, Any] = {"rejected": {}}
    for reason in reasons:
        out = merge_counts(out, {"rejected": {reason: 1}})
    return out


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def finish(acc: Mapping[str, Any]) -> dict[str, Any]:
    """The REPORT dict. Problems: in = paired + rejected + dead letter (`conservation_holds`);
    with at least one correct / incorrect sample; samples by verdict. Pairs: by kind (full,
    step), method and error type (with shares); mean edit distance; the share of step pairs
    whose edit changes the step's result. Rejection reasons per problem (`rejected`) and per
    edit (`edit_rejected`: filters that fired on single edits)."""
    n_in = acc.get("problems_in", 0)
    paired, dead = acc.get("problems_paired", 0), acc.get("deadletter", 0)
    rejected = dict(sorted((acc.get("rejected") or {}).items()))
    types = dict(sorted((acc.get("error_types") or {}).items()))
    n_typed = sum(types.values())
    n_ed = acc.get("edit_distance_n", 0)
    kinds = dict(sorted((acc.get("pairs_by_kind") or {}).items()))
    edit_rej = dict(sorted((acc.get("edit_rejected") or {}).items()))
    passed = acc.get("edits_survived", 0)
    return {
        "stage": STAGE,
        "problems_in": n_in,
        "problems_paired": paired,
        "problems_rejected": sum(rejected.values()),
        "problems_deadletter": dead,
        "conservation_holds": n_in == paired + sum(rejected.values()) + dead,
        "problems_with_correct": acc.get("problems_with_correct", 0),
        "problems_with_incorrect": acc.get("problems_with_incorrect", 0),
        "samples": dict(sorted((acc.get("samples") or {}).items())),
        "pairs": acc.get("pairs", 0),
        "pairs_by_kind": kinds,
        "pairs_by_method": dict(sorted((acc.get("pairs_by_method") or {}).items())),
        "error_types": types,
        "error_type_share": {t: c / n_typed for t, c in types.items()} if n_typed else {},
        "mean_edit_distance": (acc.get("edit_distance_sum", 0) / n_ed) if n_ed else None,
        "step_pairs_result_changed_share": _share(acc.get("step_pairs_result_changed", 0),
                                                  kinds.get("step", 0)),
        "rejected": rejected,
        "edit_rejected": edit_rej,
        "self_edit_filter": {"checked": passed + sum(edit_rej.get(f"self_edit:{r}", 0)
                                                     for r in FILTER_REASONS),
                             "passed": passed},
        "edit_deadletter": acc.get("edit_deadletter", 0),
        "edits_survived": passed,
    }


FILTER_REASONS = ("noop_edit", "admits_error", "edit_too_large", "edit_outside_step",
                  "keeps_correct_answer", "computation_unchanged", "equation_still_true",
                  "equation_removed", "edit_unparseable")
