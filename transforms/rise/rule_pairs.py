"""Rule-edit pairs: one deterministic edit of a correct solution (no model), as a step pair.

Reads a Problem and the solution to edit: a correct self-sample of the policy (prompt = the
messages it was sampled from) or the gold solution (prompt = the input's messages); writes a
step pair (conversational row + RISE step row), or with `scope: full` a whole-solution pair
whose error is carried through the dependent steps to a wrong final answer. Returns a
rejection reason when no edit passes (no_applicable_step, a filter's reason,
error_not_carried_through).
"""

from __future__ import annotations

import random
from typing import Any

from transforms.rise.answers import answers_equal, stated_answer
from transforms.rise.carry import carry_through
from transforms.rise.config import RiseConfig
from transforms.rise.pairs import Problem, make_pair
from transforms.rise.rule_editor import RuleEdit, rule_edit
from transforms.rise.step_pairs import make_step_pair


def rule_edit_pairs(problem: Problem, solution: str, prompt: list[dict[str, str]],
                    edited_solution: str, cfg: RiseConfig, seed: int) -> dict[str, Any] | str:
    """The pair row of one rule edit of `solution`, or a rejection reason.
    `edited_solution` labels what was edited: self_sample or gold."""
    rng = random.Random(f"{seed}:{problem.id}:rule_edit")
    res = rule_edit(solution, problem.question, rng, cfg.max_edit_distance, cfg.max_attempts,
                    cfg.error_types)
    if isinstance(res, str):
        return res
    if cfg.scope == "full":
        return _full_pair(problem, solution, prompt, edited_solution, cfg, res, rng)
    extra = {"equation_before": res.equation_before, "equation_after": res.equation_after,
             "edit": res.detail, "edited_solution": edited_solution}
    end_new = res.step.end + len(res.edited) - len(solution)
    return make_step_pair(
        problem, prompt, solution[:res.step.start], solution[res.step.start:res.step.end],
        res.edited[res.step.start:end_new], method="rule_edit", error_type=res.error_type,
        step_index=res.step.index, strip_rejected_boxed=cfg.strip_boxed_rejected,
        edit_distance=res.edit_distance, extra=extra)


def _full_pair(problem: Problem, solution: str, prompt: list[dict[str, str]],
               edited_solution: str, cfg: RiseConfig, res: RuleEdit,
               rng: random.Random) -> dict[str, Any] | str:
    """A whole-solution pair whose edit is carried through to a wrong final answer; up to
    `max_attempts` edits are drawn (an edit of an operand leaves the result, so nothing to
    carry), else error_not_carried_through."""
    for _ in range(cfg.max_attempts):
        carried = carry_through(solution, res.edited, res.step.end)
        if carried is not None and not answers_equal(stated_answer(carried), problem.gold):
            return make_pair(
                problem, solution, carried, "rule_edit", res.error_type, res.step.index,
                cfg.strip_boxed_rejected, edit_distance=res.edit_distance, prompt=prompt,
                extra={"equation_before": res.equation_before,
                       "equation_after": res.equation_after, "edit": res.detail,
                       "edited_solution": edited_solution,
                       "rejected_answer": stated_answer(carried)})
        nxt = rule_edit(solution, problem.question, rng, cfg.max_edit_distance,
                        cfg.max_attempts, cfg.error_types)
        if isinstance(nxt, str):
            break
        res = nxt
    return "error_not_carried_through"
