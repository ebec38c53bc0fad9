"""Problems in, preference-pair rows out (the stage report: report.py).

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
