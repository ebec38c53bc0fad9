"""The deterministic rule editor: one subtle, verifiably false arithmetic edit per solution.

Reads a solution and its question. Picks a step with a true equation (seeded), an error type at
random among those that apply to it, and one concrete edit; changes only that equation's text
(visible and annotation renderings alike) and nothing else: later steps are not propagated.
Returns a `RuleEdit`, or a rejection reason (no_applicable_step, or the last filter's reason).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from transforms.rise.equations import Equation, find_equations, numbers_in
from transforms.rise.errors import ERROR_TYPES, Edit, candidate_edits
from transforms.rise.filters import check_edit
from transforms.rise.steps import Step, split_steps


@dataclass
class RuleEdit:
    edited: str  # the whole solution with the one edit applied
    step: Step
    error_type: str
    equation_before: str
    equation_after: str
    edit_distance: int
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Site:
    step: Step
    equation: Equation
    by_type: dict[str, list[Edit]]


def apply_replacements(text: str, reps: list[tuple[int, int, str]]) -> str:
    for s, e, new in sorted(reps, key=lambda r: r[0], reverse=True):
        text = text[:s] + new + text[e:]
    return text


def edit_sites(solution: str, question: str) -> list[_Site]:
    """Every (step, true equation) with at least one applicable rule edit, in text order."""
    qnums = set(numbers_in(question))
    sites = []
    for step in split_steps(solution):
        context = qnums | set(numbers_in(solution[:step.start]))
        for eq in find_equations(step.text, base=step.start):
            by_type = candidate_edits(eq, qnums, context | _other_numbers(step, eq, solution))
            if any(by_type.values()):
                sites.append(_Site(step, eq, by_type))
    return sites


def _other_numbers(step: Step, eq: Equation, solution: str) -> set[Fraction]:
    """Numbers of the step outside the equation (values a careless writer could pick up)."""
    outside = solution[step.start:eq.start] + " " + solution[eq.end:step.end]
    return set(numbers_in(outside))


def rule_edit(solution: str, question: str, rng: random.Random,
              max_edit_distance: int = 12, max_attempts: int = 8,
              allowed: tuple[str, ...] | list[str] | None = None) -> RuleEdit | str:
    """One filtered rule edit of `solution`, or the reason none could be made."""
    sites = [s for s in edit_sites(solution, question)
             if any(e and (allowed is None or t in allowed) for t, e in s.by_type.items())]
    if not sites:
        return "no_applicable_step"
    by_step: dict[int, list[_Site]] = {}
    for site in sites:
        by_step.setdefault(site.step.index, []).append(site)
    step_order = rng.sample(sorted(by_step), len(by_step))
    last_reason = "no_applicable_step"
    attempts = 0
    for step_idx in step_order:
        for site in rng.sample(by_step[step_idx], len(by_step[step_idx])):
            pools = {t: list(e) for t, e in site.by_type.items()
                     if e and (allowed is None or t in allowed)}
            while pools and attempts < max_attempts:
                attempts += 1
                etype = rng.choice(sorted(pools, key=list(ERROR_TYPES).index))
                edit = pools[etype].pop(rng.randrange(len(pools[etype])))
                if not pools[etype]:
                    del pools[etype]
                edited = apply_replacements(solution, edit.replacements)
                reason, detail = check_edit(solution, edited, site.step.start, site.step.end,
                                            max_edit_distance, arithmetic=True)
                if reason is not None:
                    last_reason = reason
                    continue
                delta = len(edited) - len(solution)
                eq = site.equation
                return RuleEdit(
                    edited=edited, step=site.step, error_type=etype,
                    equation_before=solution[eq.start:eq.end],
                    equation_after=edited[eq.start:eq.end + delta],
                    edit_distance=detail["edit_distance"], detail=edit.detail)
    return last_reason
