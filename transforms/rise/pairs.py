"""Problems in, preference-pair rows out, and the stage report.

Reads Example rows (prompt messages, the assistant solution, `meta.answer`); writes PAIR_SCHEMA
row dicts whose prompt/chosen/rejected are conversational (loadable by DPO trainers) and whose
meta holds method, error_type, step_index, edit_span (in the rejected text), parent_id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.ids import pair_id
from schemas.records import empty_lineage, pair_row
from transforms.rise.answers import answers_equal, extract_boxed, extract_final_answer, strip_boxed
from transforms.rise.equations import find_equations
from transforms.rise.steps import _HASH_LINE, diff_span

STAGE = "rise"


@dataclass
class Problem:
    id: str
    prompt: list[dict[str, str]]  # every message before the solution (system, user, ...)
    question: str
    solution: str
    gold: str
    source: dict[str, Any] | None


def read_problem(row: Mapping[str, Any], require_correct: bool = True,
                 need_solution: bool = True) -> Problem | str:
    """The problem in an Example row, or a rejection reason (no_solution, no_question,
    no_gold_answer, solution_disagrees_with_gold). With `need_solution` False (the model
    samples its own solutions) a question with `meta.answer` is enough."""
    msgs = [m for m in row.get("messages") or [] if m and m.get("content") is not None]
    last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
    has_solution = last is not None and bool(msgs[last]["content"].strip())
    if not has_solution and need_solution:
        return "no_solution"
    prompt = [{"role": m["role"], "content": m["content"]}
              for m in (msgs[:last] if last is not None else msgs)]
    question = next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")
    if not question.strip():
        return "no_question"
    solution = msgs[last]["content"] if has_solution and last is not None else ""
    stated = _stated_answer(solution)
    meta = row.get("meta") or {}
    gold = (meta.get("answer") or "").strip() or stated
    if not gold:
        return "no_gold_answer"
    if require_correct and stated is not None and not answers_equal(stated, gold):
        return "solution_disagrees_with_gold"
    return Problem(str(row["id"]), prompt, question, solution, gold, row.get("source"))


def _stated_answer(solution: str) -> str | None:
    """The answer a reference solution states explicitly (`#### N` or `\\boxed{}`), else None."""
    if _HASH_LINE.search(solution) or extract_boxed(solution):
        return extract_final_answer(solution)
    return None


def make_pair(
    problem: Problem,
    chosen_text: str,
    rejected_text: str,
    method: str,
    error_type: str | None,
    step_index: int | None,
    strip_rejected_boxed: bool = True,
    model: str | None = None,
    template_version: str | None = None,
    edit_distance: int | None = None,
    extra: dict[str, Any] | None = None,
    prompt: list[dict[str, str]] | None = None,
    pair_kind: str = "full",
    result_changed: bool | None = None,
) -> dict[str, Any]:
    """A PAIR_SCHEMA row; `edit_span` is the changed region of the rejected text, measured
    against the chosen text with the same `\\boxed{}` stripping applied. `prompt`: the
    messages the chosen text was generated from (default: the input's prompt). `pair_kind`:
    full (whole solutions) or step (prefix + one step); `result_changed`: whether a step edit
    changes what the step computes."""
    prompt = problem.prompt if prompt is None else prompt
    if strip_rejected_boxed:
        rejected_text = strip_boxed(rejected_text)
        base = strip_boxed(chosen_text)
    else:
        base = chosen_text
    s, e, _ = diff_span(base, rejected_text)
    chosen = [{"role": "assistant", "content": chosen_text}]
    rejected = [{"role": "assistant", "content": rejected_text}]
    lineage = empty_lineage()
    lineage.update(parent_ids=[problem.id], stage=STAGE, method=method, model=model,
                   template_version=template_version)
    return pair_row(
        pair_id(prompt, chosen, rejected), prompt, chosen, rejected,
        source=problem.source, method=method, error_type=error_type, step_index=step_index,
        edit_span=[s, e], parent_id=problem.id, lineage=lineage,
        edit_distance=edit_distance, pair_kind=pair_kind, result_changed=result_changed,
        extra=json.dumps({"gold": problem.gold, **(extra or {})}, sort_keys=True,
                         ensure_ascii=False, default=str),
    )


def verify_rule_pair(chosen: str, rejected: str, span: tuple[int, int],
                     strip_rejected_boxed: bool = True) -> str | None:
    """Independent check of a rule-edited pair: None when the text outside `span` equals the
    chosen text and an equation inside the span is false; else what is wrong."""
    base = strip_boxed(chosen) if strip_rejected_boxed else chosen
    s, e = span
    tail = len(rejected) - e
    if rejected[:s] != base[:s]:
        return "prefix_changed"
    if rejected[e:] != base[len(base) - tail:]:
        return "suffix_changed"
    line_start = rejected.rfind("\n", 0, s) + 1
    line_end = rejected.find("\n", e)
    line_end = len(rejected) if line_end < 0 else line_end
    eqs = [q for q in find_equations(rejected[line_start:line_end], base=line_start)
           if q.start <= e and q.end >= s]
    if not eqs:
        return "no_equation_in_span"
    if all(q.is_true() for q in eqs):
        return "equation_true"
    return None


# ---------------------------------------------------------------------------------- report

def merge_counts(a: dict[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Sum nested dicts of numbers (b into a copy of a)."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, Mapping):
            out[k] = merge_counts(out.get(k) or {}, v)
        else:
            out[k] = out.get(k, 0) + v
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


def finalize_report(acc: Mapping[str, Any]) -> dict[str, Any]:
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
